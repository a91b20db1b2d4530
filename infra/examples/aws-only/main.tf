# burnguard on AWS alone: the Slack slash command (Lambda + Function URL) reading its signing
# secret from Secrets Manager, and, once the guardrail's Google service account exists, the
# tag-scoped role it assumes to stop GPU instances. Build the bundle first:
#   python infra/build.py aws --policy events/policies/production-example.yaml

module "burnguard_aws" {
  source = "../../modules/aws"

  name_prefix = "burnguard"
  tags        = { team = "platform", "cost-center" = "finops" }
  package     = { path = "${path.root}/../../build/aws/burnguard-aws.zip" }

  slack = {
    signing_secret_arn = var.slack_signing_secret_arn
  }

  functions = {
    slack_command = {
      handler     = "slack_command.lambda_handler"
      description = "/burnguard slash command"
      memory_mb   = 1024
      timeout_s   = 60
      trigger     = { type = "function_url", public = true }
      grants      = ["slack_signing_secret", "self_invoke"]
    }
    # Later, one entry each (see infra/README.md):
    # ingest = {
    #   handler   = "ingest.lambda_handler"
    #   memory_mb = 2048
    #   timeout_s = 900
    #   trigger   = { type = "s3", bucket = "acme-cur-exports", prefix = "cur/" }
    #   grants    = ["read_exports", "queue_publish"]
    # }
    # budget = {
    #   handler = "budget.lambda_handler"
    #   trigger = { type = "sns", topic_arn = "arn:aws:sns:eu-west-1:123456789012:budgets" }
    #   grants  = ["queue_publish"]
    # }
  }

  guardrail_stop = var.guardrail_service_account_unique_id == null ? null : {
    google_service_account_unique_id = var.guardrail_service_account_unique_id
    scope_tag_keys                   = var.scope_tag_keys
  }
}
