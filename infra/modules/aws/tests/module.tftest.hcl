# Plans the module against a mocked AWS provider (offline, no credentials) and checks what it
# would create: run `terraform init -backend=false && terraform test` in infra/modules/aws
# (tests/infra/test_terraform.py does, with the offline provider mirror).

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_sns_topic" {
    override_during = plan
    defaults        = { arn = "arn:aws:sns:eu-west-1:123456789012:bgtest-budget" }
  }
  mock_resource "aws_sqs_queue" {
    override_during = plan
    defaults        = { arn = "arn:aws:sqs:eu-west-1:123456789012:bgtest-dead-letter", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/bgtest-queue" }
  }
  mock_resource "aws_s3_bucket" {
    override_during = plan
    defaults        = { arn = "arn:aws:s3:::bgtest-state-123456789012-eu-west-1" }
  }
}

variables {
  name_prefix = "bgtest"
  package     = { path = "tests/fixtures/placeholder.zip" }
  slack = {
    signing_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:burnguard/slack-AbCdEf"
  }
  functions = {
    slack_command = {
      handler   = "slack_command.lambda_handler"
      memory_mb = 1024
      timeout_s = 60
      trigger   = { type = "function_url", public = true }
      grants    = ["slack_signing_secret", "self_invoke"]
    }
  }
  guardrail_stop = {
    google_service_account_unique_id = "112233445566778899001"
    scope_tag_keys                   = ["team", "project"]
  }
}

run "slash_command_today" {
  command = plan

  assert {
    condition     = aws_lambda_function_url.this["slack_command"].authorization_type == "NONE"
    error_message = "The slash command's URL must be public (Slack signs requests; the function verifies them)."
  }
  assert {
    condition     = aws_lambda_permission.public_url["slack_command"].action == "lambda:InvokeFunctionUrl" && aws_lambda_permission.public_url["slack_command"].function_url_auth_type == "NONE"
    error_message = "The public URL permission must be lambda:InvokeFunctionUrl restricted to auth type NONE."
  }
  assert {
    condition     = aws_lambda_function.this["slack_command"].handler == "slack_command.lambda_handler" && aws_lambda_function.this["slack_command"].function_name == "bgtest-slack-command"
    error_message = "Handler and name of the slash command."
  }
  assert {
    condition     = aws_lambda_function.this["slack_command"].environment[0].variables["BURNGUARD_SLACK_SIGNING_SECRET_REF"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:burnguard/slack-AbCdEf"
    error_message = "The function gets the secret's reference (ARN), read by the bootstrap."
  }
  assert {
    condition = alltrue([for name in keys(aws_lambda_function.this["slack_command"].environment[0].variables) : contains(
      ["BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_SIGNING_SECRET_REF", "BURNGUARD_SLACK_REPLAY"], name
    )])
    error_message = "Only the variables the slash command bootstrap reads."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.function["slack_command"].policy).Statement : s.Action])) == toset([
      "logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetSecretValue", "lambda:InvokeFunction"
    ])
    error_message = "The slash command's role: its logs, its secret, invoking itself; nothing else."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.function["slack_command"].policy).Statement : alltrue([
      for r in s.Resource : !endswith(r, ":*") || startswith(r, "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/bgtest-slack-command")
    ])])
    error_message = "Every resource of the slash command's policy is its own."
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.function["slack_command"].policy).Statement : s.Resource if s.Sid == "InvokeItselfForDeferredWork"][0] == [
      "arn:aws:lambda:eu-west-1:123456789012:function:bgtest-slack-command"
    ]
    error_message = "lambda:InvokeFunction only on the function itself."
  }
  assert {
    condition     = length(aws_sqs_queue.dead_letter) == 0 && length(aws_cloudwatch_event_rule.s3) == 0
    error_message = "Nothing asynchronous is deployed today."
  }
}

run "stop_role_is_tag_scoped_and_never_terminates" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role.guardrail_stop[0].assume_role_policy).Statement[0].Principal.Federated == "accounts.google.com" && jsondecode(aws_iam_role.guardrail_stop[0].assume_role_policy).Statement[0].Action == "sts:AssumeRoleWithWebIdentity"
    error_message = "The stop role is assumed with a Google ID token."
  }
  assert {
    condition = jsondecode(aws_iam_role.guardrail_stop[0].assume_role_policy).Statement[0].Condition.StringEquals == {
      "accounts.google.com:aud"  = "112233445566778899001"
      "accounts.google.com:sub"  = "112233445566778899001"
      "accounts.google.com:oaud" = "burnguard-aws-stop"
    }
    error_message = "Only the guardrail's service account, with a token minted for this role."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement :
    !(s.Effect == "Allow" && contains(s.Action, "ec2:TerminateInstances"))])
    error_message = "The stop role must never allow TerminateInstances."
  }
  assert {
    condition = length([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement : s
    if s.Effect == "Deny" && s.Action == ["ec2:TerminateInstances"] && s.Resource == "*"]) == 1
    error_message = "An explicit Deny of TerminateInstances."
  }
  assert {
    condition = length([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement : s
      if s.Effect == "Deny" && toset(s.Action) == toset(["ec2:StopInstances", "ec2:StartInstances"])
    && try(s.Condition, null) == { StringEqualsIgnoreCase = { "aws:ResourceTag/burnguard:protect" = "true" } }]) == 1
    error_message = "An explicit Deny of stop/start on instances tagged burnguard:protect=true."
  }
  assert {
    condition = toset([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement : keys(s.Condition.Null)[0]
      if s.Effect == "Allow" && contains(s.Action, "ec2:StopInstances")]) == toset([
      "aws:ResourceTag/team", "aws:ResourceTag/project"
    ])
    error_message = "One Allow per scope tag key, each conditioned on the instance carrying that tag."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement :
      s.Condition.StringLike["ec2:InstanceType"] == ["p*", "g*"] && s.Resource == ["arn:aws:ec2:*:123456789012:instance/*"]
    if s.Effect == "Allow" && contains(s.Action, "ec2:StopInstances")])
    error_message = "Stops are limited to GPU instance families of this account's instances."
  }
  assert {
    condition = alltrue([for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement :
    s.Resource != "*" || s.Effect == "Deny" || s.Action == ["ec2:DescribeInstances", "ec2:DescribeInstanceTypes"]])
    error_message = "Resource \"*\" only for DescribeInstances (no resource-level permissions) and Deny statements."
  }
}

run "protect_tag_and_regions_follow_the_variables" {
  command = plan

  variables {
    guardrail_stop = {
      google_service_account_unique_id = "112233445566778899001"
      scope_tag_keys                   = ["cost-center"]
      protect_tag                      = "finops:keep=yes"
      regions                          = ["us-east-1", "eu-west-1"]
      instance_types                   = []
    }
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement : s.Condition if s.Sid == "NeverTouchProtectedInstances"][0] == {
      StringEqualsIgnoreCase = { "aws:ResourceTag/finops:keep" = "yes" }
    }
    error_message = "The protect tag of the variables."
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.guardrail_stop[0].policy).Statement : s if s.Sid == "StopStartScopedInstances0"][0] == {
      Sid       = "StopStartScopedInstances0"
      Effect    = "Allow"
      Action    = ["ec2:StopInstances", "ec2:StartInstances"]
      Resource  = ["arn:aws:ec2:us-east-1:123456789012:instance/*", "arn:aws:ec2:eu-west-1:123456789012:instance/*"]
      Condition = { Null = { "aws:ResourceTag/cost-center" = "false" } }
    }
    error_message = "Regions and scope tag of the variables; no instance type condition when instance_types is empty."
  }
}

run "no_stop_role_without_guardrail_stop" {
  command = plan

  variables {
    guardrail_stop = null
  }

  assert {
    condition     = length(aws_iam_role.guardrail_stop) == 0 && output.guardrail_stop_role_arn == null
    error_message = "guardrail_stop = null creates no role."
  }
}

run "a_later_function_is_one_entry" {
  command = plan

  variables {
    control_plane = {
      queue_topic                = "projects/bg-control/topics/bgtest-queue"
      workload_identity_audience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/bgtest-publishers/providers/aws"
    }
    functions = {
      slack_command = {
        handler = "slack_command.lambda_handler"
        trigger = { type = "function_url", public = true }
        grants  = ["slack_signing_secret", "self_invoke"]
      }
      ingest = {
        handler   = "ingest.lambda_handler"
        memory_mb = 2048
        timeout_s = 900
        trigger   = { type = "s3", bucket = "acme-cur", prefix = "cur/" }
        grants    = ["read_exports", "queue_publish"]
      }
    }
  }

  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.function["ingest"].policy).Statement : s.Action])) == toset([
      "logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "sqs:SendMessage"
    ])
    error_message = "ingest reads exports, writes its logs and dead letters; publishing is Google's IAM."
  }
  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.function["ingest"].policy).Statement : s.Resource if s.Sid == "ReadBillingExports"][0] == ["arn:aws:s3:::acme-cur/cur/*"]
    error_message = "s3:GetObject only under the trigger's prefix."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.this["ingest"].environment[0].variables), "BURNGUARD_SLACK_SIGNING_SECRET_REF")
    error_message = "A function without the grant does not get the Slack secret's reference."
  }
  assert {
    condition     = aws_lambda_function.this["ingest"].environment[0].variables["BURNGUARD_TOPIC"] == "projects/bg-control/topics/bgtest-queue" && jsondecode(aws_lambda_function.this["ingest"].environment[0].variables["BURNGUARD_GCP_WIF_CONFIG"]).type == "external_account"
    error_message = "queue_publish gives the topic and keyless Google credentials."
  }
  assert {
    condition     = output.gcp_federated_roles == { ingest = { role_name = "bgtest-ingest", grants = toset(["queue_publish"]) } }
    error_message = "The role to bind in Google Cloud."
  }
  assert {
    condition     = length(aws_lambda_function_url.this) == 1 && length(aws_cloudwatch_event_rule.s3) == 1
    error_message = "ingest has no URL; it is triggered by its bucket."
  }
}

run "private_function_url_uses_iam_auth" {
  command = plan

  variables {
    functions = {
      slack_command = {
        handler = "slack_command.lambda_handler"
        trigger = { type = "function_url", public = true }
        grants  = ["slack_signing_secret"]
      }
      probe = {
        handler = "probe.lambda_handler"
        trigger = { type = "function_url" }
      }
    }
  }

  assert {
    condition     = aws_lambda_function_url.this["probe"].authorization_type == "AWS_IAM" && !contains(keys(aws_lambda_permission.public_url), "probe")
    error_message = "A URL that is not declared public uses IAM auth and gets no public permission."
  }
}

run "public_url_without_signature_check_is_refused" {
  command = plan

  variables {
    functions = {
      open = {
        handler = "open.lambda_handler"
        trigger = { type = "function_url", public = true }
      }
    }
  }

  expect_failures = [var.functions]
}

run "secret_values_in_the_environment_are_refused" {
  command = plan

  variables {
    functions = {
      slack_command = {
        handler     = "slack_command.lambda_handler"
        trigger     = { type = "function_url", public = true }
        grants      = ["slack_signing_secret"]
        environment = { BURNGUARD_SLACK_SIGNING_SECRET = "value-in-clear" }
      }
    }
  }

  expect_failures = [var.functions]
}

run "secret_arn_without_suffix_is_refused" {
  command = plan

  variables {
    slack = { signing_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:burnguard/slack" }
  }

  expect_failures = [var.slack]
}

run "wildcard_scope_tag_is_refused" {
  command = plan

  variables {
    guardrail_stop = {
      google_service_account_unique_id = "112233445566778899001"
      scope_tag_keys                   = ["*"]
    }
  }

  expect_failures = [var.guardrail_stop]
}

run "reaching_google_without_the_control_plane_is_refused" {
  command = plan

  variables {
    functions = {
      budget = {
        handler = "budget.lambda_handler"
        trigger = { type = "sns", topic_arn = "arn:aws:sns:eu-west-1:123456789012:budgets" }
        grants  = ["queue_publish"]
      }
    }
  }

  expect_failures = [aws_lambda_function.this]
}

run "two_way_wiring_with_the_control_plane_has_no_cycle" {
  command = plan

  module {
    source = "./tests/wiring"
  }
  providers = {
    aws = aws
  }

  assert {
    condition     = output.federated_roles == { ingest = { role_name = "bgtest-ingest", grants = toset(["queue_publish"]) } }
    error_message = "The wiring of examples/complete plans."
  }
}

run "billing_export_and_budgets_feed_ingest_and_budget" {
  command = plan

  variables {
    control_plane = {
      queue_topic                = "projects/bg-control/topics/bgtest-queue"
      workload_identity_audience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/bgtest-publishers/providers/aws"
    }
    billing = {
      export  = { bucket_name = "bgtest-cur", prefix = "cur/" }
      budgets = { gpu = { amount = 5000, tag = { key = "team", value = "ml" } } }
    }
    functions = {
      ingest = {
        handler = "ingest.lambda_handler"
        trigger = { type = "s3", bucket = "bgtest-cur", prefix = "cur/" }
        grants  = ["read_exports", "queue_publish"]
      }
      budget = {
        handler = "budget.lambda_handler"
        trigger = { type = "sns", topic_arn = "budget" }
        grants  = ["queue_publish"]
      }
    }
  }

  assert {
    condition     = aws_bcmdataexports_export.cur2[0].export[0].destination_configurations[0].s3_destination[0].s3_bucket == "bgtest-cur" && aws_bcmdataexports_export.cur2[0].export[0].destination_configurations[0].s3_destination[0].s3_prefix == "cur"
    error_message = "The Data Export writes into the module's bucket under the ingest trigger's prefix."
  }
  assert {
    condition     = strcontains(aws_bcmdataexports_export.cur2[0].export[0].data_query[0].query_statement, "FROM COST_AND_USAGE_REPORT") && strcontains(aws_bcmdataexports_export.cur2[0].export[0].data_query[0].query_statement, "resource_tags")
    error_message = "CUR 2.0 with the resource tags the policy's scopes use."
  }
  assert {
    condition     = aws_s3_bucket_notification.exports[0].eventbridge == true && aws_cloudwatch_event_rule.s3["ingest"].event_pattern == jsonencode({ source = ["aws.s3"], "detail-type" = ["Object Created"], detail = { bucket = { name = ["bgtest-cur"] }, object = { key = [{ prefix = "cur/" }] } } })
    error_message = "The export bucket's object events reach the ingest function's rule."
  }
  assert {
    condition     = one([for r in aws_s3_bucket_server_side_encryption_configuration.exports[0].rule : one(r.apply_server_side_encryption_by_default).sse_algorithm]) == "AES256"
    error_message = "The export bucket is encrypted."
  }
  assert {
    condition     = aws_budgets_budget.this["gpu"].name == "bgtest-gpu" && aws_budgets_budget.this["gpu"].limit_amount == "5000" && aws_budgets_budget.this["gpu"].budget_type == "COST"
    error_message = "One monthly cost budget per entry."
  }
  assert {
    condition     = jsondecode(aws_sns_topic_policy.budget[0].policy).Statement[0].Principal.Service == "budgets.amazonaws.com" && aws_sns_topic_subscription.this["budget"].topic_arn == "arn:aws:sns:eu-west-1:123456789012:bgtest-budget"
    error_message = "Only AWS Budgets publishes to the budget topic."
  }
  assert {
    condition     = length(aws_sns_topic_subscription.this) == 1 && length(aws_lambda_permission.sns) == 1
    error_message = "The budget function subscribes to the module's budget topic."
  }
}

run "ingest_keeps_markers_and_fans_out_big_deliveries" {
  command = plan

  variables {
    control_plane = {
      queue_topic                = "projects/bg-control/topics/bgtest-queue"
      workload_identity_audience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/bgtest-publishers/providers/aws"
    }
    functions = {
      ingest = {
        handler       = "ingest.lambda_handler"
        timeout_s     = 900
        fan_out_parts = 3
        trigger       = { type = "s3", bucket = "bgtest-cur", prefix = "cur/" }
        grants        = ["read_exports", "queue_publish", "state", "fan_out"]
      }
      budget = {
        handler = "budget.lambda_handler"
        trigger = { type = "sns", topic_arn = "budget" }
        grants  = ["queue_publish"]
      }
    }
  }

  assert {
    # burnguard.app.aws.INGEST_PERMISSIONS, and the logs
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.function["ingest"].policy).Statement : s.Action])) == toset([
      "logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:ListBucket", "s3:PutObject",
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
    ])
    error_message = "ingest: exports, markers, parts and dead letters; nothing else."
  }
  assert {
    condition     = toset(flatten([for s in jsondecode(aws_iam_role_policy.function["budget"].policy).Statement : s.Action])) == toset(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"])
    error_message = "budget: burnguard.app.aws.BUDGET_PERMISSIONS (dead letters) and its logs."
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.function["ingest"].policy).Statement : s.Resource if s.Sid == "ReadWriteMarkers"][0] == ["arn:aws:s3:::bgtest-state-123456789012-eu-west-1/burnguard-state/*"] && [
      for s in jsondecode(aws_iam_role_policy.function["ingest"].policy).Statement : s.Condition.StringLike["s3:prefix"] if s.Sid == "ListMarkers"
    ][0] == ["burnguard-state/*"]
    error_message = "Markers are read, written and listed under the state prefix only."
  }
  assert {
    condition = toset(keys(aws_lambda_function.this["ingest"].environment[0].variables)) == toset([
      "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_DEAD_LETTER_URL",
      "BURNGUARD_STATE_BUCKET", "BURNGUARD_STATE_PREFIX", "BURNGUARD_PARTS_QUEUE_URL", "BURNGUARD_FAN_OUT_PARTS",
    ])
    error_message = "ingest gets what burnguard.app.aws.AwsSettings reads."
  }
  assert {
    condition     = aws_lambda_function.this["ingest"].environment[0].variables["BURNGUARD_STATE_BUCKET"] == "bgtest-state-123456789012-eu-west-1" && aws_lambda_function.this["ingest"].environment[0].variables["BURNGUARD_FAN_OUT_PARTS"] == "3"
    error_message = "The state bucket's name and the fan-out threshold."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.parts["ingest"].batch_size == 1 && aws_lambda_event_source_mapping.parts["ingest"].function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The parts queue triggers ingest one record at a time, with partial batch failures."
  }
  assert {
    condition     = aws_sqs_queue.parts[0].visibility_timeout_seconds == 5400 && jsondecode(aws_sqs_queue.parts[0].redrive_policy).maxReceiveCount == 5
    error_message = "A part job stays invisible for 6x the timeout and moves to the dead-letter queue after 5 receives."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.this["budget"].environment[0].variables), "BURNGUARD_STATE_BUCKET") && contains(keys(aws_lambda_function.this["budget"].environment[0].variables), "BURNGUARD_DEAD_LETTER_URL")
    error_message = "budget dead-letters bad notifications; it keeps no markers."
  }
}

run "fan_out_without_state_is_refused" {
  command = plan

  variables {
    functions = {
      ingest = {
        handler = "ingest.lambda_handler"
        trigger = { type = "s3", bucket = "bgtest-cur" }
        grants  = ["read_exports", "fan_out"]
      }
    }
  }

  expect_failures = [var.functions]
}
