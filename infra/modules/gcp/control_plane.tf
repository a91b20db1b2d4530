# The shared control plane of ARCHITECTURE.md: the queue every cloud publishes to, its
# dead-letter topic, and the ledger. None of it depends on function code.

resource "google_pubsub_topic" "queue" {
  #checkov:skip=CKV_GCP_83:messages carry billing line items and budget figures, no secrets; Google-managed encryption at rest (a CMEK would need a KMS key ring outside this module)
  project                    = var.project_id
  name                       = "${var.name_prefix}-queue"
  message_retention_duration = var.queue.message_retention
  labels                     = local.labels

  depends_on = [google_project_service.this]
}

# Where every push subscription of this module sends what it could not deliver
# (max_delivery_attempts), with the failure recorded by Pub/Sub.
resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:messages carry billing line items and budget figures, no secrets; Google-managed encryption at rest (a CMEK would need a KMS key ring outside this module)
  project = var.project_id
  name    = "${var.name_prefix}-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.this]
}

# A topic keeps nothing without a subscription: this one holds dead letters for inspection
# and replay.
resource "google_pubsub_subscription" "dead_letter_hold" {
  count = var.queue.dead_letter_hold_subscription ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name_prefix}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = var.queue.dead_letter_retention
  ack_deadline_seconds       = 60
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub forwards dead letters as its service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_pubsub_agent" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# The slash command hands slow commands to slack_deferred through this topic
# (BURNGUARD_SLACK_DEFER_TOPIC). Messages carry the command's response_url: keep them briefly.
resource "google_pubsub_topic" "slack_defer" {
  #checkov:skip=CKV_GCP_83:messages carry billing line items and budget figures, no secrets; Google-managed encryption at rest (a CMEK would need a KMS key ring outside this module)
  count = local.slack_defer_enabled ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name_prefix}-slack-deferred"
  message_retention_duration = "3600s"
  labels                     = local.labels

  depends_on = [google_project_service.this]
}

resource "google_firestore_database" "ledger" {
  project                           = var.project_id
  name                              = local.ledger_database_id
  location_id                       = coalesce(var.ledger.location_id, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.ledger.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.ledger.delete_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.this]
}

# audit_log(guardrail=...) of the Firestore ledger (burnguard.adapters.gcp.firestore): equality on
# guardrail, newest first by seq. The ledger's collections are <prefix>audit, prefix from
# BURNGUARD_LEDGER's ?prefix= (default burnguard_).
resource "google_firestore_index" "audit_by_guardrail" {
  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = "${var.ledger.collection_prefix}audit"

  fields {
    field_path = "guardrail"
    order      = "ASCENDING"
  }
  fields {
    field_path = "seq"
    order      = "DESCENDING"
  }
}
