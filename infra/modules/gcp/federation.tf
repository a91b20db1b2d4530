# Workload identity federation: AWS Lambda roles and Azure managed identities act in this
# project with their own cloud's credentials, exchanged at Google's STS. No service account
# key exists. Each provider accepts only the principals listed in var.federation (an empty
# list accepts nobody), and each principal gets only its grants (iam.tf).

locals {
  federation_enabled = var.federation.aws != null || var.federation.azure != null

  aws_account = try(var.federation.aws.account_id, null)
  aws_roles   = try(var.federation.aws.roles, {})
  # attribute.aws_role of a Lambda role's session: arn:aws:sts::<account>:assumed-role/<role>
  aws_role_principals = { for k, r in local.aws_roles : k => "arn:aws:sts::${local.aws_account}:assumed-role/${r.role_name}" }

  azure_identities = try(var.federation.azure.identities, {})
}

resource "google_iam_workload_identity_pool" "clouds" {
  count = local.federation_enabled ? 1 : 0

  project                   = var.project_id
  workload_identity_pool_id = "${var.name_prefix}-clouds"
  display_name              = "burnguard: AWS and Azure"
  description               = "burnguard functions on AWS and Azure that publish to the queue or use the ledger"

  depends_on = [google_project_service.this]
}

resource "google_iam_workload_identity_pool_provider" "aws" {
  #checkov:skip=CKV_GCP_125:a GitHub Actions rule, misapplied: this AWS provider has an attribute_condition on the account and the listed Lambda roles
  count = var.federation.aws != null ? 1 : 0

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.clouds[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "aws-lambda"
  display_name                       = "AWS Lambda (${local.aws_account})"

  attribute_mapping = {
    "google.subject"        = "assertion.arn"
    "attribute.aws_account" = "assertion.account"
    "attribute.aws_role"    = "assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn"
  }
  attribute_condition = "attribute.aws_account == '${local.aws_account}' && attribute.aws_role in [${join(", ", [for p in values(local.aws_role_principals) : "'${p}'"])}]"

  aws {
    account_id = local.aws_account
  }
}

resource "google_iam_workload_identity_pool_provider" "azure" {
  count = var.federation.azure != null ? 1 : 0

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.clouds[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "azure-functions"
  display_name                       = "Azure Functions"

  # Managed identity tokens: sub is the identity's principal (object) id.
  attribute_mapping = {
    "google.subject"   = "assertion.sub"
    "attribute.tenant" = "assertion.tid"
  }
  attribute_condition = "assertion.tid == '${var.federation.azure.tenant_id}' && assertion.sub in [${join(", ", [for i in values(local.azure_identities) : "'${i.principal_id}'"])}]"

  oidc {
    issuer_uri        = "https://sts.windows.net/${var.federation.azure.tenant_id}/"
    allowed_audiences = [var.federation.azure.audience]
  }
}

locals {
  # Built from known values (not the pool's computed name) so that grants can be for_each keys.
  pool_name = "projects/${data.google_project.this.number}/locations/global/workloadIdentityPools/${var.name_prefix}-clouds"

  # "aws:<stem>" / "azure:<stem>" => { member, grants }: keys known at plan time, even when the
  # Azure principal ids are not yet.
  external_principals = merge(
    { for k, r in local.aws_roles : "aws:${k}" => {
      member = "principalSet://iam.googleapis.com/${local.pool_name}/attribute.aws_role/${local.aws_role_principals[k]}"
      grants = r.grants
    } },
    { for k, i in local.azure_identities : "azure:${k}" => {
      member = "principal://iam.googleapis.com/${local.pool_name}/subject/${i.principal_id}"
      grants = i.grants
    } },
  )
}
