# The guardrail's identity exists before the guardrail function does: the AWS stop role and the
# Azure federated credential trust it (by unique id), and the guardrail function, when it is
# added to var.functions, runs as it.

resource "google_service_account" "function" {
  for_each = local.service_account_keys

  project      = var.project_id
  account_id   = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  display_name = "burnguard ${each.key}"
  description  = each.key == "guardrail" ? "burnguard guardrail: assumes the AWS/Azure stop roles, stops tagged GCE GPU instances" : "burnguard ${each.key} function"

  depends_on = [google_project_service.this]
}

# Compute Engine has no label conditions in IAM: the role is limited to what a stop needs, the
# tag scope and the protect label are enforced by the guardrail's code, and the projects are
# the ones listed. suspend: what BURNGUARD_GCE_LOCAL_SSD=suspend does to an instance with local
# SSDs (memory and disks kept); the adapter declares it (burnguard.adapters.gcp.compute).
resource "google_project_iam_custom_role" "instance_stop" {
  for_each = var.guardrail_stop == null ? toset([]) : toset(var.guardrail_stop.projects)

  project     = each.value
  role_id     = "${replace(var.name_prefix, "-", "_")}_instance_stop"
  title       = "burnguard: stop and start instances"
  description = "Read, stop, suspend and start Compute Engine instances. No delete, no setMachineType, no disks."
  permissions = [
    "compute.instances.get",
    "compute.instances.list",
    "compute.instances.stop",
    "compute.instances.suspend",
    "compute.instances.start",
    "compute.zoneOperations.get",
  ]
}

resource "google_project_iam_member" "guardrail_instance_stop" {
  for_each = google_project_iam_custom_role.instance_stop

  project = each.value.project
  role    = each.value.name
  member  = "serviceAccount:${google_service_account.function["guardrail"].email}"
}
