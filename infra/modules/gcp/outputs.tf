# Identifiers only: names, ids, URLs. No secret value goes through Terraform.

output "function_urls" {
  description = "URL of each function (the slash command's goes to the Slack app's Request URL)."
  value       = { for k, f in google_cloudfunctions2_function.this : k => f.url }
}

output "function_service_accounts" {
  description = "Service account email of each function (and of the guardrail, deployed or not)."
  value       = { for k, sa in google_service_account.function : k => sa.email }
}

output "queue_topic" {
  description = "The shared queue: projects/<p>/topics/<t> (control_plane.queue_topic of the aws and azure modules)."
  value       = google_pubsub_topic.queue.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic of every push subscription of the module."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Subscription holding dead letters for inspection (null when disabled)."
  value       = one(google_pubsub_subscription.dead_letter_hold[*].id)
}

output "slack_defer_topic" {
  description = "Topic of deferred slash commands (null when no function uses it)."
  value       = one(google_pubsub_topic.slack_defer[*].id)
}

output "ledger_database" {
  description = "The ledger's Firestore database: projects/<p>/databases/<d>."
  value       = local.ledger_database
}

output "ledger_url" {
  description = "BURNGUARD_LEDGER of the Firestore ledger (control_plane.ledger_url of every module)."
  value       = var.ledger.collection_prefix == "burnguard_" ? "firestore://${local.ledger_database}" : "firestore://${local.ledger_database}?prefix=${var.ledger.collection_prefix}"
}

output "aws_workload_identity_audience" {
  description = "Audience of the AWS provider (control_plane.workload_identity_audience of the aws module); null without federation.aws."
  value       = var.federation.aws == null ? null : "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.aws[0].name}"
}

output "azure_workload_identity_audience" {
  description = "Audience of the Azure provider (control_plane.workload_identity_audience of the azure module); null without federation.azure."
  value       = var.federation.azure == null ? null : "//iam.googleapis.com/${google_iam_workload_identity_pool_provider.azure[0].name}"
}

output "guardrail_service_account_email" {
  description = "The guardrail's service account."
  value       = google_service_account.function["guardrail"].email
}

output "guardrail_service_account_unique_id" {
  description = "Its unique id: the audience/subject the AWS stop role and the Azure federated credential trust."
  value       = google_service_account.function["guardrail"].unique_id
}

output "project_number" {
  description = "Number of the control plane's project."
  value       = data.google_project.this.number
}

output "meter_topic" {
  description = "The topic the meter's Cloud Scheduler job ticks (null without a meter function)."
  value       = one(google_pubsub_topic.meter[*].id)
}

output "meter_schedule" {
  description = "The meter job's cron schedule (null without a meter function)."
  value       = one(google_cloud_scheduler_job.meter[*].schedule)
}
