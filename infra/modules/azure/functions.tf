# One Flex Consumption Function App per entry of var.functions: its own user-assigned identity,
# its own storage account (host data and deployment package, reached with that identity; shared
# keys disabled), its own plan (Flex allows one app per plan).

resource "azurerm_user_assigned_identity" "function" {
  for_each = var.functions

  name                = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  resource_group_name = local.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_storage_account" "function" {
  #checkov:skip=CKV2_AZURE_1:host state and the code package only; Microsoft-managed keys; a customer key would need a Key Vault key per app
  #checkov:skip=CKV2_AZURE_33:Flex Consumption without VNet integration reaches its storage publicly; shared keys are disabled, every access is Entra ID
  #checkov:skip=CKV2_AZURE_38:holds the host state and the deployment package, both recreated by a deploy; nothing to recover
  #checkov:skip=CKV_AZURE_206:LRS: the contents are recreated by a deploy; geo-replication adds cost only
  #checkov:skip=CKV_AZURE_33:its only queues carry deferred slash answers (minutes-lived messages, read and written with Entra ID); shared keys are disabled
  #checkov:skip=CKV_AZURE_59:the Function App reaches it over the public endpoint (no VNet); nested public items are disabled and shared keys off
  # A queue-triggered app hosts on its sender's account (host_storage): no account of its own.
  for_each = local.storage_owners

  name                            = local.storage_names[each.key]
  resource_group_name             = local.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
  allow_nested_items_to_be_public = false
  tags                            = local.tags
}

resource "azurerm_storage_container" "deployment" {
  #checkov:skip=CKV2_AZURE_21:the package container is written by az functionapp deploy with Entra ID; Azure activity logs record it
  for_each = var.functions

  name                  = local.deployment_containers[each.key]
  storage_account_id    = azurerm_storage_account.function[local.storage_owner[each.key]].id
  container_access_type = "private"
}

resource "azurerm_service_plan" "function" {
  #checkov:skip=CKV_AZURE_212:Flex Consumption (FC1) scales from zero per event; there is no instance count to fix
  #checkov:skip=CKV_AZURE_225:FC1 plans have no zone-redundancy setting; a missed event is retried by Event Grid / the budget service
  for_each = var.functions

  name                = "${local.function_names[each.key]}-plan"
  resource_group_name = local.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

resource "azurerm_function_app_flex_consumption" "this" {
  for_each = var.functions

  name                = local.function_names[each.key]
  resource_group_name = local.resource_group_name
  location            = var.location
  service_plan_id     = azurerm_service_plan.function[each.key].id

  runtime_name           = "python"
  runtime_version        = var.runtime.python
  instance_memory_in_mb  = var.runtime.instance_memory_mb
  maximum_instance_count = each.value.max_instances

  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${azurerm_storage_account.function[local.storage_owner[each.key]].primary_blob_endpoint}${azurerm_storage_container.deployment[each.key].name}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.function[each.key].id

  # Code is deployed with Entra ID (az functionapp deploy), never with publishing credentials.
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.function[each.key].id]
  }

  app_settings = local.app_settings[each.key]

  site_config {
    application_insights_connection_string = one(azurerm_application_insights.this[*].connection_string)
    minimum_tls_version                    = "1.2"
  }

  tags = local.tags

  # Checks across variables live here, not in variable validations: control_plane comes from the
  # gcp module, which takes this module's identities, and a validation would close that loop.
  lifecycle {
    precondition {
      condition     = !contains(each.value.grants, "slack_signing_secret") || var.slack != null
      error_message = "${each.key}: the slack_signing_secret grant needs var.slack (the secret's reference)."
    }
    precondition {
      condition     = !contains(each.value.grants, "webhook_secret") || try(var.slack.webhook_secret_uri != null, false)
      error_message = "${each.key}: the webhook_secret grant needs slack.webhook_secret_uri."
    }
    precondition {
      condition     = length(setintersection(each.value.grants, ["queue_publish", "ledger"])) == 0 || var.control_plane.workload_identity_audience != null
      error_message = "${each.key}: queue_publish and ledger reach Google Cloud; they need control_plane.workload_identity_audience and token_audience."
    }
  }

  depends_on = [azurerm_role_assignment.host_storage, azurerm_role_assignment.slack_defer_read]
}

# --- observability: Application Insights, Entra ID ingestion only -------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  count = var.runtime.application_insights ? 1 : 0

  name                = "${var.name_prefix}-logs-${local.suffix}"
  resource_group_name = local.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.runtime.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "this" {
  count = var.runtime.application_insights ? 1 : 0

  name                         = "${var.name_prefix}-appi-${local.suffix}"
  resource_group_name          = local.resource_group_name
  location                     = var.location
  workspace_id                 = azurerm_log_analytics_workspace.this[0].id
  application_type             = "other"
  local_authentication_enabled = false
  tags                         = local.tags
}

# --- trigger: blob_events (BlobCreated -> Event Grid -> the function's Event Grid trigger) ------
# The subscription delivers to the function itself (@app.event_grid_trigger); Event Grid retries
# with backoff and dead-letters what still fails into the app's storage account ("dead-letter"
# container) with its system topic's identity. Event Grid checks that the function exists when
# the subscription is created: apply once, deploy the code (azure_deploy_commands), then apply
# with runtime.code_deployed = true (README: Deployment).

resource "azurerm_storage_container" "dead_letter" {
  #checkov:skip=CKV2_AZURE_21:Event Grid dead letters only; read by an operator replaying them
  for_each = merge(local.blob_events, local.resource_events)

  name                  = "dead-letter"
  storage_account_id    = azurerm_storage_account.function[each.key].id
  container_access_type = "private"
}

resource "azurerm_eventgrid_system_topic" "exports" {
  for_each = local.blob_events

  name                = "${local.function_names[each.key]}-exports"
  resource_group_name = local.resource_group_name
  location            = var.location
  source_resource_id  = local.trigger_account_ids[each.key]
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "event_grid_dead_letter" {
  for_each = local.blob_events

  scope                = "${azurerm_storage_account.function[each.key].id}/blobServices/default/containers/${azurerm_storage_container.dead_letter[each.key].name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.exports[each.key].identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_eventgrid_system_topic_event_subscription" "exports" {
  for_each = var.runtime.code_deployed ? local.blob_events : {}

  name                  = "blob-created"
  system_topic          = azurerm_eventgrid_system_topic.exports[each.key].name
  resource_group_name   = local.resource_group_name
  included_event_types  = ["Microsoft.Storage.BlobCreated"]
  event_delivery_schema = "EventGridSchema"

  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${each.value.trigger.container}/blobs/${each.value.trigger.prefix}"
  }

  azure_function_endpoint {
    function_id          = "${azurerm_function_app_flex_consumption.this[each.key].id}/functions/${each.value.entry_point}"
    max_events_per_batch = 1
  }

  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.function[each.key].id
    storage_blob_container_name = azurerm_storage_container.dead_letter[each.key].name
  }

  depends_on = [azurerm_role_assignment.event_grid_dead_letter]
}

# --- trigger: resource_events (VM starts and stops -> Event Grid -> instance_event) ---------------
# The subscription's resource events, filtered to the VM actions that start or end an instance's
# accrual (burnguard.core.state_events.AZURE_OPERATIONS; tests/infra/test_consistency.py keeps
# them equal), delivered to the function's Event Grid trigger. A subscription has at most one
# system topic of its own: if one exists already, point an event subscription of it at the
# function instead (README). A lost event is read by the meter's next tick: a short time to live,
# no dead-lettering by Event Grid (the function records malformed events itself).

resource "azurerm_eventgrid_system_topic" "subscription" {
  for_each = local.resource_events

  name                = "${local.function_names[each.key]}-subscription"
  resource_group_name = local.resource_group_name
  location            = "global"
  source_resource_id  = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
  topic_type          = "Microsoft.Resources.Subscriptions"
  tags                = local.tags
}

resource "azurerm_eventgrid_system_topic_event_subscription" "instance_events" {
  for_each = var.runtime.code_deployed ? local.resource_events : {}

  name                  = "vm-start-stop"
  system_topic          = azurerm_eventgrid_system_topic.subscription[each.key].name
  resource_group_name   = local.resource_group_name
  included_event_types  = ["Microsoft.Resources.ResourceActionSuccess"]
  event_delivery_schema = "EventGridSchema"

  advanced_filter {
    string_in {
      key = "data.operationName"
      values = [
        "Microsoft.Compute/virtualMachines/start/action",
        "Microsoft.Compute/virtualMachines/restart/action",
        "Microsoft.Compute/virtualMachines/deallocate/action",
        "Microsoft.Compute/virtualMachines/powerOff/action",
      ]
    }
  }

  azure_function_endpoint {
    function_id          = "${azurerm_function_app_flex_consumption.this[each.key].id}/functions/${each.value.entry_point}"
    max_events_per_batch = 1
  }

  retry_policy {
    max_delivery_attempts = 10
    event_time_to_live    = 60
  }
}

# --- trigger: queue (deferred slash answers) ------------------------------------------------------
# The slash command (grant slack_defer) puts slow commands on this queue; slack_deferred (queue
# trigger, hosted on the same account) answers them. A message failing five times goes to the
# poison queue, created here so that its reader needs no account-wide right.

resource "azurerm_storage_queue" "slack_defer" {
  for_each = toset(local.slack_defer_sender == null ? [] : [local.slack_defer_queue, "${local.slack_defer_queue}-poison"])

  name               = each.key
  storage_account_id = azurerm_storage_account.function[local.slack_defer_sender].id
}
