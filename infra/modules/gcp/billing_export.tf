# The billing extraction: Google Cloud bills into BigQuery (the detailed billing export, enabled
# outside Terraform); a workflow run daily by Cloud Scheduler extracts the month to date into the
# export bucket in burnguard's layout, manifest last, where the ingest function's storage trigger
# picks it up (trigger = { type = "storage", bucket = <billing_export.bucket> }).

locals {
  billing_export_enabled = var.billing_export != null
  # project.dataset.table of the detailed billing export
  billing_table_parts = local.billing_export_enabled ? split(".", var.billing_export.table) : []
}

resource "google_storage_bucket" "billing_export" {
  #checkov:skip=CKV_GCP_62:billing extracts written by the extraction workflow only; Cloud Audit Logs record the writes
  #checkov:skip=CKV_GCP_78:every run writes a new run folder; versions would only keep overwritten partial runs
  count = local.billing_export_enabled ? 1 : 0

  project                     = var.project_id
  name                        = var.billing_export.bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  lifecycle_rule {
    condition {
      age = var.billing_export.retention_days
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_service_account" "billing_export" {
  count = local.billing_export_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-billing-export"
  display_name = "burnguard billing extraction"
  description  = "Runs the daily EXPORT DATA of the billing export to the export bucket"

  depends_on = [google_project_service.this]
}

# Query jobs run in the control plane's project (no narrower scope exists for jobs).
resource "google_project_iam_member" "billing_export_jobs" {
  count = local.billing_export_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.billing_export[0].email}"
}

# Read the billing export's dataset only.
resource "google_bigquery_dataset_iam_member" "billing_export_read" {
  count = local.billing_export_enabled ? 1 : 0

  project    = local.billing_table_parts[0]
  dataset_id = local.billing_table_parts[1]
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.billing_export[0].email}"
}

# Write (and overwrite) the run's files, read them back to count their rows, write the manifest.
resource "google_storage_bucket_iam_member" "billing_export_write" {
  count = local.billing_export_enabled ? 1 : 0

  bucket = google_storage_bucket.billing_export[0].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.billing_export[0].email}"
}

resource "google_workflows_workflow" "billing_export" {
  count = local.billing_export_enabled ? 1 : 0

  project         = var.project_id
  region          = var.region
  name            = "${var.name_prefix}-billing-export"
  description     = "burnguard: the billing export's month to date, to gs://${var.billing_export.bucket}/${var.billing_export.prefix}"
  service_account = google_service_account.billing_export[0].id
  call_log_level  = "LOG_ERRORS_ONLY"
  labels          = local.labels
  source_contents = templatefile("${path.module}/billing_export.yaml.tftpl", {
    bucket              = var.billing_export.bucket
    prefix              = var.billing_export.prefix
    billing_account     = var.billing_export.billing_account
    table               = var.billing_export.table
    previous_month_days = 5
  })

  depends_on = [google_project_service.this]
}

# Cloud Scheduler starts the workflow as this account; Workflows has no per-workflow IAM binding
# in the provider, so invoker is granted on the project, to this account only.
resource "google_project_iam_member" "billing_export_invoker" {
  count = local.billing_export_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/workflows.invoker"
  member  = "serviceAccount:${google_service_account.billing_export[0].email}"
}

resource "google_cloud_scheduler_job" "billing_export" {
  count = local.billing_export_enabled ? 1 : 0

  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-billing-export"
  description = "Runs the billing extraction workflow"
  schedule    = var.billing_export.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  http_target {
    http_method = "POST"
    uri         = "https://workflowexecutions.googleapis.com/v1/${google_workflows_workflow.billing_export[0].id}/executions"
    body        = base64encode("{}")
    oauth_token {
      service_account_email = google_service_account.billing_export[0].email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_project_iam_member.billing_export_invoker]
}
