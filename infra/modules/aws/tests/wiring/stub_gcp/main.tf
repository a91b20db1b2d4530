# Stands in for modules/gcp in tests/wiring: the same inputs and outputs the roots wire
# between the two modules, without the google provider.

variable "federation" {
  type = any
}

resource "terraform_data" "aws_provider" {
  input = var.federation
}

output "aws_workload_identity_audience" {
  value = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/bgtest-clouds/providers/${terraform_data.aws_provider.id}"
}

output "queue_topic" {
  value = "projects/bg-control/topics/bgtest-queue"
}

output "guardrail_service_account_unique_id" {
  value = "112233445566778899001"
}
