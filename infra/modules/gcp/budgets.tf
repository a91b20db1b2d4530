# Cloud Billing budgets and the topic their notifications go to. The budget function (a pubsub
# trigger on topic "budget") turns each notification into a budget-alert message on the queue.
# Cloud Billing publishes as its own service agent once the budget names the topic; the
# Terraform caller needs billing.budgets.create on the billing account.

resource "google_pubsub_topic" "budget" {
  #checkov:skip=CKV_GCP_83:messages carry billing line items and budget figures, no secrets; Google-managed encryption at rest (a CMEK would need a KMS key ring outside this module)
  count = local.budget_topic_enabled ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name_prefix}-budget"
  message_retention_duration = "604800s"
  labels                     = local.labels

  depends_on = [google_project_service.this]
}

# Cloud Billing publishes budget notifications as this Google-managed account (it grants itself
# the role when the caller may set the topic's policy; granting it here makes that explicit).
resource "google_pubsub_topic_iam_member" "budget_billing_publisher" {
  count = var.budgets != null ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.budget[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:billing-budget-alert@system.gserviceaccount.com"
}

# Budget filters name projects by number.
data "google_project" "budget" {
  for_each = var.budgets == null ? toset([]) : toset(flatten([for b in values(var.budgets.budgets) : coalesce(b.projects, [])]))

  project_id = each.value
}

resource "google_billing_budget" "this" {
  for_each = var.budgets == null ? {} : var.budgets.budgets

  billing_account = var.budgets.billing_account
  display_name    = "${var.name_prefix}-${each.key}"

  budget_filter {
    projects               = each.value.projects == null ? null : [for p in each.value.projects : "projects/${data.google_project.budget[p].number}"]
    credit_types_treatment = "INCLUDE_ALL_CREDITS"
  }

  amount {
    specified_amount {
      currency_code = each.value.currency_code
      units         = tostring(floor(each.value.amount))
      nanos         = floor((each.value.amount - floor(each.value.amount)) * 1000000000)
    }
  }

  dynamic "threshold_rules" {
    for_each = each.value.thresholds
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  all_updates_rule {
    pubsub_topic                    = google_pubsub_topic.budget[0].id
    schema_version                  = "1.0"
    disable_default_iam_recipients  = false
    enable_project_level_recipients = false
  }
}
