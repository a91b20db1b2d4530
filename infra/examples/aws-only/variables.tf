variable "region" {
  description = "AWS region of the functions."
  type        = string
  default     = "eu-west-1"
}

variable "slack_signing_secret_arn" {
  description = "Full ARN of the Secrets Manager secret holding the Slack app's signing secret (created outside Terraform: aws secretsmanager create-secret --name burnguard/slack-signing-secret --secret-string ...)."
  type        = string
}

variable "guardrail_service_account_unique_id" {
  description = "Unique id of the guardrail's Google service account (the gcp module's output); null: no stop role yet."
  type        = string
  default     = null
}

variable "scope_tag_keys" {
  description = "Tag keys the policy's guardrails scope on (team=..., project=...)."
  type        = list(string)
  default     = ["team", "project"]
}
