# burnguard on three clouds, one apply. Google Cloud holds the control plane (queue, ledger,
# guardrail identity, the workload identity pool AWS and Azure use); AWS and Azure run their
# functions and hold the roles the guardrail assumes to stop GPU instances.
#
# Deployed today: the /burnguard slash command on each cloud (and on GCP its deferral worker),
# the control plane, the federation and the stop roles. Each later function (ingest, budget,
# guardrail) is one entry in a functions map; see infra/README.md.
#
# Build the bundles first:  python infra/build.py all --policy events/policies/production-example.yaml

locals {
  # BURNGUARD_LEDGER of every function. The Firestore ledger adapter does not exist yet: until
  # it does, each instance keeps a SQLite ledger in /tmp (development only; the slash command
  # answers from an empty ledger). Then: module.gcp.ledger_url, and the "ledger" grant below.
  ledger_url = "sqlite:////tmp/burnguard-ledger.sqlite3"
}

module "gcp" {
  source = "../../modules/gcp"

  project_id  = var.gcp_project_id
  region      = var.gcp_region
  name_prefix = var.name_prefix
  tags        = var.tags
  package     = { path = "${path.root}/../../build/gcp/burnguard-gcp.zip" }

  slack         = { signing_secret_id = var.gcp_slack_signing_secret_id }
  control_plane = { ledger_url = local.ledger_url }

  functions = {
    slack_command = {
      entry_point = "slack_command"
      description = "/burnguard slash command"
      memory_mb   = 1024
      timeout_s   = 60
      trigger     = { type = "http", public = true }
      grants      = ["slack_signing_secret", "slack_defer"]
    }
    # Completes commands acknowledged within Slack's 3 s. It builds the same service as the
    # slash command, so it reads the signing secret too (bootstrap.slash_service).
    slack_deferred = {
      entry_point = "slack_deferred"
      description = "/burnguard deferred answers"
      memory_mb   = 1024
      timeout_s   = 300
      trigger     = { type = "pubsub", topic = "slack_defer" }
      grants      = ["slack_signing_secret"]
    }
    # Later:
    # guardrail = {
    #   entry_point = "guardrail"
    #   memory_mb   = 2048
    #   timeout_s   = 540
    #   trigger     = { type = "pubsub", topic = "queue" }
    #   grants      = ["ledger"]
    # }
    # ingest = {
    #   entry_point = "ingest"
    #   memory_mb   = 2048
    #   timeout_s   = 540
    #   trigger     = { type = "storage", bucket = "acme-billing-exports" }
    #   grants      = ["read_exports", "queue_publish"]
    # }
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
      grants      = ["slack_signing_secret", "self_invoke"]
    }
    # Later:
    # ingest = {
    #   handler   = "ingest.lambda_handler"
    #   memory_mb = 2048
    #   timeout_s = 900
    #   trigger   = { type = "s3", bucket = "acme-cur-exports", prefix = "cur/" }
    #   grants    = ["read_exports", "queue_publish"]
    # }
    # budget = {
    #   handler = "budget.lambda_handler"
    #   trigger = { type = "sns", topic_arn = "arn:aws:sns:eu-west-1:123456789012:aws-budgets" }
    #   grants  = ["queue_publish"]
    # }
  }

  guardrail_stop = {
    google_service_account_unique_id = module.gcp.guardrail_service_account_unique_id
    scope_tag_keys                   = var.aws_scope_tag_keys
  }
}

module "azure" {
  source = "../../modules/azure"

  name_prefix = var.name_prefix
  tags        = var.tags
  location    = var.azure_location
  package     = { path = "${path.root}/../../build/azure/burnguard-azure.zip" }

  slack = {
    signing_secret_uri = var.azure_slack_signing_secret_uri
    key_vault_id       = var.azure_key_vault_id
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
      grants      = ["slack_signing_secret"]
    }
    # Later:
    # ingest = {
    #   entry_point = "ingest"
    #   trigger = {
    #     type               = "blob_events"
    #     storage_account_id = "/subscriptions/.../resourceGroups/finops/providers/Microsoft.Storage/storageAccounts/acmecostexports"
    #     container          = "exports"
    #     prefix             = "daily/"
    #   }
    #   grants = ["read_exports", "queue_publish"]
    # }
  }

  guardrail_stop = length(var.azure_gpu_scopes) == 0 ? null : {
    google_service_account_unique_id = module.gcp.guardrail_service_account_unique_id
    scopes                           = var.azure_gpu_scopes
  }
}
