# One Cloud Functions (2nd gen) function per entry of var.functions, all built from the same
# source bundle, each with its own service account (guardrail_stop_role.tf) and grants (iam.tf).

locals {
  public_http    = { for k, f in var.functions : k => f if f.trigger.type == "http" && f.trigger.public }
  pubsub_push    = { for k, f in var.functions : k => f if f.trigger.type == "pubsub" }
  storage_events = { for k, f in var.functions : k => f if f.trigger.type == "storage" }
  audit_log      = { for k, f in var.functions : k => f if f.trigger.type == "audit_log" }
  # Functions Eventarc delivers to as their own identity (invoker and event receiver roles).
  eventarc = merge(local.storage_events, local.audit_log)
}

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:build bundles written only by terraform apply; Cloud Audit Logs record the writes
  #checkov:skip=CKV_GCP_78:objects are named by their content hash and never overwritten; versions would only keep garbage
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

# Named by content: a new bundle is a new object, and a new build of every function.
resource "google_storage_bucket_object" "package" {
  bucket = google_storage_bucket.sources.name
  name   = "bundles/burnguard-gcp-${filemd5(var.package.path)}.zip"
  source = var.package.path
}

resource "google_cloudfunctions2_function" "this" {
  for_each = var.functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = each.value.description
  labels      = local.labels

  build_config {
    runtime         = var.runtime.python
    entry_point     = each.value.entry_point
    service_account = var.runtime.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.package.name
      }
    }
  }

  service_config {
    available_memory                 = "${each.value.memory_mb}Mi"
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout_s
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    # Public HTTP: reachable from Slack. Pub/Sub push and Eventarc count as internal traffic.
    ingress_settings               = each.value.trigger.type == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function[local.identity[each.key]].email
    environment_variables          = local.environment[each.key]
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger.type == "storage" ? [each.value.trigger] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = event_trigger.value.retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
      service_account_email = google_service_account.function[local.identity[each.key]].email
      event_filters {
        attribute = "bucket"
        value     = event_trigger.value.bucket
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !contains(each.value.grants, "slack_signing_secret") || var.slack != null
      error_message = "${each.key}: the slack_signing_secret grant needs var.slack (the secret's reference)."
    }
    precondition {
      condition     = !contains(each.value.grants, "slack_notify") || try(var.slack.bot_token_id != null && var.slack.channel != null, false)
      error_message = "${each.key}: the slack_notify grant needs slack.bot_token_id and slack.channel."
    }
  }

  depends_on = [google_project_service.this]
}

# --- trigger: http, public ---------------------------------------------------------------------
# allUsers, on purpose and only here: Slack cannot send Google credentials, and the function
# verifies Slack's signature on every request (variables.tf refuses public for anything else).

resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:only the Slack slash command is public (variables.tf refuses any other); it verifies the Slack signature of every request
  for_each = local.public_http

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- trigger: pubsub (push subscription owned by this module) ----------------------------------
# Not an Eventarc trigger: its subscription cannot have a dead-letter policy. functions-framework
# turns the push request into the same CloudEvent (data.message.data) a @cloud_event function
# gets from Eventarc.

resource "google_service_account" "pubsub_push" {
  count = length(local.pubsub_push) > 0 ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-pubsub-push"
  display_name = "burnguard Pub/Sub push"
  description  = "Identity of the OIDC token of this module's push subscriptions"
}

# Projects created before April 2021: Pub/Sub mints the push tokens as its service agent.
resource "google_service_account_iam_member" "pubsub_push_token_creator" {
  count = length(local.pubsub_push) > 0 ? 1 : 0

  service_account_id = google_service_account.pubsub_push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_cloud_run_service_iam_member" "pubsub_push_invoker" {
  for_each = local.pubsub_push

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_push[0].email}"
}

resource "google_pubsub_subscription" "push" {
  for_each = local.pubsub_push

  project                    = var.project_id
  name                       = "${local.function_names[each.key]}-push"
  topic                      = lookup(local.topics, each.value.trigger.topic, each.value.trigger.topic)
  ack_deadline_seconds       = min(600, max(10, each.value.timeout_s))
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = each.value.trigger.max_delivery_attempts
  }
  push_config {
    push_endpoint = google_cloudfunctions2_function.this[each.key].url
    oidc_token {
      service_account_email = google_service_account.pubsub_push[0].email
      audience              = google_cloudfunctions2_function.this[each.key].url
    }
  }

  depends_on = [google_cloud_run_service_iam_member.pubsub_push_invoker]
}

# Pub/Sub acknowledges the dead-lettered message on the source subscription as its agent.
resource "google_pubsub_subscription_iam_member" "push_dead_letter_agent" {
  for_each = local.pubsub_push

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# --- trigger: storage (Eventarc) ---------------------------------------------------------------

# Eventarc delivers as the function's service account (storage and audit_log triggers).
resource "google_cloud_run_service_iam_member" "storage_event_invoker" {
  for_each = local.eventarc

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.function[local.identity[each.key]].email}"
}

# Eventarc's required project-level roles (no narrower scope exists for either).
resource "google_project_iam_member" "storage_event_receiver" {
  for_each = toset([for k in keys(local.eventarc) : local.identity[k]])

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

data "google_storage_project_service_account" "this" {
  count = length(local.storage_events) > 0 ? 1 : 0

  project = var.project_id
}

resource "google_project_iam_member" "storage_agent_publisher" {
  count = length(local.storage_events) > 0 ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.this[0].email_address}"
}
