output "slack_request_url" {
  description = "Paste into the Slack app: Slash Commands > /burnguard > Request URL."
  value       = module.burnguard_aws.function_urls["slack_command"]
}

output "guardrail_stop_role_arn" {
  description = "Role the guardrail assumes to stop tagged GPU instances."
  value       = module.burnguard_aws.guardrail_stop_role_arn
}
