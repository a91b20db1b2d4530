# What the ingest function keeps between events (burnguard.app.aws, burnguard.services.parts):
#
#   grant "state"    marker records in a private bucket of this module (a repeated event is
#                    harmless; a part's summary waits there for the delivery's closing summary):
#                    BURNGUARD_STATE_BUCKET, BURNGUARD_STATE_PREFIX; s3:GetObject/PutObject under
#                    the prefix, s3:ListBucket of the prefix only.
#   grant "fan_out"  a big delivery (fan_out_parts files or more) becomes one part job per file on
#                    an SQS queue that triggers the same function, one record per invocation
#                    with partial batch failures (BURNGUARD_PARTS_QUEUE_URL,
#                    BURNGUARD_FAN_OUT_PARTS). A part failing max_receive_count times moves to
#                    the module's dead-letter queue.

locals {
  state_functions   = { for k, f in var.functions : k => f if contains(f.grants, "state") }
  fan_out_functions = { for k, f in var.functions : k => f if contains(f.grants, "fan_out") }
  state_enabled     = length(local.state_functions) > 0
  fan_out_enabled   = length(local.fan_out_functions) > 0
  state_bucket_name = "${var.name_prefix}-state-${local.account_id}-${local.region}"
  # A part job must stay invisible while one invocation works on it (AWS: 6 x the timeout).
  parts_visibility_s = local.fan_out_enabled ? min(43200, 6 * max([for f in values(local.fan_out_functions) : f.timeout_s]...)) : 30
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:markers are rebuilt by the next delivery; replication adds cost only
  #checkov:skip=CKV_AWS_145:SSE-S3 for marker records (delivery ids, counts, no billing rows); a KMS key adds cost and key policy surface
  #checkov:skip=CKV_AWS_18:written only by the ingest function's role; CloudTrail data events record access where the account enables them
  #checkov:skip=CKV2_AWS_62:nothing reacts to marker objects
  #checkov:skip=CKV_AWS_21:markers are written once per name and expire; versions would only keep garbage
  count = local.state_enabled ? 1 : 0

  bucket        = local.state_bucket_name
  force_destroy = true
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "state" {
  count = local.state_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.state[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  count = local.state_enabled ? 1 : 0

  bucket = aws_s3_bucket.state[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  count = local.state_enabled ? 1 : 0

  bucket = aws_s3_bucket.state[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  count = local.state_enabled ? 1 : 0

  bucket = aws_s3_bucket.state[0].id
  rule {
    id     = "expire-markers"
    status = "Enabled"
    filter {
      prefix = var.state.prefix
    }
    expiration {
      days = var.state.expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  count = local.state_enabled ? 1 : 0

  bucket = aws_s3_bucket.state[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.state[0].arn, "${aws_s3_bucket.state[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_sqs_queue" "parts" {
  count = local.fan_out_enabled ? 1 : 0

  name                       = "${var.name_prefix}-ingest-parts"
  visibility_timeout_seconds = local.parts_visibility_s
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[0].arn
    maxReceiveCount     = var.state.max_receive_count
  })
  tags = local.tags
}

resource "aws_lambda_event_source_mapping" "parts" {
  for_each = local.fan_out_functions

  event_source_arn        = aws_sqs_queue.parts[0].arn
  function_name           = aws_lambda_function.this[each.key].arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  # The role must be allowed to receive from the queue before the mapping polls it.
  depends_on = [aws_iam_role_policy.function]
}
