# The role the guardrail assumes to stop (and resume) EC2 instances. The guardrail runs in
# Google Cloud as a service account; it presents a Google-signed ID token to
# sts:AssumeRoleWithWebIdentity (accounts.google.com is a built-in web identity provider: no
# OIDC provider resource, no key). Only that service account, and only a token minted for
# this role's audience, can assume it.
#
# What the role may do is the least the guardrail needs, with the safety rules of
# ARCHITECTURE.md enforced by IAM itself, not only by the code:
#   * describe instances and instance types (GPU counts; neither has resource-level permissions);
#   * stop/start only instances that carry one of the scope tag keys, of a GPU instance type;
#   * never an instance with the protect tag (explicit Deny, wins over any Allow);
#   * never terminate (explicit Deny, even if someone attaches a broader policy).

locals {
  stop_enabled = var.guardrail_stop != null
  stop         = local.stop_enabled ? var.guardrail_stop : null

  protect_tag_key   = local.stop_enabled ? split("=", local.stop.protect_tag)[0] : null
  protect_tag_value = local.stop_enabled ? join("=", slice(split("=", local.stop.protect_tag), 1, length(split("=", local.stop.protect_tag)))) : null

  stop_instance_arns = local.stop_enabled ? [for r in local.stop.regions : "arn:${local.partition}:ec2:${r}:${local.account_id}:instance/*"] : []

  stop_statement_describe = {
    Sid      = "DescribeInstances"
    Effect   = "Allow"
    Action   = ["ec2:DescribeInstances", "ec2:DescribeInstanceTypes"]
    Resource = "*"
  }

  # One statement per scope tag key: IAM ANDs the keys of one condition block, and an instance
  # needs only one of the keys.
  stop_statements_scoped = local.stop_enabled ? [for i, key in local.stop.scope_tag_keys : {
    Sid      = "StopStartScopedInstances${i}"
    Effect   = "Allow"
    Action   = ["ec2:StopInstances", "ec2:StartInstances"]
    Resource = local.stop_instance_arns
    Condition = merge(
      { Null = { "aws:ResourceTag/${key}" = "false" } },
      length(local.stop.instance_types) > 0 ? { StringLike = { "ec2:InstanceType" = local.stop.instance_types } } : {},
    )
  }] : []

  stop_statement_deny_protected = {
    Sid       = "NeverTouchProtectedInstances"
    Effect    = "Deny"
    Action    = ["ec2:StopInstances", "ec2:StartInstances"]
    Resource  = "*"
    Condition = { StringEqualsIgnoreCase = { "aws:ResourceTag/${coalesce(local.protect_tag_key, "burnguard:protect")}" = coalesce(local.protect_tag_value, "true") } }
  }

  stop_statement_deny_terminate = {
    Sid      = "NeverTerminate"
    Effect   = "Deny"
    Action   = ["ec2:TerminateInstances"]
    Resource = "*"
  }

  stop_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [local.stop_statement_describe],
      local.stop_statements_scoped,
      [local.stop_statement_deny_protected, local.stop_statement_deny_terminate],
    )
  }
}

resource "aws_iam_role" "guardrail_stop" {
  count = local.stop_enabled ? 1 : 0

  name                 = "${var.name_prefix}-guardrail-stop"
  description          = "burnguard guardrail (Google service account ${local.stop.google_service_account_unique_id}): stop/start tagged GPU instances"
  max_session_duration = local.stop.max_session_duration_s
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GuardrailServiceAccountOnly"
      Effect    = "Allow"
      Principal = { Federated = "accounts.google.com" }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          # aud is the token's azp (the service account's unique id), oaud the audience it was
          # minted for, sub the service account's unique id.
          "accounts.google.com:aud"  = local.stop.google_service_account_unique_id
          "accounts.google.com:sub"  = local.stop.google_service_account_unique_id
          "accounts.google.com:oaud" = local.stop.token_audience
        }
      }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "guardrail_stop" {
  count = local.stop_enabled ? 1 : 0

  name   = "burnguard-stop-tagged-gpu-instances"
  role   = aws_iam_role.guardrail_stop[0].id
  policy = jsonencode(local.stop_policy)
}
