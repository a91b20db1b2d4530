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
