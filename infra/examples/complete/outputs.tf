output "slack_request_urls" {
  description = "Request URL of the /burnguard command on each cloud (one Slack app per deployment: pick one)."
  value = {
    aws   = module.aws.function_urls["slack_command"]
    gcp   = module.gcp.function_urls["slack_command"]
    azure = module.azure.function_urls["slack_command"]
  }
}

output "azure_deploy_commands" {
  description = "Run after apply: deploys the Azure bundle with Entra ID."
  value       = module.azure.deploy_commands
}

output "queue_topic" {
  value = module.gcp.queue_topic
}

output "guardrail_service_account" {
  value = module.gcp.guardrail_service_account_email
}

output "aws_guardrail_stop_role_arn" {
  value = module.aws.guardrail_stop_role_arn
}

output "azure_guardrail_identity_client_id" {
  value = module.azure.guardrail_identity_client_id
}
