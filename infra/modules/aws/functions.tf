# One Lambda function per entry of var.functions, all from the same bundle, each with its own
# role (iam.tf), log group and trigger.

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:logs carry no secrets (the code logs references, never values); CloudWatch encrypts at rest with its own key
  for_each = var.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.runtime.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:the functions reach only AWS APIs, Google STS/Pub/Sub and Slack over TLS; a VPC would need NAT for no isolation gain
  #checkov:skip=CKV_AWS_173:the environment holds references and names only (variables.tf refuses secret-looking names); Lambda encrypts it at rest with its own key
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile outside this module; bundles are built reproducibly by infra/build.py and their SHA-256 is in manifest.json
  #checkov:skip=CKV_AWS_50:X-Ray tracing would add xray:PutTraceSegments to every role for no guardrail need; structured logs (powertools) are the trace
  for_each = var.functions

  function_name = local.function_names[each.key]
  description   = each.value.description
  role          = aws_iam_role.function[each.key].arn
  handler       = each.value.handler
  runtime       = var.runtime.python
  architectures = [var.runtime.architecture]
  memory_size   = each.value.memory_mb
  timeout       = each.value.timeout_s

  reserved_concurrent_executions = coalesce(each.value.reserved_concurrency, -1)

  s3_bucket         = aws_s3_object.package.bucket
  s3_key            = aws_s3_object.package.key
  s3_object_version = aws_s3_object.package.version_id
  source_code_hash  = filebase64sha256(var.package.path)

  environment {
    variables = local.environment[each.key]
  }

  dynamic "dead_letter_config" {
    for_each = contains(keys(local.async_functions), each.key) ? [1] : []
    content {
      target_arn = one(aws_sqs_queue.dead_letter[*].arn)
    }
  }

  tags = local.tags

  # Checks across variables live here, not in variable validations: control_plane comes from the
  # gcp module, which takes this module's roles, and a validation would close that loop.
  lifecycle {
    precondition {
      condition     = !contains(each.value.grants, "slack_signing_secret") || var.slack != null
      error_message = "${each.key}: the slack_signing_secret grant needs var.slack (the secret's reference)."
    }
    precondition {
      condition = length(setintersection(each.value.grants, ["queue_publish", "ledger"])) == 0 || (
        var.control_plane.workload_identity_audience != null && (!contains(each.value.grants, "queue_publish") || var.control_plane.queue_topic != null)
      )
      error_message = "${each.key}: queue_publish and ledger reach Google Cloud; they need control_plane.workload_identity_audience (and queue_topic for queue_publish)."
    }
  }

  # The role must be able to write logs before the first invocation.
  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# --- trigger: function_url ------------------------------------------------------------------

resource "aws_lambda_function_url" "this" {
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "function_url" }

  function_name = aws_lambda_function.this[each.key].function_name
  # NONE only where variables.tf allows it: a function that verifies Slack's signature on the
  # raw body of every request (Slack cannot sign with SigV4).
  authorization_type = each.value.trigger.public ? "NONE" : "AWS_IAM"
  invoke_mode        = "BUFFERED"
}

resource "aws_lambda_permission" "public_url" {
  #checkov:skip=CKV_AWS_301:only the Slack slash command is public (variables.tf refuses any other); it verifies the Slack signature of every request
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "function_url" && f.trigger.public }

  statement_id           = "FunctionURLAllowPublicAccess"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this[each.key].function_name
  principal              = "*"
  function_url_auth_type = "NONE"

  # Function URLs created since October 2025 also need lambda:InvokeFunction restricted with
  # lambda:InvokedViaFunctionUrl = true. Provider 5.x cannot express that condition
  # (`invoked_via_function_url`, provider >= 6.29); README.md says how to add it. Never grant
  # lambda:InvokeFunction to "*" without it: the handler trusts direct invocations (deferred
  # slash commands come that way).
}

# --- trigger: s3 (Object Created through EventBridge) ----------------------------------------
# The bucket must send its events to EventBridge (aws_s3_bucket_notification eventbridge = true,
# owned by whoever owns the export bucket).

resource "aws_cloudwatch_event_rule" "s3" {
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "s3" }

  name        = "${local.function_names[each.key]}-object-created"
  description = "s3://${each.value.trigger.bucket}/${each.value.trigger.prefix}* created -> ${local.function_names[each.key]}"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [each.value.trigger.bucket] }
      object = { key = [{ prefix = each.value.trigger.prefix }] }
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "s3" {
  for_each = aws_cloudwatch_event_rule.s3

  rule = each.value.name
  arn  = aws_lambda_function.this[each.key].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 10
  }
  dead_letter_config {
    arn = one(aws_sqs_queue.dead_letter[*].arn)
  }
}

resource "aws_lambda_permission" "s3" {
  for_each = aws_cloudwatch_event_rule.s3

  statement_id  = "AllowEventBridgeObjectCreated"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value.arn
}

# --- trigger: ec2_state (EC2 instance state changes through EventBridge) ---------------------
# The states that start or end an instance's accrual (burnguard.core.state_events.EC2_STATES;
# tests/infra/test_consistency.py keeps them equal): pending is not a start yet. The rule sees
# this account's instances in this module's region; other regions are read by the meter's ticks.

resource "aws_cloudwatch_event_rule" "ec2_state" {
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "ec2_state" }

  name        = "${local.function_names[each.key]}-ec2-state"
  description = "EC2 instance starts and stops -> ${local.function_names[each.key]} (the live estimate)"
  event_pattern = jsonencode({
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Instance State-change Notification"]
    detail        = { state = ["running", "stopping", "stopped", "shutting-down", "terminated"] }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "ec2_state" {
  for_each = aws_cloudwatch_event_rule.ec2_state

  rule = each.value.name
  arn  = aws_lambda_function.this[each.key].arn

  # A state change older than an hour is no news: the meter's ticks have read it since.
  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }
  dead_letter_config {
    arn = one(aws_sqs_queue.dead_letter[*].arn)
  }
}

resource "aws_lambda_permission" "ec2_state" {
  for_each = aws_cloudwatch_event_rule.ec2_state

  statement_id  = "AllowEventBridgeEc2StateChange"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value.arn
}

# --- trigger: sns (AWS Budgets notifications) ------------------------------------------------

resource "aws_sns_topic_subscription" "this" {
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "sns" }

  topic_arn = local.sns_topic_arns[each.key]
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this[each.key].arn
}

resource "aws_lambda_permission" "sns" {
  for_each = { for k, f in var.functions : k => f if f.trigger.type == "sns" }

  statement_id  = "AllowSnsTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = local.sns_topic_arns[each.key]
}

# --- dead letters of asynchronous invocations -----------------------------------------------

resource "aws_sqs_queue" "dead_letter" {
  # Also the redrive target of the parts queue (ingest_state.tf).
  count = length(local.async_functions) > 0 || local.fan_out_enabled ? 1 : 0

  name                      = "${var.name_prefix}-dead-letter"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_sqs_queue_policy" "dead_letter" {
  count = length(aws_cloudwatch_event_rule.s3) + length(aws_cloudwatch_event_rule.ec2_state) > 0 ? 1 : 0

  queue_url = aws_sqs_queue.dead_letter[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeRulesOfThisModule"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = ["sqs:SendMessage"]
      Resource  = aws_sqs_queue.dead_letter[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = concat([for r in aws_cloudwatch_event_rule.s3 : r.arn], [for r in aws_cloudwatch_event_rule.ec2_state : r.arn]) } }
    }]
  })
}
