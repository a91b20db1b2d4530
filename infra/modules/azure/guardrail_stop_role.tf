# The identity the guardrail (Google Cloud) uses to deallocate and start VMs: a user-assigned
# managed identity whose only credential is a federated one trusting the guardrail's Google
# service account (Google-signed ID token, sub = its unique id). No client secret exists.

locals {
  stop_enabled = var.guardrail_stop != null
  # A custom role is defined at a subscription; it may be assigned at the listed scopes.
  stop_definition_scope = local.stop_enabled ? regex("^/subscriptions/[0-9a-f-]{36}", var.guardrail_stop.scopes[0]) : null
}

resource "azurerm_user_assigned_identity" "guardrail" {
  count = local.stop_enabled ? 1 : 0

  name                = "${var.name_prefix}-guardrail"
  resource_group_name = local.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "guardrail_google" {
  count = local.stop_enabled ? 1 : 0

  name                      = "google-guardrail"
  user_assigned_identity_id = azurerm_user_assigned_identity.guardrail[0].id
  issuer                    = "https://accounts.google.com"
  subject                   = var.guardrail_stop.google_service_account_unique_id
  audience                  = ["api://AzureADTokenExchange"]
}

resource "azurerm_role_definition" "vm_stop" {
  count = local.stop_enabled ? 1 : 0

  name        = "${var.name_prefix} guardrail: deallocate and start VMs"
  scope       = local.stop_definition_scope
  description = "burnguard guardrail: read VMs and their tags, deallocate, start. No delete, no power off, no write."

  permissions {
    actions = [
      "Microsoft.Compute/virtualMachines/read",
      "Microsoft.Compute/virtualMachines/instanceView/read",
      "Microsoft.Compute/virtualMachines/deallocate/action",
      "Microsoft.Compute/virtualMachines/start/action",
    ]
    not_actions = []
  }

  assignable_scopes = var.guardrail_stop.scopes
}

resource "azurerm_role_assignment" "guardrail_vm_stop" {
  for_each = local.stop_enabled ? toset(var.guardrail_stop.scopes) : toset([])

  scope              = each.value
  role_definition_id = azurerm_role_definition.vm_stop[0].role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.guardrail[0].principal_id
  principal_type     = "ServicePrincipal"
}
