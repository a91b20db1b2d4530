# Identifiers only: ARNs, names, URLs. No secret value goes through Terraform (the signing
# secret is a reference the functions resolve at run time).

output "function_names" {
  description = "Lambda function name of each function stem."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_arns" {
  description = "Lambda function ARN of each function stem."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "function_urls" {
  description = "Function URL of each function with a function_url trigger (the slash command's goes to the Slack app's Request URL)."
  value       = { for k, u in aws_lambda_function_url.this : k => u.function_url }
}

output "function_role_arns" {
  description = "Execution role ARN of each function."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "gcp_federated_roles" {
  description = "Function stem => { role_name, grants } to bind in Google Cloud (queue_publish, ledger): the gcp module's federation.aws.roles."
  value = {
    for k, f in var.functions : k => {
      role_name = aws_iam_role.function[k].name
      grants    = setintersection(f.grants, ["queue_publish", "ledger"])
    } if length(setintersection(f.grants, ["queue_publish", "ledger"])) > 0
  }
}

output "account_id" {
  description = "The AWS account the functions run in (the gcp module's federation.aws.account_id)."
  value       = local.account_id
}

output "guardrail_stop_role_arn" {
  description = "Role the guardrail assumes with web identity to stop/start tagged GPU instances (null without guardrail_stop)."
  value       = one(aws_iam_role.guardrail_stop[*].arn)
}

output "guardrail_stop_token_audience" {
  description = "Audience of the Google ID token the guardrail presents to assume guardrail_stop_role_arn (null without guardrail_stop)."
  value       = local.stop_enabled ? local.stop.token_audience : null
}

output "dead_letter_queue_arn" {
  description = "SQS queue of failed asynchronous invocations (null when no function is triggered asynchronously)."
  value       = one(aws_sqs_queue.dead_letter[*].arn)
}

output "artifacts_bucket" {
  description = "Bucket holding the uploaded function bundles."
  value       = aws_s3_bucket.artifacts.id
}

output "state_bucket" {
  description = "Bucket of the ingest markers (BURNGUARD_STATE_BUCKET; null without a function granted state)."
  value       = one(aws_s3_bucket.state[*].bucket)
}

output "parts_queue_url" {
  description = "SQS queue of the part jobs of big deliveries (BURNGUARD_PARTS_QUEUE_URL; null without a function granted fan_out)."
  value       = one(aws_sqs_queue.parts[*].url)
}
