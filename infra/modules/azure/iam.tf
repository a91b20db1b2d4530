# Role assignments of each function's managed identity: one built-in role on one resource
# each. Nothing at subscription or resource group scope.

# The Functions host keeps its state (leases, keys) and the deployment package in the app's own
# storage account, with the app's identity (shared keys are disabled).
resource "azurerm_role_assignment" "host_storage" {
  for_each = var.functions

  scope                = azurerm_storage_account.function[local.storage_owner[each.key]].id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "app_insights" {
  for_each = var.runtime.application_insights ? var.functions : {}

  scope                = azurerm_application_insights.this[0].id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "slack_signing_secret" {
  for_each = { for k, f in var.functions : k => f if contains(f.grants, "slack_signing_secret") }

  scope                = local.slack_secret_scope
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "webhook_secret" {
  for_each = { for k, f in var.functions : k => f if contains(f.grants, "webhook_secret") }

  scope                = local.webhook_secret_scope
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "read_exports" {
  for_each = { for k, f in var.functions : k => f if contains(f.grants, "read_exports") }

  scope                = "${local.trigger_account_ids[each.key]}/blobServices/default/containers/${each.value.trigger.container}"
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

# Deferred slash answers: the sender adds messages to the queue, nothing else; the reader gets,
# deletes and poisons them (Storage Queue Data Contributor on the two queues only).
resource "azurerm_role_assignment" "slack_defer_send" {
  for_each = local.slack_defer_sender == null ? {} : { (local.slack_defer_sender) = local.slack_defer_queue }

  scope                = "${azurerm_storage_account.function[each.key].id}/queueServices/default/queues/${azurerm_storage_queue.slack_defer[each.value].name}"
  role_definition_name = "Storage Queue Data Message Sender"
  principal_id         = azurerm_user_assigned_identity.function[each.key].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "slack_defer_read" {
  for_each = merge([for k, f in local.slack_defer_readers : {
    for q in [local.slack_defer_queue, "${local.slack_defer_queue}-poison"] : "${k}/${q}" => { function = k, queue = q }
  }]...)

  scope                = "${azurerm_storage_account.function[local.slack_defer_sender].id}/queueServices/default/queues/${azurerm_storage_queue.slack_defer[each.value.queue].name}"
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.function[each.value.function].principal_id
  principal_type       = "ServicePrincipal"
}
