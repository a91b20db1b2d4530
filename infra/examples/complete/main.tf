# burnguard on three clouds, one apply. Google Cloud holds the control plane (queue, ledger,
# guardrail, the workload identity pool AWS and Azure use); AWS and Azure run their ingest,
# budget and slash-command functions and hold the identities the guardrail uses to stop GPU
# instances there.
#
# Build the bundles first:  python infra/build.py all --policy events/policies/production-example.yaml
# Try it in one account first with `dry_run: true` in that policy (infra/README.md).

locals {
  # BURNGUARD_LEDGER of every function: the Firestore ledger of the control plane.
  ledger_url = module.gcp.ledger_url
}

module "gcp" {
  source = "../../modules/gcp"

  project_id  = var.gcp_project_id
  region      = var.gcp_region
  name_prefix = var.name_prefix
  tags        = var.tags
  package     = { path = "${path.root}/../../build/gcp/burnguard-gcp.zip" }

  slack = {
    signing_secret_id = var.gcp_slack_signing_secret_id
    bot_token_id      = var.gcp_slack_bot_token_id
    channel           = var.slack_channel
  }
  control_plane = { ledger_url = local.ledger_url }

  functions = {
    slack_command = {
      entry_point = "slack_command"
      description = "/burnguard slash command"
      memory_mb   = 1024
      timeout_s   = 60
      trigger     = { type = "http", public = true }
      grants      = ["slack_signing_secret", "slack_defer", "ledger"]
    }
    # Completes commands acknowledged within Slack's 3 s. It builds the same service as the
    # slash command, so it reads the signing secret too (bootstrap.slash_service).
    slack_deferred = {
      entry_point = "slack_deferred"
      description = "/burnguard deferred answers"
      memory_mb   = 1024
      timeout_s   = 300
      trigger     = { type = "pubsub", topic = "slack_defer" }
      grants      = ["slack_signing_secret", "ledger"]
    }
    # The shared queue, pushed with retries and a dead-letter topic: ledger, rules, stops, Slack.
    guardrail = {
      entry_point   = "guardrail"
      description   = "burnguard guardrail: ledger, budgets, stops"
      memory_mb     = 2048
      timeout_s     = 540
      max_instances = 5
      trigger       = { type = "pubsub", topic = "queue" }
      grants        = ["ledger", "slack_notify", "stop_instances", "dead_letter"]
    }
    # The live estimate: one tick per Cloud Scheduler message on the meter topic (meter below).
    # It runs as the guardrail's identity (stop_instances): the same reach, the same stops.
    meter = {
      entry_point   = "meter"
      description   = "burnguard meter: the live estimate of running GPU instances"
      memory_mb     = 1024
      timeout_s     = 300
      max_instances = 1
      trigger       = { type = "pubsub", topic = "meter" }
      grants        = ["ledger", "slack_notify", "stop_instances"]
    }
    # Compute Engine instance starts and stops (audit logs through Eventarc) to the meter.
    instance_event = {
      entry_point   = "instance_event"
      description   = "burnguard instance_event: Compute Engine starts and stops to the meter"
      memory_mb     = 1024
      timeout_s     = 300
      max_instances = 3
      trigger       = { type = "audit_log" }
      grants        = ["ledger", "slack_notify", "stop_instances"]
    }
    # The BigQuery billing export, extracted daily to this bucket (billing_export below).
    ingest = {
      entry_point = "ingest"
      description = "burnguard ingest: billing export objects to the queue"
      memory_mb   = 2048
      timeout_s   = 540
      trigger     = { type = "storage", bucket = var.gcp_billing_export_bucket }
      grants      = ["read_exports", "queue_publish"]
    }
    # Cloud Billing budget notifications (the budgets below) to budget-alert messages.
    budget = {
      entry_point = "budget"
      description = "burnguard budget: Cloud Billing budget notifications to the queue"
      timeout_s   = 60
      trigger     = { type = "pubsub", topic = "budget" }
      grants      = ["queue_publish"]
    }
  }

  billing_export = var.gcp_billing_account == null || var.gcp_billing_table == null ? null : {
    table           = var.gcp_billing_table
    billing_account = var.gcp_billing_account
    bucket          = var.gcp_billing_export_bucket
  }

  budgets = var.gcp_billing_account == null ? null : {
    billing_account = var.gcp_billing_account
    budgets         = var.gcp_budgets
  }

  guardrail_reach = {
    aws = { role_arn = module.aws.guardrail_stop_role_arn, regions = var.aws_gpu_regions, token_audience = module.aws.guardrail_stop_token_audience }
    azure = length(var.azure_gpu_scopes) == 0 ? null : {
      tenant_id = module.azure.tenant_id
      client_id = module.azure.guardrail_identity_client_id
      # subscriptionId[/resourceGroup] from the ARM scopes
      scopes = [for s in var.azure_gpu_scopes : trimprefix(replace(s, "/resourceGroups/", "/"), "/subscriptions/")]
    }
  }

  federation = {
    aws = {
      account_id = module.aws.account_id
      roles      = module.aws.gcp_federated_roles
    }
    azure = {
      tenant_id  = module.azure.tenant_id
      audience   = var.azure_token_audience
      identities = module.azure.gcp_federated_identities
    }
  }

  guardrail_stop = length(var.gcp_gpu_projects) == 0 ? null : { projects = var.gcp_gpu_projects }

  meter = { every_minutes = var.meter_every_minutes }
}

module "aws" {
  source = "../../modules/aws"

  name_prefix = var.name_prefix
  tags        = var.tags
  package     = { path = "${path.root}/../../build/aws/burnguard-aws.zip" }

  slack = { signing_secret_arn = var.aws_slack_signing_secret_arn }
  control_plane = {
    ledger_url                 = local.ledger_url
    queue_topic                = module.gcp.queue_topic
    workload_identity_audience = module.gcp.aws_workload_identity_audience
  }

  functions = {
    slack_command = {
      handler     = "slack_command.lambda_handler"
      description = "/burnguard slash command"
      memory_mb   = 1024
      timeout_s   = 60
      trigger     = { type = "function_url", public = true }
      grants      = ["slack_signing_secret", "self_invoke", "ledger"]
    }
    # The Data Export (CUR 2.0) objects in the export bucket (billing.export below).
    ingest = {
      handler     = "ingest.lambda_handler"
      description = "burnguard ingest: CUR 2.0 objects to the queue"
      memory_mb   = 2048
      timeout_s   = 900
      trigger     = { type = "s3", bucket = var.aws_export_bucket, prefix = var.aws_export_prefix }
      # markers in the module's state bucket; deliveries of 2+ files fan out to the parts queue
      grants = ["read_exports", "queue_publish", "state", "fan_out"]
    }
    # AWS Budgets notifications through the module's SNS topic (billing.budgets below).
    budget = {
      handler     = "budget.lambda_handler"
      description = "burnguard budget: AWS Budgets notifications to the queue"
      timeout_s   = 60
      trigger     = { type = "sns", topic_arn = "budget" }
      grants      = ["queue_publish"]
    }
    # EC2 instance starts and stops (EventBridge) to the queue: the guardrail's meter.
    instance_event = {
      handler     = "instance_event.lambda_handler"
      description = "burnguard instance_event: EC2 starts and stops to the queue"
      timeout_s   = 60
      trigger     = { type = "ec2_state" }
      grants      = ["queue_publish"]
    }
  }

  billing = {
    export  = { bucket_name = var.aws_export_bucket, prefix = var.aws_export_prefix }
    budgets = var.aws_budgets
  }

  guardrail_stop = {
    google_service_account_unique_id = module.gcp.guardrail_service_account_unique_id
    scope_tag_keys                   = var.aws_scope_tag_keys
    regions                          = var.aws_gpu_regions
  }
}

module "azure" {
  source = "../../modules/azure"

  name_prefix = var.name_prefix
  tags        = var.tags
  location    = var.azure_location
  package     = { path = "${path.root}/../../build/azure/burnguard-azure.zip" }
  runtime     = { code_deployed = var.azure_code_deployed }

  slack = {
    signing_secret_uri = var.azure_slack_signing_secret_uri
    key_vault_id       = var.azure_key_vault_id
    webhook_secret_uri = var.azure_webhook_secret_uri
  }
  control_plane = {
    ledger_url                 = local.ledger_url
    queue_topic                = module.gcp.queue_topic
    workload_identity_audience = module.gcp.azure_workload_identity_audience
    token_audience             = var.azure_token_audience
  }

  functions = {
    slack_command = {
      entry_point = "slack_command"
      description = "/burnguard slash command"
      trigger     = { type = "http", public = true, route = "slack/command" }
      grants      = ["slack_signing_secret", "ledger", "slack_defer"]
    }
    # Completes commands acknowledged within Slack's 3 s, from the queue the slash command fills
    # (in the slash command's storage account, which this app's host shares).
    slack_deferred = {
      entry_point  = "slack_deferred"
      description  = "/burnguard deferred answers"
      host_storage = "slack_command"
      trigger      = { type = "queue", queue = "slack_defer" }
      grants       = ["slack_signing_secret", "ledger"]
    }
    # The Cost Management export's blobs (billing.export below; BlobCreated through Event Grid).
    ingest = {
      entry_point = "ingest"
      description = "burnguard ingest: Cost Management export blobs to the queue"
      trigger = {
        type               = "blob_events"
        storage_account_id = "exports"
        container          = "exports"
        prefix             = "burnguard/"
      }
      grants = ["read_exports", "queue_publish"]
    }
    # Consumption budgets' Action Group webhook (the secret in its URL is checked).
    budget = {
      entry_point = "budget"
      description = "burnguard budget: Action Group webhook to the queue"
      trigger     = { type = "http", public = true, route = "budget" }
      grants      = ["webhook_secret", "queue_publish"]
    }
    # The subscription's VM starts and stops (Event Grid) to the queue: the guardrail's meter.
    instance_event = {
      entry_point = "instance_event"
      description = "burnguard instance_event: VM starts and stops to the queue"
      trigger     = { type = "resource_events" }
      grants      = ["queue_publish"]
    }
  }

  billing = {
    export          = { container = "exports", root_folder = "burnguard", start_date = var.azure_export_start_date }
    budgets         = var.azure_budgets
    action_group_id = var.azure_budget_action_group_id
  }

  guardrail_stop = length(var.azure_gpu_scopes) == 0 ? null : {
    google_service_account_unique_id = module.gcp.guardrail_service_account_unique_id
    scopes                           = var.azure_gpu_scopes
  }
}
