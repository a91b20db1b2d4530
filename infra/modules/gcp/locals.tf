data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.tags, { "burnguard-managed-by" = "terraform" })

  # <prefix>-<stem with dashes>: burnguard-slack-command (also the service account id, <= 30)
  function_names = { for k in keys(var.functions) : k => "${var.name_prefix}-${replace(k, "_", "-")}" }

  # Every function has its own service account, except those granted stop_instances: they run
  # as the guardrail's, the identity the AWS and Azure stop roles trust (it exists before the
  # guardrail function does).
  identity             = { for k, f in var.functions : k => contains(f.grants, "stop_instances") ? "guardrail" : k }
  service_account_keys = setunion(values(local.identity), ["guardrail"])

  meter_enabled = anytrue([for f in values(var.functions) : f.trigger.type == "pubsub" && f.trigger.topic == "meter"])

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  slack_defer_enabled = anytrue([for f in values(var.functions) : contains(f.grants, "slack_defer") || (f.trigger.type == "pubsub" && f.trigger.topic == "slack_defer")])

  budget_topic_enabled = var.budgets != null || anytrue([for f in values(var.functions) : f.trigger.type == "pubsub" && f.trigger.topic == "budget"])

  # Topics a pubsub trigger may name by key (any other is a full topic path).
  topics = merge(
    { queue = google_pubsub_topic.queue.id },
    local.slack_defer_enabled ? { slack_defer = google_pubsub_topic.slack_defer[0].id } : {},
    local.budget_topic_enabled ? { budget = google_pubsub_topic.budget[0].id } : {},
    local.meter_enabled ? { meter = google_pubsub_topic.meter[0].id } : {},
  )

  ledger_database_id = coalesce(var.ledger.database_id, "${var.name_prefix}-ledger")
  ledger_database    = "projects/${var.project_id}/databases/${local.ledger_database_id}"

  # Secret Manager IAM binds the secret, not a version.
  slack_secret = var.slack == null ? null : regex("^projects/[^/]+/secrets/[^/]+", var.slack.signing_secret_id)
  bot_secret   = try(regex("^projects/[^/]+/secrets/[^/]+", var.slack.bot_token_id), null)

  # The guardrail's reach (grant stop_instances), under the names burnguard.app.gcp reads.
  reach_environment = merge(
    var.guardrail_stop == null ? {} : {
      BURNGUARD_GCP_PROJECTS  = join(",", var.guardrail_stop.projects)
      BURNGUARD_GCE_LOCAL_SSD = var.guardrail_stop.local_ssd
    },
    var.guardrail_reach.aws == null ? {} : {
      BURNGUARD_AWS_ROLE_ARN       = var.guardrail_reach.aws.role_arn
      BURNGUARD_AWS_REGIONS        = join(",", var.guardrail_reach.aws.regions)
      BURNGUARD_AWS_TOKEN_AUDIENCE = var.guardrail_reach.aws.token_audience
    },
    var.guardrail_reach.azure == null ? {} : {
      BURNGUARD_AZURE_TENANT_ID = var.guardrail_reach.azure.tenant_id
      BURNGUARD_AZURE_CLIENT_ID = var.guardrail_reach.azure.client_id
      BURNGUARD_AZURE_SCOPES    = join(",", var.guardrail_reach.azure.scopes)
    },
  )

  environment = { for k, f in var.functions : k => merge(
    {
      BURNGUARD_POLICY = var.runtime.policy_path
      BURNGUARD_LEDGER = var.control_plane.ledger_url
    },
    contains(f.grants, "slack_signing_secret") ? {
      BURNGUARD_SLACK_SIGNING_SECRET_REF = var.slack.signing_secret_id
      BURNGUARD_SLACK_REPLAY             = var.slack.replay
    } : {},
    contains(f.grants, "slack_defer") ? { BURNGUARD_SLACK_DEFER_TOPIC = one(google_pubsub_topic.slack_defer[*].id) } : {},
    contains(f.grants, "queue_publish") ? { BURNGUARD_TOPIC = google_pubsub_topic.queue.id } : {},
    contains(f.grants, "slack_notify") ? {
      BURNGUARD_SLACK_BOT_TOKEN_REF = var.slack.bot_token_id
      BURNGUARD_SLACK_CHANNEL       = var.slack.channel
    } : {},
    contains(f.grants, "stop_instances") ? local.reach_environment : {},
    # The guardrail dead-letters a message it can never apply (with its reason), and one that
    # failed as many times as the subscription allows, itself: both before Pub/Sub would.
    contains(f.grants, "dead_letter") ? {
      BURNGUARD_DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id
      BURNGUARD_MAX_DELIVERY_ATTEMPTS = tostring(f.trigger.max_delivery_attempts)
    } : {},
    f.environment,
  ) }
}
