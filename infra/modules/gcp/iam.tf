# Grants: one role on one resource each (variables.tf lists them). Functions' service accounts
# and federated principals from AWS and Azure get the same treatment; nothing is granted at
# project level except the ledger role, which Firestore only offers there, conditioned on the
# ledger database.

locals {
  function_grants = merge([for k, f in var.functions : {
    # keyed by identity: the functions sharing the guardrail's get its grants once
    for g in f.grants : "${local.identity[k]}/${g}" => { function = k, grant = g, member = "serviceAccount:${google_service_account.function[local.identity[k]].email}" }
  }]...)
  external_grants = merge([for name, p in local.external_principals : {
    for g in p.grants : "${name}/${g}" => { grant = g, member = p.member }
  }]...)
  all_grants = merge(local.function_grants, local.external_grants)
}

resource "google_secret_manager_secret_iam_member" "slack_signing_secret" {
  for_each = { for k, v in local.function_grants : k => v if v.grant == "slack_signing_secret" }

  secret_id = local.slack_secret # projects/<p>/secrets/<s>: the secret may live in another project
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}

resource "google_pubsub_topic_iam_member" "slack_defer" {
  for_each = { for k, v in local.function_grants : k => v if v.grant == "slack_defer" }

  project = var.project_id
  topic   = google_pubsub_topic.slack_defer[0].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

resource "google_pubsub_topic_iam_member" "queue_publish" {
  for_each = { for k, v in local.all_grants : k => v if v.grant == "queue_publish" }

  project = var.project_id
  topic   = google_pubsub_topic.queue.name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

resource "google_pubsub_topic_iam_member" "dead_letter" {
  for_each = { for k, v in local.function_grants : k => v if v.grant == "dead_letter" }

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

resource "google_project_iam_member" "ledger" {
  for_each = { for k, v in local.all_grants : k => v if v.grant == "ledger" }

  project = var.project_id
  role    = "roles/datastore.user"
  member  = each.value.member

  condition {
    title       = "burnguard ledger database only"
    description = "Firestore offers no database-level binding; this condition limits the role to the ledger."
    expression  = "resource.name == \"${local.ledger_database}\""
  }
}

resource "google_storage_bucket_iam_member" "read_exports" {
  for_each = { for k, v in local.function_grants : k => v if v.grant == "read_exports" }

  bucket = var.functions[each.value.function].trigger.bucket
  role   = "roles/storage.objectViewer"
  member = each.value.member
}

resource "google_secret_manager_secret_iam_member" "slack_notify" {
  for_each = { for k, v in local.function_grants : k => v if v.grant == "slack_notify" }

  secret_id = local.bot_secret # the bot token's secret only
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
