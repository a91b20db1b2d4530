# What Azure bills, delivered to burnguard: a storage account and container for the Cost
# Management export (daily, month to date, actual cost) of the subscription. The ingest
# function's blob_events trigger names it with storage_account_id = "exports".
#
# Cost Management writes with the storage account's keys (the export resource has no managed
# identity), so this account, unlike the function apps' own, keeps shared keys enabled; the
# function reads it with its identity (Storage Blob Data Reader on the container).

locals {
  export_enabled = var.billing.export != null
  export_account = local.export_enabled ? "${substr(replace("${var.name_prefix}exp", "/[^a-z0-9]/", ""), 0, 16)}${substr(sha1("${local.suffix}/exports"), 0, 8)}" : null
  # trigger.storage_account_id = "exports" names this module's export account
  trigger_account_ids = { for k, f in local.blob_events : k => (f.trigger.storage_account_id == "exports" ? azurerm_storage_account.exports[0].id : f.trigger.storage_account_id) }
}

resource "azurerm_storage_account" "exports" {
  #checkov:skip=CKV2_AZURE_1:billing exports only; Microsoft-managed keys; a customer key would need a Key Vault key for data the subscription owner sees anyway
  #checkov:skip=CKV2_AZURE_33:Cost Management writes over the public endpoint; a private endpoint would need a VNet the module does not own
  #checkov:skip=CKV2_AZURE_40:Cost Management exports write with the account keys (the export resource has no managed identity); readers use Entra ID
  #checkov:skip=CKV_AZURE_33:no queue is used in this account
  #checkov:skip=CKV_AZURE_59:Cost Management and Event Grid reach it over the public endpoint; nested public items are disabled
  #checkov:skip=CKV_AZURE_206:LRS: exports are month-to-date snapshots that Cost Management writes again every day
  #checkov:skip=CKV2_AZURE_38:exports are rewritten daily; soft delete would only keep stale snapshots
  #checkov:skip=CKV2_AZURE_41:no SAS is issued by this module; Cost Management holds the keys
  count = local.export_enabled ? 1 : 0

  name                            = local.export_account
  resource_group_name             = local.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  default_to_oauth_authentication = true
  tags                            = local.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "exports" {
  #checkov:skip=CKV2_AZURE_21:billing exports written by Cost Management daily; Azure activity logs record access configuration
  count = local.export_enabled ? 1 : 0

  name                  = var.billing.export.container
  storage_account_id    = azurerm_storage_account.exports[0].id
  container_access_type = "private"
}

resource "azurerm_subscription_cost_management_export" "daily" {
  count = local.export_enabled ? 1 : 0

  name                         = "${var.name_prefix}-daily"
  subscription_id              = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
  recurrence_type              = "Daily"
  recurrence_period_start_date = var.billing.export.start_date
  recurrence_period_end_date   = var.billing.export.end_date
  file_format                  = "Csv"

  export_data_options {
    type       = var.billing.export.type
    time_frame = "MonthToDate"
  }

  export_data_storage_location {
    container_id     = azurerm_storage_container.exports[0].id
    root_folder_path = var.billing.export.root_folder
  }
}

# --- consumption budgets -> the Action Group -> the budget function ------------------------------
# The Action Group's webhook URL carries the budget function's secret, so the group is created
# outside Terraform (README: Deployment) and named here by id; the secret stays out of state.

resource "azurerm_consumption_budget_subscription" "this" {
  for_each = var.billing.budgets

  name            = "${var.name_prefix}-${each.key}"
  subscription_id = "/subscriptions/${data.azurerm_client_config.current.subscription_id}"
  amount          = each.value.amount
  time_grain      = "Monthly"

  time_period {
    start_date = each.value.start_date
  }

  dynamic "filter" {
    for_each = each.value.tag == null ? [] : [each.value.tag]
    content {
      tag {
        name   = filter.value.key
        values = [filter.value.value]
      }
    }
  }

  dynamic "notification" {
    for_each = each.value.thresholds
    content {
      enabled        = true
      operator       = "GreaterThan"
      threshold      = notification.value
      threshold_type = "Actual"
      contact_groups = [var.billing.action_group_id]
    }
  }

  lifecycle {
    precondition {
      condition     = var.billing.action_group_id != null
      error_message = "billing.budgets need billing.action_group_id (the Action Group whose webhook calls the budget function)."
    }
  }
}
