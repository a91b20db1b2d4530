data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "existing" {
  count = var.resource_group_name == null ? 0 : 1

  name = var.resource_group_name
}

resource "azurerm_resource_group" "this" {
  count = var.resource_group_name == null ? 1 : 0

  name     = "${var.name_prefix}-rg"
  location = var.location
  tags     = local.tags
}

locals {
  tags = merge(var.tags, { "burnguard-managed-by" = "terraform" })

  # Every function of the bundle's function_app.py (tests/infra/test_consistency.py keeps this
  # list equal to it): an app runs one of them and disables the others.
  bundle_entry_points = ["budget", "ingest", "ingest_queue", "instance_event", "slack_command", "slack_deferred"]

  resource_group_name = var.resource_group_name == null ? azurerm_resource_group.this[0].name : data.azurerm_resource_group.existing[0].name
  resource_group_id   = var.resource_group_name == null ? azurerm_resource_group.this[0].id : data.azurerm_resource_group.existing[0].id

  # Global names (<app>.azurewebsites.net, storage accounts) get a suffix derived from the
  # subscription and resource group, stable across plans.
  suffix = substr(sha1("${data.azurerm_client_config.current.subscription_id}/${local.resource_group_name}/${var.name_prefix}"), 0, 6)

  function_names = { for k in keys(var.functions) : k => "${var.name_prefix}-${replace(k, "_", "-")}-${local.suffix}" }
  # 3-24 lower-case letters and digits.
  storage_names = { for k in keys(var.functions) : k => "${substr(replace("${var.name_prefix}${k}", "/[^a-z0-9]/", ""), 0, 16)}${substr(sha1("${local.suffix}/${k}"), 0, 8)}" }

  blob_events = { for k, f in var.functions : k => f if f.trigger.type == "blob_events" }
  # The subscription's VM starts and stops (Event Grid system topic of the subscription).
  resource_events = { for k, f in var.functions : k => f if f.trigger.type == "resource_events" }

  # Whose storage account each app's host uses (AzureWebJobsStorage): its own, or for a queue
  # trigger the account of the function that sends to the queue (host_storage).
  storage_owner  = { for k, f in var.functions : k => coalesce(f.host_storage, k) }
  storage_owners = { for k, f in var.functions : k => f if f.host_storage == null }
  # The Flex Consumption deployment container: one per app, in its host's account.
  deployment_containers = { for k, f in var.functions : k => f.host_storage == null ? "deployment" : "deployment-${replace(k, "_", "-")}" }

  # The queue of deferred slash answers (BURNGUARD_SLACK_DEFER_QUEUE) lives in the account of the
  # function granted slack_defer; its queue-triggered reader hosts on that account too.
  slack_defer_sender  = one([for k, f in var.functions : k if contains(f.grants, "slack_defer")])
  slack_defer_readers = { for k, f in var.functions : k => f if f.trigger.type == "queue" && f.trigger.queue == "slack_defer" }
  slack_defer_queue   = "${var.name_prefix}-slack-deferred"

  # BURNGUARD_AZURE_EXPORT_STORAGE: the blob endpoint of the export account a read_exports
  # function reads with its identity (an external account: by its name, in the public cloud).
  export_blob_endpoints = { for k, f in local.blob_events : k => (
    f.trigger.storage_account_id == "exports" ? trimsuffix(azurerm_storage_account.exports[0].primary_blob_endpoint, "/") : "https://${element(split("/", f.trigger.storage_account_id), 8)}.blob.core.windows.net"
  ) }

  # Key Vault RBAC scope of the one secret: <vault id>/secrets/<name>
  slack_secret_name    = var.slack == null ? null : regex("/secrets/([A-Za-z0-9-]+)", var.slack.signing_secret_uri)[0]
  slack_secret_scope   = var.slack == null ? null : "${var.slack.key_vault_id}/secrets/${local.slack_secret_name}"
  webhook_secret_scope = try("${var.slack.key_vault_id}/secrets/${regex("/secrets/([A-Za-z0-9-]+)", var.slack.webhook_secret_uri)[0]}", null)

  # Reaching Google Cloud (queue_publish, ledger) without a key: the function's managed identity
  # gets an Entra token for token_audience, which Google's STS exchanges through the pool
  # provider named by the workload identity audience. The adapter supplies the token itself
  # (google-auth identity_pool credentials with a subject token supplier): on Azure Functions the
  # identity endpoint needs a per-instance header, so no static credential file can describe it.
  #
  # BURNGUARD_GCP_WIF_CONFIG is the external-account document `gcloud iam workload-identity-pools
  # create-cred-config --azure` writes (no secret in it): its credential_source names the Entra
  # resource (token_audience) whose token Google's STS accepts. On a VM google-auth fetches that
  # token from IMDS itself; on Azure Functions the adapter fetches it from the identity endpoint
  # (same resource) and hands it over as the subject token.
  gcp_settings = var.control_plane.workload_identity_audience == null ? {} : {
    # the Entra resource the managed identity asks its subject token for
    BURNGUARD_AZURE_WIF_AUDIENCE = var.control_plane.token_audience
    BURNGUARD_GCP_WIF_CONFIG = jsonencode({
      type               = "external_account"
      audience           = var.control_plane.workload_identity_audience
      subject_token_type = "urn:ietf:params:oauth:token-type:jwt"
      token_url          = "https://sts.googleapis.com/v1/token"
      credential_source = {
        url     = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${var.control_plane.token_audience}"
        headers = { Metadata = "True" }
        format  = { type = "json", subject_token_field_name = "access_token" }
      }
    })
  }

  app_settings = { for k, f in var.functions : k => merge(
    {
      # The managed identity of this app, for DefaultAzureCredential (Key Vault) and the host.
      AZURE_CLIENT_ID = azurerm_user_assigned_identity.function[k].client_id
      # Service URIs rather than accountName: the code reaches the same account for its
      # dead-letter records (blob) and deferred slash answers (queue) through them.
      AzureWebJobsStorage__blobServiceUri  = trimsuffix(azurerm_storage_account.function[local.storage_owner[k]].primary_blob_endpoint, "/")
      AzureWebJobsStorage__queueServiceUri = trimsuffix(azurerm_storage_account.function[local.storage_owner[k]].primary_queue_endpoint, "/")
      AzureWebJobsStorage__credential      = "managedidentity"
      AzureWebJobsStorage__clientId        = azurerm_user_assigned_identity.function[k].client_id
      BURNGUARD_POLICY                     = var.runtime.policy_path
      BURNGUARD_LEDGER                     = var.control_plane.ledger_url
    },
    # Only this app's function runs; every other function of the bundle is disabled.
    { for name in setunion(local.bundle_entry_points, [for g in values(var.functions) : g.entry_point]) : "AzureWebJobs.${name}.Disabled" => "true" if name != f.entry_point },
    var.runtime.application_insights ? {
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.function[k].client_id};Authorization=AAD"
    } : {},
    contains(f.grants, "slack_signing_secret") ? {
      BURNGUARD_SLACK_SIGNING_SECRET_REF = var.slack.signing_secret_uri
      BURNGUARD_SLACK_REPLAY             = var.slack.replay
    } : {},
    contains(f.grants, "webhook_secret") ? {
      BURNGUARD_WEBHOOK_AUTH       = "secret"
      BURNGUARD_WEBHOOK_SECRET_REF = var.slack.webhook_secret_uri
    } : {},
    contains(f.grants, "read_exports") ? { BURNGUARD_AZURE_EXPORT_STORAGE = local.export_blob_endpoints[k] } : {},
    # ingest: records of runs not counted, with their reason, beside Event Grid's dead letters;
    # instance_event: malformed events, with their reason
    contains(["blob_events", "resource_events"], f.trigger.type) ? { BURNGUARD_DEAD_LETTER_CONTAINER = "dead-letter" } : {},
    # the sender's deferrer and the reader's binding (%BURNGUARD_SLACK_DEFER_QUEUE%)
    contains(f.grants, "slack_defer") ? { BURNGUARD_SLACK_DEFER_QUEUE = local.slack_defer_queue } : {},
    f.trigger.type == "queue" ? { BURNGUARD_SLACK_DEFER_QUEUE = local.slack_defer_queue } : {},
    contains(f.grants, "queue_publish") ? { BURNGUARD_TOPIC = var.control_plane.queue_topic } : {},
    length(setintersection(f.grants, ["queue_publish", "ledger"])) > 0 ? local.gcp_settings : {},
    f.environment,
  ) }
}
