variable "name_prefix" {
  description = "Prefix of every resource name, on every cloud."
  type        = string
  default     = "burnguard"
}

variable "tags" {
  description = "Tags (AWS, Azure) and labels (GCP) of every resource: Google's label rules apply."
  type        = map(string)
  default     = { app = "burnguard", team = "platform" }
}

# --- AWS ---------------------------------------------------------------------------------------

variable "aws_region" {
  type    = string
  default = "eu-west-1"
}

variable "aws_slack_signing_secret_arn" {
  description = "Full ARN of the Secrets Manager secret holding the Slack signing secret (created outside Terraform)."
  type        = string
}

variable "aws_scope_tag_keys" {
  description = "Tag keys of the policy's scopes: EC2 instances carrying one of them may be stopped."
  type        = list(string)
  default     = ["team", "project"]
}

variable "aws_gpu_regions" {
  description = "Regions whose EC2 GPU instances the guardrail may stop (BURNGUARD_AWS_REGIONS)."
  type        = list(string)
  default     = ["eu-west-1"]
}

variable "aws_export_bucket" {
  description = "Name of the bucket the module creates for the AWS Data Export (CUR 2.0)."
  type        = string
}

variable "aws_export_prefix" {
  description = "S3 prefix of the export's objects."
  type        = string
  default     = "cur/"
}

variable "aws_budgets" {
  description = "AWS Budgets: name => { amount, currency, thresholds (percent), tag = { key, value } }."
  type = map(object({
    amount     = number
    currency   = optional(string, "USD")
    thresholds = optional(list(number), [50, 90, 100])
    tag = optional(object({
      key   = string
      value = string
    }))
  }))
  default = {}
}

# --- Google Cloud (the control plane) ----------------------------------------------------------

variable "gcp_project_id" {
  type = string
}

variable "gcp_region" {
  type    = string
  default = "europe-west1"
}

variable "gcp_slack_signing_secret_id" {
  description = "Secret Manager secret holding the Slack signing secret: projects/<p>/secrets/<s> (created outside Terraform)."
  type        = string
}

variable "gcp_gpu_projects" {
  description = "Projects whose GCE GPU instances the guardrail may stop."
  type        = list(string)
  default     = []
}

variable "gcp_slack_bot_token_id" {
  description = "Secret Manager secret holding the Slack bot token (the guardrail posts with it): projects/<p>/secrets/<s>."
  type        = string
}

variable "slack_channel" {
  description = "Slack channel id the guardrail posts to (BURNGUARD_SLACK_CHANNEL)."
  type        = string
}

variable "gcp_billing_export_bucket" {
  description = "Bucket the module creates for the daily extraction of the BigQuery billing export."
  type        = string
}

variable "gcp_billing_table" {
  description = "The BigQuery detailed billing export table, project.dataset.gcp_billing_export_resource_v1_<account> (null: no extraction)."
  type        = string
  default     = null
}

variable "gcp_billing_account" {
  description = "Billing account of the Cloud Billing budgets (null: no budgets)."
  type        = string
  default     = null
}

variable "gcp_budgets" {
  description = "Cloud Billing budgets: name => { amount, currency_code, projects, thresholds }."
  type = map(object({
    amount        = number
    currency_code = optional(string, "USD")
    projects      = optional(list(string))
    thresholds    = optional(list(number), [0.5, 0.9, 1.0])
  }))
  default = {}
}

# --- Azure ---------------------------------------------------------------------------------------

variable "azure_subscription_id" {
  type = string
}

variable "azure_location" {
  type    = string
  default = "westeurope"
}

variable "azure_slack_signing_secret_uri" {
  description = "Key Vault secret holding the Slack signing secret: https://<vault>.vault.azure.net/secrets/<name> (RBAC vault, created outside Terraform)."
  type        = string
}

variable "azure_key_vault_id" {
  description = "Resource id of that Key Vault."
  type        = string
}

variable "azure_token_audience" {
  description = "Application ID URI of the Entra application Azure functions request their token for when they call Google Cloud (api://burnguard-gcp, registered outside this root)."
  type        = string
  default     = "api://burnguard-gcp"
}

variable "azure_gpu_scopes" {
  description = "Subscriptions or resource groups holding the GPU VMs the guardrail may deallocate."
  type        = list(string)
  default     = []
}

variable "azure_webhook_secret_uri" {
  description = "Key Vault secret (same vault) holding the budget webhook's secret, which the Action Group's URL carries."
  type        = string
}

variable "azure_export_start_date" {
  description = "First day of the Cost Management export's recurrence (RFC 3339), e.g. 2026-12-01T00:00:00Z."
  type        = string
}

variable "azure_code_deployed" {
  description = "false for the first apply; true once the Azure bundle is deployed (Event Grid subscribes to the deployed ingest function)."
  type        = bool
  default     = false
}

variable "azure_budgets" {
  description = "Consumption budgets of the subscription: name => { amount, start_date, thresholds, tag = { key, value } }."
  type = map(object({
    amount     = number
    start_date = string
    thresholds = optional(list(number), [50, 90, 100])
    tag = optional(object({
      key   = string
      value = string
    }))
  }))
  default = {}
}

variable "azure_budget_action_group_id" {
  description = "Action Group (created outside Terraform) whose webhook calls the budget function with its secret."
  type        = string
  default     = null
}

variable "meter_every_minutes" {
  description = "How often the meter reads the running GPU instances (the live estimate), in minutes: 5 by default, 1 at least."
  type        = number
  default     = 5
}
