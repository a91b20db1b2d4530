# What AWS bills, delivered to burnguard: the Data Export (CUR 2.0) into an encrypted bucket whose
# object events go to EventBridge (the ingest function's s3 trigger), and AWS Budgets notifying
# an SNS topic (the budget function's sns trigger, topic_arn = "budget"). Both optional.

locals {
  export_enabled = var.billing.export != null
  budget_topic   = length(var.billing.budgets) > 0 || anytrue([for f in values(var.functions) : f.trigger.type == "sns" && f.trigger.topic_arn == "budget"])
  # trigger.topic_arn = "budget" names this module's topic
  sns_topic_arns = { for k, f in var.functions : k => (f.trigger.topic_arn == "budget" ? aws_sns_topic.budget[0].arn : f.trigger.topic_arn) if f.trigger.type == "sns" }
  export_name    = "${var.name_prefix}-cur2"
}

resource "aws_s3_bucket" "exports" {
  #checkov:skip=CKV_AWS_144:billing exports are re-delivered by AWS for the open months; replication adds cost only
  #checkov:skip=CKV_AWS_145:Data Exports write with SSE-S3; SSE-KMS would need the export service in a key policy for no gain on billing data the account owner already sees
  #checkov:skip=CKV_AWS_18:access to the bucket is recorded by CloudTrail data events where the account enables them; a log bucket per module adds a second unlogged bucket
  count = local.export_enabled ? 1 : 0

  bucket = var.billing.export.bucket_name
  tags   = local.tags
}

resource "aws_s3_bucket_public_access_block" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.exports[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket = aws_s3_bucket.exports[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket = aws_s3_bucket.exports[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket = aws_s3_bucket.exports[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket = aws_s3_bucket.exports[0].id
  rule {
    id     = "expire-old-exports"
    status = "Enabled"
    filter {}
    expiration {
      days = var.billing.export.retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Object Created events to EventBridge, where the ingest function's rule picks them up.
resource "aws_s3_bucket_notification" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket      = aws_s3_bucket.exports[0].id
  eventbridge = true
}

# Only the Data Exports service, for this account's export, may write; nothing unencrypted in transit.
resource "aws_s3_bucket_policy" "exports" {
  count = local.export_enabled ? 1 : 0

  bucket = aws_s3_bucket.exports[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DataExportsWrite"
        Effect    = "Allow"
        Principal = { Service = ["bcm-data-exports.amazonaws.com", "billingreports.amazonaws.com"] }
        Action    = ["s3:PutObject", "s3:GetBucketPolicy"]
        Resource  = [aws_s3_bucket.exports[0].arn, "${aws_s3_bucket.exports[0].arn}/*"]
        Condition = {
          StringLike = {
            "aws:SourceAccount" = local.account_id
            "aws:SourceArn" = [
              "arn:${local.partition}:cur:us-east-1:${local.account_id}:definition/*",
              "arn:${local.partition}:bcm-data-exports:us-east-1:${local.account_id}:export/*",
            ]
          }
        }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.exports[0].arn, "${aws_s3_bucket.exports[0].arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.exports]
}

# CUR 2.0, hourly, with resource ids and tags (activate the cost allocation tags the policy's
# scopes use: README, Deployment), Parquet, overwritten per billing period.
resource "aws_bcmdataexports_export" "cur2" {
  count = local.export_enabled ? 1 : 0

  export {
    name        = local.export_name
    description = "burnguard: CUR 2.0 for the ingest function"

    data_query {
      query_statement = var.billing.export.query_statement
      table_configurations = {
        COST_AND_USAGE_REPORT = {
          TIME_GRANULARITY                      = "HOURLY"
          INCLUDE_RESOURCES                     = "TRUE"
          INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY = "FALSE"
          INCLUDE_SPLIT_COST_ALLOCATION_DATA    = "FALSE"
        }
      }
    }

    destination_configurations {
      s3_destination {
        s3_bucket = aws_s3_bucket.exports[0].bucket
        s3_prefix = trimsuffix(var.billing.export.prefix, "/")
        s3_region = local.region
        s3_output_configurations {
          overwrite   = "OVERWRITE_REPORT"
          format      = "PARQUET"
          compression = "PARQUET"
          output_type = "CUSTOM"
        }
      }
    }

    refresh_cadence {
      frequency = "SYNCHRONOUS"
    }
  }

  tags       = local.tags
  depends_on = [aws_s3_bucket_policy.exports]
}

# --- AWS Budgets -> SNS -> the budget function ----------------------------------------------------

resource "aws_sns_topic" "budget" {
  #checkov:skip=CKV_AWS_26:AWS Budgets cannot publish to a topic encrypted with the AWS-managed SNS key, and notifications carry only budget names and amounts
  count = local.budget_topic ? 1 : 0

  name = "${var.name_prefix}-budget"
  tags = local.tags
}

resource "aws_sns_topic_policy" "budget" {
  count = local.budget_topic ? 1 : 0

  arn = aws_sns_topic.budget[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "BudgetsPublish"
      Effect    = "Allow"
      Principal = { Service = "budgets.amazonaws.com" }
      Action    = "SNS:Publish"
      Resource  = aws_sns_topic.budget[0].arn
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:budgets::${local.account_id}:*" }
      }
    }]
  })
}

resource "aws_budgets_budget" "this" {
  for_each = var.billing.budgets

  name         = "${var.name_prefix}-${each.key}"
  budget_type  = "COST"
  limit_amount = tostring(each.value.amount)
  limit_unit   = each.value.currency
  time_unit    = "MONTHLY"

  dynamic "cost_filter" {
    for_each = each.value.tag == null ? [] : [each.value.tag]
    content {
      name   = "TagKeyValue"
      values = [format("user:%s$%s", cost_filter.value.key, cost_filter.value.value)]
    }
  }

  dynamic "notification" {
    for_each = each.value.thresholds
    content {
      comparison_operator       = "GREATER_THAN"
      threshold                 = notification.value
      threshold_type            = "PERCENTAGE"
      notification_type         = "ACTUAL"
      subscriber_sns_topic_arns = [aws_sns_topic.budget[0].arn]
    }
  }

  tags       = local.tags
  depends_on = [aws_sns_topic_policy.budget]
}
