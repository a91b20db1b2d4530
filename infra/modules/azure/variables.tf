# The interface shared by the three cloud modules: name_prefix, tags, package, runtime,
# functions, slack, control_plane and guardrail_stop. Azure adds where things go: location and
# (optionally) an existing resource group.

variable "name_prefix" {
  description = "Prefix of every resource name (lower case, 3-12 characters), e.g. \"burnguard\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-12 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every resource (the same map as AWS tags and GCP labels)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 512 && length(v) <= 256 && !can(regex("[<>%&\\\\?/]", k))])
    error_message = "tags: Azure tag names up to 512 characters without < > % & \\ ? /, values up to 256."
  }
}

variable "location" {
  description = "Azure region, e.g. westeurope (one that offers Flex Consumption)."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group to deploy into; null: the module creates <prefix>-rg."
  type        = string
  default     = null
}

variable "package" {
  description = "The Function App bundle built by infra/build.py (infra/build/azure/burnguard-azure.zip). Terraform does not upload it (that needs basic-auth publishing credentials): deploy it with the deploy_commands output (az functionapp deploy, Entra ID)."
  type = object({
    path = string
  })

  validation {
    condition     = endswith(var.package.path, ".zip")
    error_message = "package.path must be the .zip written by infra/build.py."
  }
}

variable "runtime" {
  description = "Settings common to every function app: Python version (must match build.py --python), policy file, instance memory, Application Insights."
  type = object({
    python               = optional(string, "3.11")
    policy_path          = optional(string, "/home/site/wwwroot/policy.yaml")
    instance_memory_mb   = optional(number, 2048)
    application_insights = optional(bool, true)
    log_retention_days   = optional(number, 30)
    # Event Grid subscriptions to a function need the function deployed (az functionapp deploy,
    # after the first apply): set true then, and apply again.
    code_deployed = optional(bool, false)
  })
  default = {}

  validation {
    condition     = contains(["3.11", "3.12"], var.runtime.python)
    error_message = "runtime.python: 3.11 or 3.12 (burnguard needs 3.11+)."
  }
  validation {
    condition     = contains([512, 2048, 4096], var.runtime.instance_memory_mb)
    error_message = "runtime.instance_memory_mb: 512, 2048 or 4096 (Flex Consumption)."
  }
  validation {
    condition     = var.runtime.log_retention_days >= 30 && var.runtime.log_retention_days <= 730
    error_message = "runtime.log_retention_days: 30-730."
  }
}

variable "functions" {
  description = <<-EOT
    The functions to deploy, by stem (the same stem on every cloud). Each entry is one Function
    App (Flex Consumption) with its own managed identity, running the bundle's function_app.py
    with every other function of the map disabled. Adding one is one entry:
      entry_point  the function's name in function_app.py (slack_command, ...)
      trigger      type = "http" (public = true only for Slack-signed requests: anonymous at
                   the platform; route: the @app.route of function_app.py), or "blob_events" (storage_account_id, container, prefix:
                   BlobCreated events through an Event Grid system topic subscription to the
                   function's Event Grid trigger, retried, dead-lettered to its storage account;
                   created once runtime.code_deployed is true), "resource_events" (the
                   subscription's VM start/restart/deallocate/powerOff ResourceActionSuccess
                   events through an Event Grid system topic of the subscription: the
                   instance_event function; created once runtime.code_deployed is true), or
                   "queue" (queue = "slack_defer":
                   the Storage queue of deferred slash answers, which lives in the storage
                   account of the function granted slack_defer; host_storage must name that
                   function, so that both apps' AzureWebJobsStorage is the queue's account)
      host_storage the key of another function whose storage account this app's host uses
                   (AzureWebJobsStorage); only for a queue trigger. null: its own account
      grants       "slack_signing_secret" Key Vault Secrets User on the one secret
                   "webhook_secret"       Key Vault Secrets User on the budget webhook's secret
                                          (slack.webhook_secret_uri; BURNGUARD_WEBHOOK_SECRET_REF):
                                          the Action Group calls /api/budget with it in the URL
                   "read_exports"         Storage Blob Data Reader on the trigger's container
                   "queue_publish", "ledger"  reach Google Cloud by workload identity federation
                                          (no Azure role; the gcp module binds them)
                   "slack_defer"          Storage Queue Data Message Sender on the queue of
                                          deferred slash answers (BURNGUARD_SLACK_DEFER_QUEUE),
                                          created in this function's storage account
      environment  extra app settings (no secret values)
  EOT
  type = map(object({
    entry_point   = string
    description   = optional(string, "")
    max_instances = optional(number, 40)
    host_storage  = optional(string)
    trigger = object({
      type               = string
      public             = optional(bool, false)
      route              = optional(string)
      storage_account_id = optional(string)
      container          = optional(string)
      prefix             = optional(string, "")
      queue              = optional(string)
    })
    grants      = optional(set(string), [])
    environment = optional(map(string), {})
  }))

  validation {
    condition     = alltrue([for k in keys(var.functions) : can(regex("^[a-z][a-z0-9_]{0,16}$", k))])
    error_message = "functions: keys are the function stems, snake_case, at most 17 characters."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", f.entry_point))])
    error_message = "functions[*].entry_point: the name of a function in function_app.py."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["http", "blob_events", "resource_events", "queue"], f.trigger.type)])
    error_message = "functions[*].trigger.type: http, blob_events, resource_events or queue."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for g in f.grants : contains(["slack_signing_secret", "webhook_secret", "read_exports", "queue_publish", "ledger", "slack_defer"], g)
    ])])
    error_message = "functions[*].grants: slack_signing_secret, webhook_secret, read_exports, queue_publish, ledger, slack_defer."
  }
  validation {
    # One queue of deferred answers, in the sender's account; its reader hosts on that account.
    condition = length([for f in values(var.functions) : f if contains(f.grants, "slack_defer")]) <= 1 && alltrue([for k, f in var.functions :
      (f.trigger.type == "queue") == (f.host_storage != null) && (f.trigger.type != "queue" || (
        f.trigger.queue == "slack_defer" && contains(keys(var.functions), f.host_storage) && f.host_storage != k &&
        try(contains(var.functions[f.host_storage].grants, "slack_defer") && var.functions[f.host_storage].host_storage == null, false)
    ))])
    error_message = "functions[*]: a queue trigger (queue = \"slack_defer\") needs host_storage = the key of the one function granted slack_defer (the queue is in its storage account); host_storage only with a queue trigger."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : !f.trigger.public || (f.trigger.type == "http" && (contains(f.grants, "slack_signing_secret") || contains(f.grants, "webhook_secret")))])
    error_message = "functions[*].trigger.public: only an http function that checks a secret (slack_signing_secret: Slack signatures; webhook_secret: the budget webhook's secret) may be anonymous."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : f.trigger.type != "blob_events" || (
      (f.trigger.storage_account_id == "exports" || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Storage/storageAccounts/[a-z0-9]{3,24}$", f.trigger.storage_account_id))) &&
      can(regex("^[a-z0-9](-?[a-z0-9]){2,62}$", f.trigger.container)) && contains(f.grants, "read_exports")
    )])
    error_message = "functions[*].trigger: blob_events needs storage_account_id (resource id, or \"exports\": the account of var.billing.export), container, and the read_exports grant."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : !contains(f.grants, "read_exports") || f.trigger.type == "blob_events"])
    error_message = "functions[*].grants: read_exports is scoped to the blob_events trigger's container; it needs that trigger."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.max_instances >= 40 && f.max_instances <= 1000])
    error_message = "functions[*].max_instances: 40-1000 (Flex Consumption)."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for name in keys(f.environment) : !can(regex("(?i)(secret|token|password|passwd|api_?key|private_?key|connection_?string)", name)) || can(regex("_(REF|ARN|ID|URI)$", name))
    ])])
    error_message = "functions[*].environment: no secret values in app settings; pass a reference (a name ending in _REF, _ARN, _ID or _URI)."
  }
}

variable "slack" {
  description = "The Slack app's signing secret, by reference: a Key Vault secret created outside Terraform. The vault must use Azure RBAC (the module grants Key Vault Secrets User on the one secret)."
  type = object({
    signing_secret_uri = string
    key_vault_id       = string
    replay             = optional(string, "memory")
    # The budget webhook's secret (in the Action Group's URL), in the same vault.
    webhook_secret_uri = optional(string)
  })
  default = null

  validation {
    condition     = var.slack == null || can(regex("^https://[a-z0-9-]{3,24}\\.vault\\.[a-z0-9.]+/secrets/[A-Za-z0-9-]{1,127}(/[0-9a-f]{32})?/?$", var.slack.signing_secret_uri))
    error_message = "slack.signing_secret_uri: https://<vault>.vault.azure.net/secrets/<name>[/<version>]."
  }
  validation {
    condition     = var.slack == null || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.KeyVault/vaults/[A-Za-z0-9-]{3,24}$", var.slack.key_vault_id))
    error_message = "slack.key_vault_id: the vault's resource id (/subscriptions/.../providers/Microsoft.KeyVault/vaults/<vault>)."
  }
  validation {
    condition     = var.slack == null || try(lower(regex("^https://([a-z0-9-]+)\\.", var.slack.signing_secret_uri)[0]) == lower(regex("/vaults/([A-Za-z0-9-]+)$", var.slack.key_vault_id)[0]), false)
    error_message = "slack: signing_secret_uri and key_vault_id name different vaults."
  }
  validation {
    condition     = var.slack == null || try(contains(["memory", "ledger"], var.slack.replay), false)
    error_message = "slack.replay: memory or ledger (BURNGUARD_SLACK_REPLAY)."
  }
}

variable "control_plane" {
  description = <<-EOT
    Where the shared control plane (Google Cloud) is: the gcp module's outputs.
      ledger_url                  BURNGUARD_LEDGER (a per-instance SQLite file until the Firestore
                                  ledger adapter exists)
      queue_topic                 projects/<p>/topics/<t>
      workload_identity_audience  //iam.googleapis.com/.../providers/azure-functions
      token_audience              Application ID URI of the Entra application the managed
                                  identities request their token for (the gcp module's
                                  federation.azure.audience)
  EOT
  type = object({
    ledger_url                 = optional(string, "sqlite:////tmp/burnguard-ledger.sqlite3")
    queue_topic                = optional(string)
    workload_identity_audience = optional(string)
    token_audience             = optional(string)
  })
  default = {}

  validation {
    condition     = can(regex("^(sqlite:///|firestore://)", var.control_plane.ledger_url))
    error_message = "control_plane.ledger_url: sqlite:///<path> or firestore://..."
  }
  validation {
    condition     = var.control_plane.workload_identity_audience == null || can(regex("^//iam\\.googleapis\\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+$", var.control_plane.workload_identity_audience))
    error_message = "control_plane.workload_identity_audience: //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>."
  }
  validation {
    condition     = (var.control_plane.workload_identity_audience == null) == (var.control_plane.token_audience == null)
    error_message = "control_plane: workload_identity_audience and token_audience go together."
  }
}

variable "guardrail_stop" {
  description = <<-EOT
    The identity the guardrail (a Google Cloud service account) uses to deallocate and start VMs:
    a user-assigned managed identity with a federated credential trusting that service account
    (no secret), holding a custom role (read, deallocate, start; no delete, no power off) at the
    given scopes. Azure RBAC has no tag conditions for VMs: choose scopes (resource groups) that
    hold the GPU VMs; the scope tag and protect tag are enforced by the guardrail's code. null: none.
      google_service_account_unique_id  the gcp module's guardrail_service_account_unique_id
      scopes                            subscription or resource group ids
  EOT
  type = object({
    google_service_account_unique_id = string
    scopes                           = list(string)
  })
  default = null

  validation {
    condition     = var.guardrail_stop == null || can(regex("^[0-9]{21}$", var.guardrail_stop.google_service_account_unique_id))
    error_message = "guardrail_stop.google_service_account_unique_id: the 21-digit unique id of the guardrail's Google service account."
  }
  validation {
    condition     = var.guardrail_stop == null || try(length(var.guardrail_stop.scopes) > 0 && alltrue([for s in var.guardrail_stop.scopes : can(regex("^/subscriptions/[0-9a-f-]{36}(/resourceGroups/[^/]+)?$", s))]), false)
    error_message = "guardrail_stop.scopes: subscription (/subscriptions/<id>) or resource group (/subscriptions/<id>/resourceGroups/<name>) ids."
  }
}

variable "billing" {
  description = <<-EOT
    What Azure bills, delivered to burnguard (optional):
      export  a storage account and container for the subscription's Cost Management export
              (daily, month to date); give the ingest function trigger = { type = "blob_events",
              storage_account_id = "exports", container = <container>, prefix = <root_folder> }.
              start_date/end_date: RFC 3339 (the export's recurrence period).
      budgets          name => { amount, start_date (first of a month, RFC 3339), thresholds
                       (percent), tag ({ key, value }: only costs carrying it) }: subscription
                       consumption budgets notifying action_group_id
      action_group_id  the Action Group whose webhook URL (with the budget function's secret)
                       calls the budget function; created outside Terraform (README:
                       Deployment) so that the secret stays out of state
  EOT
  type = object({
    export = optional(object({
      container   = optional(string, "exports")
      root_folder = optional(string, "burnguard")
      type        = optional(string, "ActualCost")
      start_date  = string
      end_date    = optional(string, "2036-01-01T00:00:00Z")
    }))
    budgets = optional(map(object({
      amount     = number
      start_date = string
      thresholds = optional(list(number), [50, 90, 100])
      tag = optional(object({
        key   = string
        value = string
      }))
    })), {})
    action_group_id = optional(string)
  })
  default = {}

  validation {
    condition     = var.billing.export == null || try(contains(["ActualCost", "AmortizedCost", "Usage"], var.billing.export.type) && can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T", var.billing.export.start_date)), false)
    error_message = "billing.export: type ActualCost, AmortizedCost or Usage; start_date RFC 3339 (2026-12-01T00:00:00Z)."
  }
  validation {
    condition     = alltrue([for b in values(var.billing.budgets) : b.amount > 0 && can(regex("^[0-9]{4}-[0-9]{2}-01T", b.start_date)) && alltrue([for t in b.thresholds : t > 0 && t <= 1000])])
    error_message = "billing.budgets[*]: amount above 0, start_date the first of a month (RFC 3339), thresholds percentages in (0, 1000]."
  }
  validation {
    condition     = var.billing.action_group_id == null || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/(?i:microsoft\\.insights)/actionGroups/[^/]+$", var.billing.action_group_id))
    error_message = "billing.action_group_id: an Action Group resource id."
  }
}
