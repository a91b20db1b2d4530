# Identifiers only: names, ids, URLs. No secret value goes through Terraform.

output "function_app_names" {
  description = "Function App name of each function stem."
  value       = { for k, a in azurerm_function_app_flex_consumption.this : k => a.name }
}

output "function_urls" {
  description = "URL of each http function: https://<app>/api/<route> (the slash command's goes to the Slack app's Request URL)."
  value = {
    for k, f in var.functions : k => "https://${azurerm_function_app_flex_consumption.this[k].default_hostname}/api/${coalesce(f.trigger.route, f.entry_point)}"
    if f.trigger.type == "http"
  }
}

output "deploy_commands" {
  description = "Deploys the bundle to each app with Entra ID (no publishing credentials)."
  value = {
    for k, a in azurerm_function_app_flex_consumption.this : k =>
    "az functionapp deploy --resource-group ${local.resource_group_name} --name ${a.name} --src-path ${var.package.path} --type zip"
  }
}

output "function_identity_principal_ids" {
  description = "Managed identity principal (object) id of each function."
  value       = { for k, i in azurerm_user_assigned_identity.function : k => i.principal_id }
}

output "gcp_federated_identities" {
  description = "Function stem => { principal_id, grants } to bind in Google Cloud (queue_publish, ledger): the gcp module's federation.azure.identities."
  value = {
    for k, f in var.functions : k => {
      principal_id = azurerm_user_assigned_identity.function[k].principal_id
      grants       = setintersection(f.grants, ["queue_publish", "ledger"])
    } if length(setintersection(f.grants, ["queue_publish", "ledger"])) > 0
  }
}

output "tenant_id" {
  description = "The Entra tenant of the identities (the gcp module's federation.azure.tenant_id)."
  value       = data.azurerm_client_config.current.tenant_id
}

output "guardrail_identity_client_id" {
  description = "Client id the guardrail exchanges its Google ID token for (null without guardrail_stop)."
  value       = one(azurerm_user_assigned_identity.guardrail[*].client_id)
}

output "guardrail_vm_stop_role_id" {
  description = "The custom role (null without guardrail_stop)."
  value       = one(azurerm_role_definition.vm_stop[*].role_definition_resource_id)
}

output "resource_group_id" {
  description = "Resource group of the module's resources."
  value       = local.resource_group_id
}
