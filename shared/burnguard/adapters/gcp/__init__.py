"""Google Cloud adapters (clients passed in): Secret Manager, Pub/Sub deferral; next the Pub/Sub
queue, the Firestore ledger, GCS and Compute Engine."""
