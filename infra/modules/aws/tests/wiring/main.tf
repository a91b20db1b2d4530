# The two-way wiring of examples/complete, AWS side: the gcp module takes this module's roles
# (gcp_federated_roles) and gives back the queue, the pool provider's audience and the
# guardrail's id. tests/module.tftest.hcl plans it: a check across variables in the aws module
# that involves control_plane would make it a dependency cycle.

module "gcp" {
  source = "./stub_gcp"

  federation = {
    aws = { account_id = module.aws.account_id, roles = module.aws.gcp_federated_roles }
  }
}

module "aws" {
  source = "../.."

  name_prefix = "bgtest"
  package     = { path = "tests/fixtures/placeholder.zip" }
  control_plane = {
    queue_topic                = module.gcp.queue_topic
    workload_identity_audience = module.gcp.aws_workload_identity_audience
  }
  functions = {
    ingest = {
      handler = "ingest.lambda_handler"
      trigger = { type = "s3", bucket = "acme-cur", prefix = "cur/" }
      grants  = ["read_exports", "queue_publish"]
    }
  }
  guardrail_stop = {
    google_service_account_unique_id = module.gcp.guardrail_service_account_unique_id
    scope_tag_keys                   = ["team"]
  }
}

output "federated_roles" {
  value = module.aws.gcp_federated_roles
}
