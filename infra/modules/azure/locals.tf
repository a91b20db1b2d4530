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

  resource_group_name = var.resource_group_name == null ? azurerm_resource_group.this[0].name : data.azurerm_resource_group.existing[0].name
  resource_group_id   = var.resource_group_name == null ? azurerm_resource_group.this[0].id : data.azurerm_resource_group.existing[0].id

  # Global names (<app>.azurewebsites.net, storage accounts) get a suffix derived from the
  # subscription and resource group, stable across plans.
  suffix = substr(sha1("${data.azurerm_client_config.current.subscription_id}/${local.resource_group_name}/${var.name_prefix}"), 0, 6)

  function_names = { for k in keys(var.functions) : k => "${var.name_prefix}-${replace(k, "_", "-")}-${local.suffix}" }
  # 3-24 lower-case letters and digits.
  storage_names = { for k in keys(var.functions) : k => "${substr(replace("${var.name_prefix}${k}", "/[^a-z0-9]/", ""), 0, 16)}${substr(sha1("${local.suffix}/${k}"), 0, 8)}" }

  blob_events = { for k, f in var.functions : k => f if f.trigger.type == "blob_events" }

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
      AZURE_CLIENT_ID                  = azurerm_user_assigned_identity.function[k].client_id
      AzureWebJobsStorage__accountName = azurerm_storage_account.function[k].name
      AzureWebJobsStorage__credential  = "managedidentity"
      AzureWebJobsStorage__clientId    = azurerm_user_assigned_identity.function[k].client_id
      BURNGUARD_POLICY                 = var.runtime.policy_path
      BURNGUARD_LEDGER                 = var.control_plane.ledger_url
    },
    # Only this app's function runs; the others of the bundle are disabled.
    { for other, g in var.functions : "AzureWebJobs.${g.entry_point}.Disabled" => "true" if other != k },
    var.runtime.application_insights ? {
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.function[k].client_id};Authorization=AAD"
    } : {},
    contains(f.grants, "slack_signing_secret") ? {
      BURNGUARD_SLACK_SIGNING_SECRET_REF = var.slack.signing_secret_uri
      BURNGUARD_SLACK_REPLAY             = var.slack.replay
    } : {},
    contains(f.grants, "webhook_secret") ? { BURNGUARD_WEBHOOK_SECRET_REF = var.slack.webhook_secret_uri } : {},
    contains(f.grants, "queue_publish") ? { BURNGUARD_TOPIC = var.control_plane.queue_topic } : {},
    length(setintersection(f.grants, ["queue_publish", "ledger"])) > 0 ? local.gcp_settings : {},
    f.environment,
  ) }
}
