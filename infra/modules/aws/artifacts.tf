# The bundle is uploaded to a private, versioned bucket: a Lambda zip larger than 50 MB cannot be
# sent inline, and burnguard's (pyarrow, numpy) is.

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV2_AWS_62:holds build bundles only; nothing reacts to its objects
  #checkov:skip=CKV_AWS_144:build bundles are rebuilt from source by infra/build.py; replication adds cost and no recovery value
  #checkov:skip=CKV_AWS_145:SSE-S3 (aws_s3_bucket_server_side_encryption_configuration) for public-source code bundles; a KMS key would only add cost and key policy surface
  #checkov:skip=CKV_AWS_18:access logs of a bundle bucket written only by terraform apply add a second bucket and no detection value; CloudTrail records the writes
  bucket_prefix = "${var.name_prefix}-artifacts-"
  force_destroy = true
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    id     = "expire-old-bundles"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_object" "package" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "bundles/${basename(var.package.path)}"
  source      = var.package.path
  source_hash = filemd5(var.package.path)
  tags        = local.tags

  depends_on = [aws_s3_bucket_versioning.artifacts]
}
