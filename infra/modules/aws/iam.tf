# One execution role per function. Its policy is the union of the statements of its grants
# (variables.tf lists them); nothing else. Every action is named, every resource is the one
# the function uses.

resource "aws_iam_role" "function" {
  for_each = var.functions

  name        = local.function_names[each.key]
  description = "burnguard ${each.key}: execution role"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "LambdaOfThisAccount"
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
  tags = local.tags
}

locals {
  function_statements = { for k, f in var.functions : k => concat(
    [{
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.log_group_arns[k]}:*"]
    }],
    contains(f.grants, "slack_signing_secret") ? [{
      Sid      = "ReadSlackSigningSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [var.slack.signing_secret_arn]
    }] : [],
    contains(f.grants, "slack_signing_secret") && try(var.slack.kms_key_arn != null, false) ? [{
      Sid       = "DecryptSlackSigningSecret"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [var.slack.kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" } }
    }] : [],
    contains(f.grants, "self_invoke") ? [{
      Sid      = "InvokeItselfForDeferredWork"
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = [local.function_arns[k]]
    }] : [],
    contains(f.grants, "read_exports") ? [{
      Sid      = "ReadBillingExports"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = ["arn:${local.partition}:s3:::${f.trigger.bucket}/${f.trigger.prefix}*"]
    }] : [],
    contains(["s3", "sns", "ec2_state"], f.trigger.type) ? [{
      Sid      = "SendToDeadLetterQueue"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [one(aws_sqs_queue.dead_letter[*].arn)]
    }] : [],
    contains(f.grants, "state") ? [{
      Sid      = "ReadWriteMarkers"
      Effect   = "Allow"
      Action   = ["s3:GetObject", "s3:PutObject"]
      Resource = ["${one(aws_s3_bucket.state[*].arn)}/${var.state.prefix}*"]
    }] : [],
    contains(f.grants, "state") ? [{
      Sid       = "ListMarkers"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = [one(aws_s3_bucket.state[*].arn)]
      Condition = { StringLike = { "s3:prefix" = ["${var.state.prefix}*"] } }
    }] : [],
    contains(f.grants, "fan_out") ? [{
      Sid      = "SendAndReceiveParts"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      Resource = [one(aws_sqs_queue.parts[*].arn)]
    }] : [],
  ) }
}

resource "aws_iam_role_policy" "function" {
  for_each = var.functions

  name = "burnguard-${replace(each.key, "_", "-")}"
  role = aws_iam_role.function[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.function_statements[each.key]
  })
}
