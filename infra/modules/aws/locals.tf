data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  tags = merge(var.tags, { "burnguard:managed-by" = "terraform" })

  # <prefix>-<stem with dashes>: burnguard-slack-command
  function_names = { for k in keys(var.functions) : k => "${var.name_prefix}-${replace(k, "_", "-")}" }
  # Built, not read from aws_lambda_function, so that a role's policy can name its own function
  # (self_invoke) without a dependency cycle.
  function_arns  = { for k, name in local.function_names : k => "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${name}" }
  log_group_arns = { for k, name in local.function_names : k => "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${name}" }

  # Triggered asynchronously (S3 and EC2 state changes through EventBridge, SNS): failures go to
  # the dead-letter queue.
  async_functions = { for k, f in var.functions : k => f if contains(["s3", "sns", "ec2_state"], f.trigger.type) }

  # BURNGUARD_SLACK_SIGNING_SECRET_REF: the ARN, "#key" to pick a key of a JSON secret
  # (burnguard.adapters.aws.secrets.aws_secret).
  slack_secret_ref = var.slack == null ? null : (
    var.slack.signing_secret_json_key == null ? var.slack.signing_secret_arn : "${var.slack.signing_secret_arn}#${var.slack.signing_secret_json_key}"
  )

  # Google external-account credentials for functions that reach the control plane (queue_publish,
  # ledger): AWS credentials of the function's role are exchanged for a Google token at Google's
  # STS. No key anywhere: this document names the pool provider only.
  gcp_credentials = var.control_plane.workload_identity_audience == null ? null : jsonencode({
    type               = "external_account"
    audience           = var.control_plane.workload_identity_audience
    subject_token_type = "urn:ietf:params:aws:token-type:aws4_request"
    token_url          = "https://sts.googleapis.com/v1/token"
    credential_source = {
      environment_id                 = "aws1"
      regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    }
  })

  environment = { for k, f in var.functions : k => merge(
    {
      BURNGUARD_POLICY = var.runtime.policy_path
      BURNGUARD_LEDGER = var.control_plane.ledger_url
    },
    contains(f.grants, "slack_signing_secret") ? {
      BURNGUARD_SLACK_SIGNING_SECRET_REF = local.slack_secret_ref
      BURNGUARD_SLACK_REPLAY             = var.slack.replay
    } : {},
    contains(f.grants, "queue_publish") ? { BURNGUARD_TOPIC = var.control_plane.queue_topic } : {},
    contains(f.grants, "queue_publish") || contains(f.grants, "ledger") ? { BURNGUARD_GCP_WIF_CONFIG = local.gcp_credentials } : {},
    # A bad event goes to the dead-letter queue with its reason (the code sends it there itself;
    # Lambda sends what still fails after its retries).
    contains(["s3", "sns", "ec2_state"], f.trigger.type) ? { BURNGUARD_DEAD_LETTER_URL = one(aws_sqs_queue.dead_letter[*].url) } : {},
    contains(f.grants, "state") ? {
      BURNGUARD_STATE_BUCKET = one(aws_s3_bucket.state[*].bucket)
      BURNGUARD_STATE_PREFIX = var.state.prefix
    } : {},
    contains(f.grants, "fan_out") ? {
      BURNGUARD_PARTS_QUEUE_URL = one(aws_sqs_queue.parts[*].url)
      BURNGUARD_FAN_OUT_PARTS   = tostring(f.fan_out_parts)
    } : {},
    f.environment,
  ) }
}
