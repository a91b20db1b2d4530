# The live estimate (ARCHITECTURE.md, "Meter"): a Cloud Scheduler job ticks the meter function
# through its topic every var.meter.every_minutes; Compute Engine instance starts and stops reach
# the instance_event function through Eventarc audit-log triggers the moment they happen. Both
# functions run as the guardrail's identity (grant stop_instances): they list the instances in
# every guardrail's scope on the three clouds and stop at a crossing, as the guardrail does.
# AWS and Azure state changes arrive on the shared queue (their modules' instance_event), where
# the guardrail hands them to its meter.

locals {
  # The methods of Compute Engine's Admin Activity audit log that start or stop an instance's
  # accrual (burnguard.core.state_events.GCE_METHODS; tests/infra/test_consistency.py keeps them
  # equal). One Eventarc trigger matches one methodName.
  instance_methods = [for pair in setproduct(["v1", "beta"], ["start", "stop", "insert", "delete", "suspend", "resume"]) : "${pair[0]}.compute.instances.${pair[1]}"]
  audit_log_triggers = merge([for k, f in local.audit_log : {
    for m in local.instance_methods : "${k}/${m}" => { function = k, method = m }
  }]...)
  cloud_scheduler_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "meter" {
  #checkov:skip=CKV_GCP_83:the messages are empty ticks; Google-managed encryption at rest (a CMEK would need a KMS key ring outside this module)
  count = local.meter_enabled ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-meter"
  # a tick not taken within its period is superseded by the next one
  message_retention_duration = "${max(600, var.meter.every_minutes * 60)}s"
  labels                     = local.labels

  depends_on = [google_project_service.this]
}

# Cloud Scheduler publishes as its service agent: publisher on the meter topic only.
resource "google_pubsub_topic_iam_member" "meter_scheduler" {
  count = local.meter_enabled ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.meter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.cloud_scheduler_agent
}

resource "google_cloud_scheduler_job" "meter" {
  count = local.meter_enabled ? 1 : 0

  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-meter"
  description = "burnguard meter: one tick of the live estimate every ${var.meter.every_minutes} minute(s)"
  schedule    = var.meter.every_minutes == 1 ? "* * * * *" : "*/${var.meter.every_minutes} * * * *"
  time_zone   = "Etc/UTC"
  paused      = var.meter.paused

  # A missed tick is caught up by the next one (the accrual runs from the previous reading).
  retry_config {
    retry_count = 0
  }

  pubsub_target {
    topic_name = google_pubsub_topic.meter[0].id
    data       = base64encode("tick")
    attributes = { kind = "meter-tick" }
  }

  depends_on = [google_pubsub_topic_iam_member.meter_scheduler]
}

# Compute Engine's audit log entries of this project, by method, to the instance_event function.
# Admin Activity audit logs are always written: nothing to enable. Instances of other projects
# (guardrail_stop.projects) are read by the meter's ticks.
resource "google_eventarc_trigger" "instance_event" {
  for_each = local.audit_log_triggers

  project  = var.project_id
  location = "global" # Compute Engine's audit log entries of every region
  name     = "${local.function_names[each.value.function]}-${replace(replace(each.value.method, ".compute.instances", ""), ".", "-")}"
  labels   = local.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.audit.log.v1.written"
  }
  matching_criteria {
    attribute = "serviceName"
    value     = "compute.googleapis.com"
  }
  matching_criteria {
    attribute = "methodName"
    value     = each.value.method
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.this[each.value.function].service_config[0].service
      region  = var.region
    }
  }
  service_account = google_service_account.function[local.identity[each.value.function]].email

  depends_on = [google_project_iam_member.storage_event_receiver, google_cloud_run_service_iam_member.storage_event_invoker]
}
