"""Use cases wired from ports: ingest an export delivery, take a budget alert, run the
guardrail on a queue message, answer a slash command. No cloud SDK here."""
