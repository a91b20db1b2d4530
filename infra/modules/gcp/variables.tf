# The interface shared by the three cloud modules: name_prefix, tags, package, runtime,
# functions, slack, control_plane and guardrail_stop. Google Cloud adds what the control plane
# needs: project_id, region, ledger (Firestore), queue (Pub/Sub) and federation (who in AWS and
# Azure may reach it).

variable "project_id" {
  description = "Project of the control plane (queue, ledger, guardrail, Slack command)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id: a Google Cloud project id."
  }
}

variable "region" {
  description = "Region of the functions (and default location of the ledger)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region: a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (lower case, 3-12 characters), e.g. \"burnguard\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-12 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Labels for every resource that takes them (the same map as AWS and Azure tags; Google's label rules apply)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "tags: Google label rules: lower-case keys starting with a letter, values of lower-case letters, digits, '_' and '-', 63 characters at most."
  }
}

variable "package" {
  description = "The Cloud Functions source bundle built by infra/build.py (infra/build/gcp/burnguard-gcp.zip): main.py, requirements.txt, the burnguard package and the policy."
  type = object({
    path = string
  })

  validation {
    condition     = endswith(var.package.path, ".zip")
    error_message = "package.path must be the .zip written by infra/build.py."
  }
}

variable "runtime" {
  description = "Settings common to every function: runtime (must match build.py --python), policy file, the service account Cloud Build uses (null: the project's default)."
  type = object({
    python                = optional(string, "python312")
    policy_path           = optional(string, "/workspace/policy.yaml")
    build_service_account = optional(string)
  })
  default = {}

  validation {
    condition     = contains(["python311", "python312", "python313"], var.runtime.python)
    error_message = "runtime.python: python311, python312 or python313."
  }
}

variable "functions" {
  description = <<-EOT
    The functions to deploy, by stem (the same stem on every cloud). Adding one is one entry:
      entry_point  the function's name in main.py (slack_command, slack_deferred, ...)
      trigger      type = "http" (public = true only for Slack-signed requests),
                   "pubsub" (topic = "queue", "slack_defer", "meter" (the meter's Cloud Scheduler
                   ticks, var.meter), or a topic path such as the one budget notifications go
                   to: a push subscription of this module, with retries and the dead-letter
                   topic),
                   "storage" (bucket: object finalized, through Eventarc), or
                   "audit_log" (Compute Engine instance start/stop/insert/delete/suspend/resume
                   Admin Activity audit log entries of this project, through Eventarc triggers)
      grants       each one a single role on a single resource (iam.tf):
                   "slack_signing_secret" secretAccessor on the signing secret
                   "slack_defer"          publisher on the slash command's deferral topic
                   "queue_publish"        publisher on the queue topic
                   "ledger"               datastore.user, conditioned on the ledger database
                   "read_exports"         objectViewer on the storage trigger's bucket
                   "slack_notify"         secretAccessor on the Slack bot token (BURNGUARD_SLACK_BOT_TOKEN_REF,
                                          BURNGUARD_SLACK_CHANNEL)
                   "stop_instances"       the guardrail's reach into the clouds
                                          (BURNGUARD_GCP_PROJECTS, BURNGUARD_GCE_LOCAL_SSD,
                                          BURNGUARD_AWS_*, BURNGUARD_AZURE_*); the identities
                                          themselves are guardrail_stop's. A function granted it
                                          runs as the guardrail's service account (the one the
                                          stop roles trust): the guardrail, the meter and
                                          instance_event (they list instances on the three
                                          clouds and stop at a crossing, as the guardrail does)
                   "dead_letter"          publisher on the dead-letter topic: a pubsub function
                                          that dead-letters itself (BURNGUARD_DEAD_LETTER_TOPIC,
                                          BURNGUARD_MAX_DELIVERY_ATTEMPTS = the subscription's
                                          max_delivery_attempts)
      environment  extra variables (no secret values)
  EOT
  type = map(object({
    entry_point   = string
    description   = optional(string, "")
    memory_mb     = optional(number, 512)
    cpu           = optional(string)
    timeout_s     = optional(number, 60)
    min_instances = optional(number, 0)
    max_instances = optional(number, 10)
    concurrency   = optional(number, 1)
    trigger = object({
      type                  = string
      public                = optional(bool, false)
      topic                 = optional(string)
      bucket                = optional(string)
      retry                 = optional(bool, true)
      max_delivery_attempts = optional(number, 5)
    })
    grants      = optional(set(string), [])
    environment = optional(map(string), {})
  }))

  validation {
    condition     = alltrue([for k in keys(var.functions) : can(regex("^[a-z][a-z0-9_]{0,16}$", k)) && length("${var.name_prefix}-${k}") >= 6])
    error_message = "functions: keys are the function stems, snake_case, at most 17 characters (the service account id is <prefix>-<stem>, 6-30 characters)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", f.entry_point))])
    error_message = "functions[*].entry_point: the name of a function in main.py."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["http", "pubsub", "storage", "audit_log"], f.trigger.type)])
    error_message = "functions[*].trigger.type: http, pubsub, storage or audit_log."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for g in f.grants : contains(["slack_signing_secret", "slack_defer", "queue_publish", "ledger", "read_exports", "slack_notify", "stop_instances", "dead_letter"], g)
    ])])
    error_message = "functions[*].grants: slack_signing_secret, slack_defer, queue_publish, ledger, read_exports, slack_notify, stop_instances, dead_letter."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : !contains(f.grants, "dead_letter") || f.trigger.type == "pubsub"])
    error_message = "functions[*].grants: dead_letter is for a pubsub function (its subscription's max_delivery_attempts is the function's)."
  }
  validation {
    # The stop roles on every cloud trust the guardrail's service account, and only it: the
    # functions granted stop_instances run as it.
    condition     = alltrue([for k, f in var.functions : !contains(f.grants, "stop_instances") || contains(["guardrail", "meter", "instance_event"], k)])
    error_message = "functions[*].grants: stop_instances only for the functions keyed guardrail, meter and instance_event (they run as the guardrail's identity, which the stop roles trust)."
  }
  validation {
    # allUsers may invoke only a function that verifies Slack's signature on every request.
    condition     = alltrue([for f in values(var.functions) : !f.trigger.public || (f.trigger.type == "http" && contains(f.grants, "slack_signing_secret"))])
    error_message = "functions[*].trigger.public: only an http function granted slack_signing_secret (it verifies Slack signatures) may be public."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : f.trigger.type != "pubsub" || (
      contains(["queue", "slack_defer", "budget", "meter"], coalesce(f.trigger.topic, "-")) || can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$", f.trigger.topic))
    )])
    error_message = "functions[*].trigger.topic: a topic of this module (queue, slack_defer, budget, meter) or a topic path projects/<p>/topics/<t> (e.g. the one budget notifications go to)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger.type != "storage" || (f.trigger.bucket != null && contains(f.grants, "read_exports"))])
    error_message = "functions[*].trigger: a storage trigger needs bucket, and the function needs the read_exports grant."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : !contains(f.grants, "read_exports") || f.trigger.type == "storage"])
    error_message = "functions[*].grants: read_exports is scoped to the storage trigger's bucket; it needs a storage trigger."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger.max_delivery_attempts >= 5 && f.trigger.max_delivery_attempts <= 100])
    error_message = "functions[*].trigger.max_delivery_attempts: 5-100 (Pub/Sub dead-letter policy)."
  }
  validation {
    # Cloud Run serves concurrent requests on one instance only with at least one vCPU.
    condition     = alltrue([for f in values(var.functions) : f.concurrency == 1 || (f.cpu != null && try(tonumber(f.cpu) >= 1, false))])
    error_message = "functions[*].concurrency: above 1 needs cpu of at least \"1\"."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_mb >= 128 && f.memory_mb <= 32768 && f.timeout_s >= 1 && f.timeout_s <= 3600])
    error_message = "functions[*]: memory_mb 128-32768, timeout_s 1-3600 (540 for event-driven functions)."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for name in keys(f.environment) : !can(regex("(?i)(secret|token|password|passwd|api_?key|private_?key)", name)) || can(regex("_(REF|ARN|ID|URI)$", name))
    ])])
    error_message = "functions[*].environment: no secret values in the environment; pass a reference (a name ending in _REF, _ARN, _ID or _URI)."
  }
}

variable "slack" {
  description = "The Slack app's secrets, by reference: Secret Manager secrets created outside Terraform (projects/<p>/secrets/<s>[/versions/<v>]): the signing secret (slash command) and the bot token with the channel the guardrail posts to (grant slack_notify)."
  type = object({
    signing_secret_id = string
    replay            = optional(string, "memory")
    bot_token_id      = optional(string)
    channel           = optional(string)
  })
  default = null

  validation {
    condition     = var.slack == null || can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+(/versions/[A-Za-z0-9]+)?$", var.slack.signing_secret_id))
    error_message = "slack.signing_secret_id: projects/<project>/secrets/<secret>[/versions/<version>]."
  }
  validation {
    condition     = var.slack == null || try(var.slack.bot_token_id == null || can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]+(/versions/[A-Za-z0-9]+)?$", var.slack.bot_token_id)), false)
    error_message = "slack.bot_token_id: projects/<project>/secrets/<secret>[/versions/<version>]."
  }
  validation {
    condition     = var.slack == null || try(contains(["memory", "ledger"], var.slack.replay), false)
    error_message = "slack.replay: memory or ledger (BURNGUARD_SLACK_REPLAY)."
  }
}

variable "control_plane" {
  description = "What the functions are told about the control plane. ledger_url is BURNGUARD_LEDGER: a per-instance SQLite file until the Firestore ledger adapter exists; then the ledger_url output."
  type = object({
    ledger_url = optional(string, "sqlite:////tmp/burnguard-ledger.sqlite3")
  })
  default = {}

  validation {
    condition     = can(regex("^(sqlite:///|firestore://)", var.control_plane.ledger_url))
    error_message = "control_plane.ledger_url: sqlite:///<path> or firestore://..."
  }
}

variable "ledger" {
  description = "The Firestore (native mode) database of the ledger; collection_prefix names its collections (<prefix>deliveries, <prefix>audit, ...: the ledger_url output's ?prefix=)."
  type = object({
    database_id       = optional(string)
    location_id       = optional(string)
    delete_protection = optional(bool, true)
    collection_prefix = optional(string, "burnguard_")
  })
  default = {}

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,64}$", var.ledger.collection_prefix))
    error_message = "ledger.collection_prefix: letters, digits, '_' and '-' (burnguard_ by default)."
  }

  validation {
    condition     = var.ledger.database_id == null || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.ledger.database_id))
    error_message = "ledger.database_id: 4-63 characters, lower-case letters, digits and '-'."
  }
}

variable "queue" {
  description = "The shared queue (Pub/Sub) and its dead-letter topic."
  type = object({
    message_retention             = optional(string, "604800s")
    dead_letter_retention         = optional(string, "2678400s")
    dead_letter_hold_subscription = optional(bool, true)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+s$", var.queue.message_retention)) && can(regex("^[0-9]+s$", var.queue.dead_letter_retention))
    error_message = "queue: retentions are durations in seconds, such as 604800s."
  }
}

variable "federation" {
  description = <<-EOT
    Who outside Google Cloud may use the control plane, through workload identity federation (no
    keys). Each principal gets only the grants listed for it (queue_publish, ledger).
      aws    account_id; roles: function stem => { role_name (its Lambda execution role),
             grants } (the aws module's gcp_federated_roles output)
      azure  tenant_id; audience: the Application ID URI the managed identities request their
             token for; identities: function stem => { principal_id (its managed identity),
             grants } (the azure module's gcp_federated_identities output)
  EOT
  type = object({
    aws = optional(object({
      account_id = string
      roles = optional(map(object({
        role_name = string
        grants    = set(string)
      })), {})
    }))
    azure = optional(object({
      tenant_id = string
      audience  = string
      identities = optional(map(object({
        principal_id = string
        grants       = set(string)
      })), {})
    }))
  })
  default = {}

  validation {
    condition     = var.federation.aws == null || can(regex("^[0-9]{12}$", var.federation.aws.account_id))
    error_message = "federation.aws.account_id: a 12-digit AWS account id."
  }
  validation {
    condition = var.federation.aws == null || try(alltrue([for r in values(var.federation.aws.roles) :
    can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", r.role_name)) && alltrue([for g in r.grants : contains(["queue_publish", "ledger"], g)])]), false)
    error_message = "federation.aws.roles: { role_name, grants } with grants among queue_publish, ledger."
  }
  validation {
    condition = var.federation.azure == null || try(
      can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.federation.azure.tenant_id)) &&
    alltrue([for i in values(var.federation.azure.identities) : alltrue([for g in i.grants : contains(["queue_publish", "ledger"], g)])]), false)
    error_message = "federation.azure: tenant_id a GUID; identities: { principal_id, grants } with grants among queue_publish, ledger."
  }
}

variable "guardrail_stop" {
  description = "Projects whose Compute Engine instances the guardrail may stop and start (a custom role: get, list, stop, suspend, start; never delete), and what it does with an instance that has local SSDs (local_ssd: refuse, discard or suspend; BURNGUARD_GCE_LOCAL_SSD). null: none."
  type = object({
    projects  = list(string)
    local_ssd = optional(string, "refuse")
  })
  default = null

  validation {
    condition     = var.guardrail_stop == null || try(length(var.guardrail_stop.projects) > 0 && alltrue([for p in var.guardrail_stop.projects : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", p))]), false)
    error_message = "guardrail_stop.projects: at least one project id."
  }
  validation {
    condition     = var.guardrail_stop == null || try(contains(["refuse", "discard", "suspend"], var.guardrail_stop.local_ssd), false)
    error_message = "guardrail_stop.local_ssd: refuse, discard or suspend (BURNGUARD_GCE_LOCAL_SSD)."
  }
}

variable "enable_apis" {
  description = "Enable the Google APIs the module uses (never disabled on destroy)."
  type        = bool
  default     = true
}

variable "guardrail_reach" {
  description = <<-EOT
    What the guardrail (grant stop_instances) is told about the other clouds' stop identities
    (the aws and azure modules' outputs): BURNGUARD_AWS_ROLE_ARN/BURNGUARD_AWS_REGIONS/BURNGUARD_AWS_TOKEN_AUDIENCE,
    BURNGUARD_AZURE_TENANT_ID/BURNGUARD_AZURE_CLIENT_ID/BURNGUARD_AZURE_SCOPES. Its Google Cloud
    projects are guardrail_stop.projects (BURNGUARD_GCP_PROJECTS). null parts: no reach there.
  EOT
  type = object({
    aws = optional(object({
      role_arn       = string
      regions        = list(string)
      token_audience = optional(string, "burnguard-aws-stop")
    }))
    azure = optional(object({
      tenant_id = string
      client_id = string
      scopes    = list(string)
    }))
  })
  default = {}

  validation {
    condition     = var.guardrail_reach.aws == null || try(can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.guardrail_reach.aws.role_arn)) && length(var.guardrail_reach.aws.regions) > 0, false)
    error_message = "guardrail_reach.aws: role_arn an IAM role ARN (the aws module's guardrail_stop_role_arn), regions at least one."
  }
  validation {
    condition     = var.guardrail_reach.azure == null || try(alltrue([for s in var.guardrail_reach.azure.scopes : can(regex("^[0-9a-f-]{36}(/[^/]+)?$", s))]) && length(var.guardrail_reach.azure.scopes) > 0, false)
    error_message = "guardrail_reach.azure.scopes: subscriptionId or subscriptionId/resourceGroup (BURNGUARD_AZURE_SCOPES)."
  }
}

variable "budgets" {
  description = <<-EOT
    Cloud Billing budgets whose notifications go to the <prefix>-budget topic (a function with a
    pubsub trigger on topic "budget" turns them into budget alerts). null: none.
      billing_account  the billing account id (XXXXXX-XXXXXX-XXXXXX)
      budgets          name => { amount, currency_code, projects (ids; null: the whole account),
                       thresholds (fractions of the amount) }
  EOT
  type = object({
    billing_account = string
    budgets = map(object({
      amount        = number
      currency_code = optional(string, "USD")
      projects      = optional(list(string))
      thresholds    = optional(list(number), [0.5, 0.9, 1.0])
    }))
  })
  default = null

  validation {
    condition     = var.budgets == null || can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.budgets.billing_account))
    error_message = "budgets.billing_account: a billing account id such as 012345-6789AB-CDEF01."
  }
  validation {
    condition     = var.budgets == null || try(alltrue([for b in values(var.budgets.budgets) : b.amount > 0 && alltrue([for t in b.thresholds : t > 0 && t <= 10])]), false)
    error_message = "budgets.budgets[*]: amount above 0; thresholds fractions in (0, 10]."
  }
}

variable "billing_export" {
  description = <<-EOT
    The daily extraction of the BigQuery billing export (enabled outside Terraform) into a new
    bucket in burnguard's layout (<prefix><billing_account>/<YYYY-MM>/<run>/part-*.parquet, then
    manifest.json). null: none.
      table            project.dataset.table of the detailed usage cost export
      billing_account  its billing account id (XXXXXX-XXXXXX-XXXXXX)
      bucket           the bucket to create (the ingest function's storage trigger names it)
      prefix           folder in the bucket ("" or ending in "/")
      schedule         cron, UTC (the billing export itself lands a few times a day)
  EOT
  type = object({
    table           = string
    billing_account = string
    bucket          = string
    prefix          = optional(string, "billing/")
    schedule        = optional(string, "0 6 * * *")
    retention_days  = optional(number, 400)
  })
  default = null

  validation {
    condition     = var.billing_export == null || try(can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_]+$", var.billing_export.table)) && can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_export.billing_account)) && (var.billing_export.prefix == "" || endswith(var.billing_export.prefix, "/")), false)
    error_message = "billing_export: table project.dataset.table, billing_account XXXXXX-XXXXXX-XXXXXX (upper-case hex), prefix empty or ending in /."
  }
}

variable "meter" {
  description = <<-EOT
    The live estimate's schedule: a Cloud Scheduler job publishes a tick to the meter topic every
    every_minutes minutes (5 by default, 1 at least; a divisor of 60 keeps the ticks even); a
    function triggered by { type = "pubsub", topic = "meter" } runs one meter tick per message.
    The job exists only when such a function does.
  EOT
  type = object({
    every_minutes = optional(number, 5)
    paused        = optional(bool, false)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.meter.every_minutes >= 1 && var.meter.every_minutes <= 30 && floor(var.meter.every_minutes) == var.meter.every_minutes
    error_message = "meter.every_minutes: a whole number of minutes from 1 to 30."
  }
}
