# The interface shared by the three cloud modules (modules/aws, modules/gcp, modules/azure):
# name_prefix, tags, package, runtime, functions, slack, control_plane (AWS, Azure) and
# guardrail_stop. Each cloud adds only what it cannot do without (here: nothing; the region
# and account come from the provider).

variable "name_prefix" {
  description = "Prefix of every resource name (lower case, 3-12 characters), e.g. \"burnguard\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-12 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them (the same map goes to GCP labels and Azure tags)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags: keys up to 128 characters (not starting with aws:), values up to 256."
  }
}

variable "package" {
  description = "The Lambda bundle built by infra/build.py (infra/build/aws/burnguard-aws.zip): every function of the map runs from it."
  type = object({
    path = string
  })

  validation {
    condition     = endswith(var.package.path, ".zip")
    error_message = "package.path must be the .zip written by infra/build.py."
  }
}

variable "runtime" {
  description = "Settings common to every function: Python runtime (must match build.py --python), policy file, log retention."
  type = object({
    python             = optional(string, "python3.12")
    architecture       = optional(string, "x86_64")
    policy_path        = optional(string, "/var/task/policy.yaml")
    log_retention_days = optional(number, 30)
  })
  default = {}

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.runtime.python)
    error_message = "runtime.python: python3.11, python3.12 or python3.13 (burnguard needs 3.11+)."
  }
  validation {
    # build.py installs manylinux x86_64 wheels (pyarrow, numpy, isal are native code).
    condition     = var.runtime.architecture == "x86_64"
    error_message = "runtime.architecture: x86_64 (infra/build.py builds x86_64 wheels)."
  }
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.runtime.log_retention_days)
    error_message = "runtime.log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "functions" {
  description = <<-EOT
    The functions to deploy, by stem (the same stem on every cloud: slack_command, ingest,
    budget, guardrail). Adding a function is one entry here:

      handler     "<file>.<callable>" at the bundle root, e.g. "slack_command.lambda_handler"
      trigger     type = "function_url" (public = true only for Slack-signed requests),
                  "s3" (bucket, prefix: S3 "Object Created" through EventBridge),
                  "sns" (topic_arn; "budget": the topic of var.billing.budgets),
                  "ec2_state" (EventBridge "EC2 Instance State-change Notification" of this
                  account and region: the instance_event function), or "none"
      grants      what the function may do, each one mapped to least-privilege IAM in iam.tf:
                  "slack_signing_secret" read the Slack signing secret (var.slack)
                  "self_invoke"          invoke itself asynchronously (deferred slash commands)
                  "read_exports"         s3:GetObject under the trigger's bucket/prefix
                  "queue_publish"        publish to the Pub/Sub queue through workload identity
                                         federation (no AWS permission; GCP binds the role)
                  "ledger"               use the Firestore ledger the same way
                  "state"                marker records in the module's state bucket
                                         (var.state; BURNGUARD_STATE_BUCKET/_PREFIX)
                  "fan_out"              big deliveries fan out to the parts queue, which
                                         triggers this function (needs "state"; one function;
                                         BURNGUARD_PARTS_QUEUE_URL, BURNGUARD_FAN_OUT_PARTS =
                                         fan_out_parts)
      environment extra variables (no secret values: names that look like secrets must end in
                  _REF, _ARN, _ID or _URI)
  EOT
  type = map(object({
    handler              = string
    description          = optional(string, "")
    memory_mb            = optional(number, 512)
    timeout_s            = optional(number, 30)
    reserved_concurrency = optional(number)
    fan_out_parts        = optional(number, 2)
    trigger = object({
      type      = string
      public    = optional(bool, false)
      bucket    = optional(string)
      prefix    = optional(string, "")
      topic_arn = optional(string)
    })
    grants      = optional(set(string), [])
    environment = optional(map(string), {})
  }))

  validation {
    condition     = alltrue([for k in keys(var.functions) : can(regex("^[a-z][a-z0-9_]{0,16}$", k))])
    error_message = "functions: keys are the function stems, snake_case, at most 17 characters (slack_command, ingest, ...)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$", f.handler))])
    error_message = "functions[*].handler: \"<file>.<callable>\" at the bundle root, e.g. slack_command.lambda_handler."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["function_url", "s3", "sns", "ec2_state", "none"], f.trigger.type)])
    error_message = "functions[*].trigger.type: function_url, s3, sns, ec2_state or none."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for g in f.grants : contains(["slack_signing_secret", "self_invoke", "read_exports", "queue_publish", "ledger", "state", "fan_out"], g)
    ])])
    error_message = "functions[*].grants: slack_signing_secret, self_invoke, read_exports, queue_publish, ledger, state, fan_out."
  }
  validation {
    # The parts queue triggers the function that fans out; two would take each other's parts.
    condition     = length([for f in values(var.functions) : f if contains(f.grants, "fan_out")]) <= 1 && alltrue([for f in values(var.functions) : !contains(f.grants, "fan_out") || (contains(f.grants, "state") && f.fan_out_parts >= 1)])
    error_message = "functions[*].grants: fan_out for one function at most, with the state grant (parts record their summaries there) and fan_out_parts >= 1."
  }
  validation {
    # A URL with authorization NONE is open to the internet. Only a function that verifies
    # Slack's signature on every request (it holds the signing secret) may have one.
    condition     = alltrue([for f in values(var.functions) : !f.trigger.public || (f.trigger.type == "function_url" && contains(f.grants, "slack_signing_secret"))])
    error_message = "functions[*].trigger.public: only a function_url trigger of a function granted slack_signing_secret (it verifies Slack signatures) may be public."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger.type != "s3" || (f.trigger.bucket != null && contains(f.grants, "read_exports"))])
    error_message = "functions[*].trigger: an s3 trigger needs bucket, and the function needs the read_exports grant."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : !contains(f.grants, "read_exports") || f.trigger.type == "s3"])
    error_message = "functions[*].grants: read_exports is scoped to the s3 trigger's bucket/prefix; it needs an s3 trigger."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.trigger.type != "sns" || f.trigger.topic_arn == "budget" || can(regex("^arn:aws[a-z-]*:sns:", f.trigger.topic_arn))])
    error_message = "functions[*].trigger: an sns trigger needs topic_arn (an SNS topic ARN, or \"budget\": this module's budget topic)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_mb >= 128 && f.memory_mb <= 10240 && f.timeout_s >= 1 && f.timeout_s <= 900])
    error_message = "functions[*]: memory_mb 128-10240, timeout_s 1-900."
  }
  validation {
    condition = alltrue([for f in values(var.functions) : alltrue([
      for name in keys(f.environment) : !can(regex("(?i)(secret|token|password|passwd|api_?key|private_?key)", name)) || can(regex("_(REF|ARN|ID|URI)$", name))
    ])])
    error_message = "functions[*].environment: no secret values in the environment; pass a reference (a name ending in _REF, _ARN, _ID or _URI)."
  }
}

variable "slack" {
  description = "The Slack app's signing secret, by reference: an AWS Secrets Manager secret created outside Terraform (its value never enters Terraform)."
  type = object({
    signing_secret_arn      = string
    signing_secret_json_key = optional(string)
    kms_key_arn             = optional(string)
    replay                  = optional(string, "memory")
  })
  default = null

  validation {
    # The full ARN, with the 6-character suffix Secrets Manager appends: IAM matches it exactly.
    condition     = var.slack == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", var.slack.signing_secret_arn))
    error_message = "slack.signing_secret_arn: the full Secrets Manager ARN, with its 6-character suffix (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf)."
  }
  validation {
    condition     = var.slack == null || try(var.slack.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.slack.kms_key_arn)), false)
    error_message = "slack.kms_key_arn: a KMS key ARN (only when the secret uses a customer-managed key)."
  }
  validation {
    condition     = var.slack == null || try(contains(["memory", "ledger"], var.slack.replay), false)
    error_message = "slack.replay: memory or ledger (BURNGUARD_SLACK_REPLAY)."
  }
}

variable "control_plane" {
  description = <<-EOT
    Where the shared control plane (Google Cloud) is: the gcp module's outputs.
      ledger_url                  BURNGUARD_LEDGER. Until the Firestore ledger adapter exists, the
                                  default is a per-instance SQLite file (development only).
      queue_topic                 projects/<p>/topics/<t> (functions granted queue_publish)
      workload_identity_audience  //iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<aws>
  EOT
  type = object({
    ledger_url                 = optional(string, "sqlite:////tmp/burnguard-ledger.sqlite3")
    queue_topic                = optional(string)
    workload_identity_audience = optional(string)
  })
  default = {}

  validation {
    condition     = can(regex("^(sqlite:///|firestore://)", var.control_plane.ledger_url))
    error_message = "control_plane.ledger_url: sqlite:///<path> or firestore://..."
  }
  validation {
    condition     = var.control_plane.queue_topic == null || can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$", var.control_plane.queue_topic))
    error_message = "control_plane.queue_topic: projects/<project>/topics/<topic>."
  }
  validation {
    condition     = var.control_plane.workload_identity_audience == null || can(regex("^//iam\\.googleapis\\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/providers/[a-z0-9-]+$", var.control_plane.workload_identity_audience))
    error_message = "control_plane.workload_identity_audience: //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>."
  }
}

variable "guardrail_stop" {
  description = <<-EOT
    The role the guardrail (a Google Cloud service account) assumes to stop and start EC2
    instances, with web identity federation (accounts.google.com, no keys). null: no role.
      google_service_account_unique_id  the guardrail service account's numeric unique id (the
                                        gcp module's guardrail_service_account_unique_id)
      token_audience                    the audience the guardrail requests its ID token for
      scope_tag_keys                    tag keys of the policy's scopes (team, project, ...):
                                        only instances carrying one of them can be stopped
      protect_tag                       "key=value": instances carrying it are never touched
      instance_types                    instance type patterns that may be stopped (GPU families);
                                        [] removes the condition
      regions                           regions where instances may be stopped (["*"]: all)
  EOT
  type = object({
    google_service_account_unique_id = string
    token_audience                   = optional(string, "burnguard-aws-stop")
    scope_tag_keys                   = list(string)
    protect_tag                      = optional(string, "burnguard:protect=true")
    instance_types                   = optional(list(string), ["p*", "g*"])
    regions                          = optional(list(string), ["*"])
    max_session_duration_s           = optional(number, 3600)
  })
  default = null

  validation {
    condition     = var.guardrail_stop == null || can(regex("^[0-9]{21}$", var.guardrail_stop.google_service_account_unique_id))
    error_message = "guardrail_stop.google_service_account_unique_id: the 21-digit unique id of the guardrail's Google service account."
  }
  validation {
    condition     = var.guardrail_stop == null || try(length(var.guardrail_stop.scope_tag_keys) > 0 && alltrue([for k in var.guardrail_stop.scope_tag_keys : can(regex("^[A-Za-z0-9 _.:/=+@-]{1,128}$", k)) && !startswith(lower(k), "aws:")]), false)
    error_message = "guardrail_stop.scope_tag_keys: at least one tag key (AWS tag key characters, no wildcards)."
  }
  validation {
    condition     = var.guardrail_stop == null || try(can(regex("^[A-Za-z0-9 _.:/+@-]{1,128}=[A-Za-z0-9 _.:/=+@-]{1,256}$", var.guardrail_stop.protect_tag)), false)
    error_message = "guardrail_stop.protect_tag: key=value, e.g. burnguard:protect=true."
  }
  validation {
    condition     = var.guardrail_stop == null || try(alltrue([for t in var.guardrail_stop.instance_types : can(regex("^[a-z0-9][a-z0-9.-]*\\*?$", t))]), false)
    error_message = "guardrail_stop.instance_types: instance types or family patterns such as p* or g6e.*."
  }
  validation {
    condition     = var.guardrail_stop == null || try(alltrue([for r in var.guardrail_stop.regions : r == "*" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))]), false)
    error_message = "guardrail_stop.regions: region names (us-east-1, ...) or [\"*\"]."
  }
  validation {
    condition     = var.guardrail_stop == null || try(var.guardrail_stop.max_session_duration_s >= 3600 && var.guardrail_stop.max_session_duration_s <= 43200, false)
    error_message = "guardrail_stop.max_session_duration_s: 3600-43200."
  }
}

variable "state" {
  description = <<-EOT
    The state bucket of functions granted "state" (<prefix>-state-<account>-<region>) and the
    parts queue of the one granted "fan_out":
      prefix             key prefix of the markers (BURNGUARD_STATE_PREFIX), ending in "/"
      expiration_days    markers older than this are deleted (a delivery re-sent later counts again)
      max_receive_count  receives of a part job before it moves to the dead-letter queue
  EOT
  type = object({
    prefix            = optional(string, "burnguard-state/")
    expiration_days   = optional(number, 90)
    max_receive_count = optional(number, 5)
  })
  default = {}

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+/$", var.state.prefix)) && var.state.expiration_days >= 1 && var.state.max_receive_count >= 1 && var.state.max_receive_count <= 1000
    error_message = "state: prefix a key prefix ending in /, expiration_days >= 1, max_receive_count 1-1000."
  }
}

variable "billing" {
  description = <<-EOT
    What AWS bills, delivered to burnguard (both optional):
      export   the Data Export (CUR 2.0) into a new encrypted bucket bucket_name under prefix, its
               object events to EventBridge (give the ingest function trigger = { type = "s3",
               bucket = <bucket_name>, prefix = <prefix> }). Create it in the payer (management)
               account; Data Exports is a us-east-1 service, the bucket may be anywhere.
      budgets  name => { amount, currency, thresholds (percent of amount), tag ({ key, value }:
               only costs carrying that cost allocation tag) }, notifying the <prefix>-budget SNS
               topic (give the budget function trigger = { type = "sns", topic_arn = "budget" }).
  EOT
  type = object({
    export = optional(object({
      bucket_name    = string
      prefix         = optional(string, "cur/")
      retention_days = optional(number, 400)
      query_statement = optional(string, <<-SQL
        SELECT bill_billing_period_start_date, bill_billing_period_end_date, bill_invoice_id,
          bill_payer_account_id, line_item_line_item_type, line_item_line_item_description,
          line_item_unblended_cost, line_item_currency_code, line_item_usage_start_date,
          line_item_usage_end_date, line_item_usage_account_id, line_item_usage_account_name,
          line_item_product_code, line_item_usage_type, line_item_usage_amount,
          line_item_resource_id, line_item_availability_zone, product, product_instance_type,
          product_region_code, product_sku, pricing_public_on_demand_cost, pricing_term,
          pricing_unit, savings_plan_savings_plan_effective_cost, savings_plan_savings_plan_a_r_n,
          savings_plan_total_commitment_to_date, savings_plan_used_commitment,
          reservation_effective_cost, reservation_reservation_a_r_n,
          reservation_unused_amortized_upfront_fee_for_billing_period,
          reservation_unused_recurring_fee, resource_tags
        FROM COST_AND_USAGE_REPORT
      SQL
      )
    }))
    budgets = optional(map(object({
      amount     = number
      currency   = optional(string, "USD")
      thresholds = optional(list(number), [50, 90, 100])
      tag = optional(object({
        key   = string
        value = string
      }))
    })), {})
  })
  default = {}

  validation {
    condition     = var.billing.export == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.billing.export.bucket_name))
    error_message = "billing.export.bucket_name: an S3 bucket name."
  }
  validation {
    condition     = alltrue([for b in values(var.billing.budgets) : b.amount > 0 && alltrue([for t in b.thresholds : t > 0 && t <= 1000])])
    error_message = "billing.budgets[*]: amount above 0, thresholds percentages in (0, 1000]."
  }
}
