"""infra/: Terraform formatting, offline validation and plan tests of the AWS side, and static
checks (python-hcl2) of the three modules and the examples.

No network: `terraform init` reads the hashicorp/aws provider from a local mirror
(BURNGUARD_TF_MIRROR, default /opt/tf-plugins) and works on a copy of infra/ (the checkout
is not written to). Without terraform or the mirror those tests skip and say why; the static
checks always run. The google and azurerm providers are not mirrored: their modules are
checked by parsing.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from burnguard.app import slack as bootstrap

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
MODULES = ("aws", "gcp", "azure")
EXAMPLES = ("complete", "aws-only")
MIRROR = Path(os.environ.get("BURNGUARD_TF_MIRROR", "/opt/tf-plugins"))
TERRAFORM = shutil.which("terraform")
HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


# --- terraform itself -------------------------------------------------------------------------------


def _require_terraform() -> str:
    if TERRAFORM is None:
        pytest.skip("terraform is not installed (https://developer.hashicorp.com/terraform/install)")
    return TERRAFORM


def _require_mirror() -> None:
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no offline mirror of hashicorp/aws at {MIRROR} (set BURNGUARD_TF_MIRROR)")


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    config = tmp_path_factory.mktemp("tfcli") / "offline.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{MIRROR}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        "}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    return env


@pytest.fixture(scope="module")
def infra_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra/ without local state, so that init and test write nothing into the checkout."""
    dest = tmp_path_factory.mktemp("infra") / "infra"
    shutil.copytree(INFRA, dest, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*",
                                                                "build", "__pycache__"))
    return dest


def _terraform(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run([_require_terraform(), *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, f"terraform {' '.join(args)} in {cwd}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_terraform_files_are_formatted(tf_env: dict[str, str]) -> None:
    _terraform(["fmt", "-check", "-recursive", "-diff"], INFRA, tf_env)


def test_aws_only_example_validates_offline(tf_env: dict[str, str], infra_copy: Path) -> None:
    _require_terraform()
    _require_mirror()
    example = infra_copy / "examples" / "aws-only"
    _terraform(["init", "-backend=false"], example, tf_env)
    assert "The configuration is valid" in _terraform(["validate"], example, tf_env)


def test_aws_module_validates_and_plans_pass_their_tests(tf_env: dict[str, str], infra_copy: Path) -> None:
    """infra/modules/aws/tests: plans against a mocked provider (stop policy, URL auth, refusals)."""
    _require_terraform()
    _require_mirror()
    module = infra_copy / "modules" / "aws"
    _terraform(["init", "-backend=false"], module, tf_env)
    assert "The configuration is valid" in _terraform(["validate"], module, tf_env)
    out = _terraform(["test"], module, tf_env)
    assert re.search(r"Success! \d+ passed, 0 failed", out), out


# --- parsed with python-hcl2 ------------------------------------------------------------------------


@functools.cache
def _parse(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(), serialization_options=HCL)  # type: ignore[no-any-return]


@functools.cache
def config(directory: str) -> dict[str, Any]:
    """Blocks of a module or root, merged over its files: resource/data by type and name."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}, "module": {},
                              "terraform": [], "text": {}}
    for path in sorted((INFRA / directory).glob("*.tf")):
        doc = _parse(path)
        merged["text"][path.name] = path.read_text()
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, by_name in block.items():
                    merged[kind].setdefault(rtype, {}).update(by_name)
        for kind in ("variable", "output", "module"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged["terraform"].extend(doc.get("terraform", []))
    return merged


def module(name: str) -> dict[str, Any]:
    return config(f"modules/{name}")


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def all_text(*directories: str) -> str:
    return "\n".join(t for d in directories for t in config(d)["text"].values())


ALL = tuple(f"modules/{m}" for m in MODULES) + tuple(f"examples/{e}" for e in EXAMPLES)


@pytest.mark.parametrize("directory", ALL)
def test_every_module_and_root_pins_terraform_and_its_providers(directory: str) -> None:
    assert (INFRA / directory / "versions.tf").is_file()
    versions = _parse(INFRA / directory / "versions.tf")["terraform"]
    assert any(str(t.get("required_version", "")).startswith(">=") for t in versions)
    providers = {name: spec for t in versions for block in t.get("required_providers", []) for name, spec in block.items()}
    assert providers, f"{directory}: no required_providers"
    for name, spec in providers.items():
        assert spec["source"] == f"hashicorp/{name}"
        if name in ("google", "azurerm"):
            # exactly the version the schema check checked (test_schema.py compares with the schema)
            assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", spec["version"].split("#")[0].strip()), f"{directory}: {name} {spec}"
        else:
            # a floor and a ceiling: no surprise major version
            assert ">=" in spec["version"] and "<" in spec["version"].replace("<=", ""), f"{directory}: {name} {spec}"


COMMON_VARIABLES = {"name_prefix", "tags", "package", "runtime", "functions", "slack", "control_plane", "guardrail_stop"}


@pytest.mark.parametrize("name", MODULES)
def test_modules_share_one_typed_validated_interface(name: str) -> None:
    variables = module(name)["variable"]
    assert set(variables) >= COMMON_VARIABLES
    for var, body in variables.items():
        assert body.get("type") and body.get("description"), f"{name}: variable {var} needs a type and a description"
    for var in COMMON_VARIABLES:
        assert variables[var].get("validation"), f"{name}: variable {var} has no validation"
    for var in ("runtime", "functions", "slack", "control_plane", "guardrail_stop"):
        assert ("object(" in variables[var]["type"] and "optional(" in variables[var]["type"]) or var == "guardrail_stop"
    # the same vocabulary of grants and the same public-endpoint rule everywhere
    functions_type = variables["functions"]["type"]
    assert all(f in functions_type for f in ("trigger = object(", "grants = optional(set(string)", "environment = "))


MAIN_FUNCTION = {"aws": "aws_lambda_function", "gcp": "google_cloudfunctions2_function",
                 "azure": "azurerm_function_app_flex_consumption"}


@pytest.mark.parametrize("name", MODULES)
def test_descriptive_files_and_one_for_each_over_the_functions_map(name: str) -> None:
    files = set(module(name)["text"])
    assert {"versions.tf", "variables.tf", "outputs.tf", "iam.tf", "functions.tf"} <= files
    assert "main.tf" not in files
    functions = module(name)["resource"][MAIN_FUNCTION[name]]
    assert list(functions) == ["this"] and functions["this"]["for_each"] == "${var.functions}"


def test_no_iam_action_wildcards_anywhere() -> None:
    # the one wildcard allowed: a bucket's Deny of anything over plain HTTP (the export bucket's
    # and the ingest state bucket's)
    tls_only = re.compile(r'Effect +?= "Deny"\n +Principal = "\*"\n +Action +?= "s3:\*"\n +Resource +?= [^\n]*\n'
                          r' +Condition = \{ Bool = \{ "aws:SecureTransport" = "false" \} \}')
    text = all_text(*ALL)
    assert len(tls_only.findall(text)) == 2
    text = tls_only.sub("", text)
    # "ec2:*", "s3:Get*", "*" as an action, "Microsoft.Compute/*", "compute.instances.*"
    assert not re.findall(r'"[A-Za-z0-9-]+:[A-Za-z0-9]*\*[A-Za-z0-9*]*"', text)
    assert not re.findall(r'Action\s*=\s*\[?\s*"\*"', text)
    assert not re.findall(r'"Microsoft\.[^"]*\*[^"]*"', text)
    assert not re.findall(r'"[a-z]+\.[a-zA-Z]+\.\*"', text)
    azure_actions = module("azure")["resource"]["azurerm_role_definition"]["vm_stop"]["permissions"][0]["actions"]
    gcp_permissions = module("gcp")["resource"]["google_project_iam_custom_role"]["instance_stop"]["permissions"]
    for action in [*azure_actions, *gcp_permissions]:
        assert "*" not in action


def test_aws_stop_policy_never_terminates_and_is_tag_scoped() -> None:
    aws = module("aws")
    stop = aws["locals"]
    assert stop["stop_statement_deny_terminate"] == {
        "Sid": "NeverTerminate", "Effect": "Deny", "Action": ["ec2:TerminateInstances"], "Resource": "*"}
    # TerminateInstances appears nowhere else in the module
    mentions = [s for s in strings(aws["resource"]) if "TerminateInstances" in s]
    mentions += [s for k, v in stop.items() if k != "stop_statement_deny_terminate" for s in strings(v) if "TerminateInstances" in s]
    assert mentions == []
    protected = stop["stop_statement_deny_protected"]
    assert protected["Effect"] == "Deny" and set(protected["Action"]) == {"ec2:StopInstances", "ec2:StartInstances"}
    (operator, condition), = protected["Condition"].items()
    (key, value), = condition.items()
    assert operator.startswith("StringEquals") and key.startswith("aws:ResourceTag/") and "protect" in key + value
    assert stop["stop_statement_describe"]["Action"] == ["ec2:DescribeInstances", "ec2:DescribeInstanceTypes"]
    scoped = stop["stop_statements_scoped"]
    assert 'Action = ["ec2:StopInstances", "ec2:StartInstances"]' in scoped
    assert 'Null = {"aws:ResourceTag/${key}" = "false"}' in scoped and "for i, key in local.stop.scope_tag_keys" in scoped
    assert "Effect = \"Allow\"" in scoped and "Resource = local.stop_instance_arns" in scoped
    statement = stop["stop_policy"]["Statement"]
    for part in ("stop_statement_describe", "stop_statements_scoped", "stop_statement_deny_protected",
                 "stop_statement_deny_terminate"):
        assert f"local.{part}" in statement
    assert aws["resource"]["aws_iam_role_policy"]["guardrail_stop"]["policy"] == "${jsonencode(local.stop_policy)}"


def test_aws_stop_role_trusts_only_the_guardrail_service_account() -> None:
    role = module("aws")["resource"]["aws_iam_role"]["guardrail_stop"]
    trust = role["assume_role_policy"]
    assert 'Federated = "accounts.google.com"' in trust and 'Action = "sts:AssumeRoleWithWebIdentity"' in trust
    for key in ("accounts.google.com:aud", "accounts.google.com:sub"):
        assert f'"{key}" = local.stop.google_service_account_unique_id' in trust


def test_function_url_auth_none_only_for_the_slash_command() -> None:
    aws = module("aws")
    url = aws["resource"]["aws_lambda_function_url"]["this"]
    assert url["authorization_type"] == '${each.value.trigger.public ? "NONE" : "AWS_IAM"}'
    validations = [v["condition"] for v in aws["variable"]["functions"]["validation"]]
    assert any("!f.trigger.public ||" in c and 'contains(f.grants, "slack_signing_secret")' in c for c in validations)
    # every permission open to "*" is the Function URL one, restricted to auth type NONE; never a bare
    # lambda:InvokeFunction (the handler trusts direct invocations: deferred slash commands)
    for perm in aws["resource"]["aws_lambda_permission"].values():
        if perm["principal"] == "*":
            assert perm["action"] == "lambda:InvokeFunctionUrl" and perm["function_url_auth_type"] == "NONE"
            assert "f.trigger.public" in perm["for_each"]
    # in the examples, on every cloud, only slack_command is public, and on Azure the budget webhook
    # (the Action Group cannot sign; the function checks the secret in its URL)
    for example in EXAMPLES:
        for call in config(f"examples/{example}")["module"].values():
            functions = call.get("functions", {})
            public = {k for k, f in functions.items() if f["trigger"].get("public")}
            allowed = {"slack_command", "budget"} if call["source"].endswith("azure") else {"slack_command"}
            assert public <= allowed, f"{example}: public functions {public}"
            if "budget" in public:
                assert "webhook_secret" in functions["budget"]["grants"]
            if "functions" in call:
                assert "slack_command" in public


def test_gcp_and_azure_open_only_signature_checked_functions() -> None:
    gcp = module("gcp")
    invoker = gcp["resource"]["google_cloud_run_service_iam_member"]
    public = [r for r in invoker.values() if r["member"] == "allUsers"]
    assert public == [invoker["public_invoker"]] and invoker["public_invoker"]["role"] == "roles/run.invoker"
    assert gcp["locals"]["public_http"] == (
        '${{for k, f in var.functions : k => f if f.trigger.type == "http" && f.trigger.public}}')
    for name in ("gcp", "azure"):
        validations = [v["condition"] for v in module(name)["variable"]["functions"]["validation"]]
        assert any("!f.trigger.public ||" in c and 'contains(f.grants, "slack_signing_secret")' in c for c in validations)


SECRET_EXPRESSION = re.compile(
    r"secret_string|secret_data|payload|\.value\b|connection_string|access_key|instrumentation_key|site_credential|"
    r"password|private_key|client_secret|var\.slack|sas", re.IGNORECASE)


@pytest.mark.parametrize("directory", ALL)
def test_outputs_expose_identifiers_only(directory: str) -> None:
    for name, out in config(directory)["output"].items():
        assert "sensitive" not in out, f"{directory}: output {name} is sensitive: a secret has no place in outputs"
        assert not SECRET_EXPRESSION.search(str(out["value"])), f"{directory}: output {name} = {out['value']}"


def test_no_secret_value_enters_terraform() -> None:
    text = all_text(*ALL)
    for forbidden in ("aws_secretsmanager_secret_version", "google_secret_manager_secret_version", "azurerm_key_vault_secret",
                      "aws_iam_access_key", "google_service_account_key", "azuread_application_password",
                      "azuread_service_principal_password", "primary_access_key", "primary_connection_string",
                      "storage_access_key", "zip_deploy_file"):
        assert forbidden not in text, forbidden
    # secret-looking environment names are references
    for name in set(re.findall(r"\b([A-Z][A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD)[A-Z0-9_]*)\s*=", text)):
        assert re.search(r"_(REF|ARN|ID|URI|AUDIENCE)$", name), name  # an audience is public


SECRET_REFERENCE = {"aws": "local.slack_secret_ref", "gcp": "var.slack.signing_secret_id", "azure": "var.slack.signing_secret_uri"}
SLACK_FIELDS = {
    "aws": {"signing_secret_arn", "signing_secret_json_key", "kms_key_arn", "replay"},
    "gcp": {"signing_secret_id", "replay", "bot_token_id", "channel"},
    "azure": {"signing_secret_uri", "key_vault_id", "replay", "webhook_secret_uri"},
}


@pytest.mark.parametrize("name", MODULES)
def test_the_signing_secret_goes_by_reference_under_the_bootstraps_names(name: str) -> None:
    mod = module(name)
    env = mod["locals"]["app_settings" if name == "azure" else "environment"]
    assert f"{bootstrap.SIGNING_SECRET_REF} = {SECRET_REFERENCE[name]}" in env
    for setting in (bootstrap.POLICY, bootstrap.LEDGER, bootstrap.REPLAY):
        assert f"{setting} = " in env
    if name == "gcp":
        assert f"{bootstrap.DEFER_TOPIC} = " in env
    fields = set(re.findall(r"(\w+) = ", mod["variable"]["slack"]["type"]))
    assert fields == SLACK_FIELDS[name]  # references only: no field takes the secret itself
    if name == "aws":
        assert mod["locals"]["slack_secret_ref"].count("var.slack.signing_secret_arn") == 2


GCP_ALLOWED_ROLES = {
    ("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor"),
    ("google_pubsub_topic_iam_member", "roles/pubsub.publisher"),
    ("google_pubsub_subscription_iam_member", "roles/pubsub.subscriber"),
    ("google_project_iam_member", "roles/datastore.user"),
    ("google_storage_bucket_iam_member", "roles/storage.objectViewer"),
    ("google_cloud_run_service_iam_member", "roles/run.invoker"),
    ("google_service_account_iam_member", "roles/iam.serviceAccountTokenCreator"),
    # Eventarc's required project-level roles (storage triggers only)
    ("google_project_iam_member", "roles/eventarc.eventReceiver"),
    ("google_project_iam_member", "roles/pubsub.publisher"),
    # the guardrail's custom stop role
    ("google_project_iam_member", "${each.value.name}"),
    # the billing extraction: query jobs (project-level only), the billing dataset, its bucket, and
    # Cloud Scheduler starting the workflow (no per-workflow binding exists)
    ("google_project_iam_member", "roles/bigquery.jobUser"),
    ("google_bigquery_dataset_iam_member", "roles/bigquery.dataViewer"),
    ("google_storage_bucket_iam_member", "roles/storage.objectUser"),
    ("google_project_iam_member", "roles/workflows.invoker"),
}


def test_gcp_identities_get_only_the_roles_they_need() -> None:
    gcp = module("gcp")
    bindings = [(rtype, name, body) for rtype, by_name in gcp["resource"].items() if rtype.endswith("_iam_member")
                for name, body in by_name.items()]
    assert {(rtype, body["role"]) for rtype, _, body in bindings} <= GCP_ALLOWED_ROLES
    by_name = {name: (rtype, body) for rtype, name, body in bindings}
    # the signing secret: one secret, not the project
    rtype, body = by_name["slack_signing_secret"]
    assert rtype == "google_secret_manager_secret_iam_member" and body["secret_id"] == "${local.slack_secret}"
    # publishing: on the topic
    assert by_name["queue_publish"][1]["topic"] == "${google_pubsub_topic.queue.name}"
    assert by_name["slack_defer"][1]["topic"] == "${google_pubsub_topic.slack_defer[0].name}"
    # the ledger: project-level by necessity, conditioned on the ledger database
    ledger = by_name["ledger"][1]
    assert ledger["role"] == "roles/datastore.user" and "local.ledger_database" in ledger["condition"][0]["expression"]
    # project-level Pub/Sub publishing only for the Cloud Storage service agent (Eventarc)
    assert "google_storage_project_service_account" in by_name["storage_agent_publisher"][1]["member"]
    # every grant is given per function (or federated principal), from its own list
    for grant in ("slack_signing_secret", "slack_defer", "queue_publish", "ledger", "read_exports"):
        assert f'v.grant == "{grant}"' in by_name[grant][1]["for_each"]
    # no basic role and no admin role anywhere
    assert not re.search(r"roles/(owner|editor|viewer)\b|roles/[a-z.]+\.admin\b", all_text("modules/gcp"))


def test_azure_custom_role_reads_deallocates_and_starts_never_deletes() -> None:
    azure = module("azure")
    role = azure["resource"]["azurerm_role_definition"]["vm_stop"]
    actions = role["permissions"][0]["actions"]
    assert "Microsoft.Compute/virtualMachines/deallocate/action" in actions
    assert "Microsoft.Compute/virtualMachines/start/action" in actions
    assert "Microsoft.Compute/virtualMachines/read" in actions
    for action in actions:
        assert action.startswith("Microsoft.Compute/virtualMachines/")
        assert not action.endswith(("/delete", "/write")) and "*" not in action and "powerOff" not in action
    assert role["assignable_scopes"] == "${var.guardrail_stop.scopes}"
    builtin = {body["role_definition_name"] for body in azure["resource"]["azurerm_role_assignment"].values()
               if "role_definition_name" in body}
    assert builtin <= {"Storage Blob Data Owner", "Monitoring Metrics Publisher", "Key Vault Secrets User",
                       "Storage Blob Data Reader", "Storage Blob Data Contributor",
                       # deferred slash answers: sender and reader, on the two queues only
                       "Storage Queue Data Message Sender", "Storage Queue Data Contributor"}
    for name in ("slack_defer_send", "slack_defer_read"):
        scope = azure["resource"]["azurerm_role_assignment"][name]["scope"]
        assert "/queueServices/default/queues/${azurerm_storage_queue.slack_defer[" in scope, (name, scope)
    # Contributor only for Event Grid's dead letters, on the app's own dead-letter container
    contributor = [b for b in azure["resource"]["azurerm_role_assignment"].values()
                   if b.get("role_definition_name") == "Storage Blob Data Contributor"]
    assert len(contributor) == 1 and contributor[0]["scope"].endswith("containers/${azurerm_storage_container.dead_letter[each.key].name}")
    secret = azure["resource"]["azurerm_role_assignment"]["slack_signing_secret"]
    assert secret["scope"] == "${local.slack_secret_scope}" and "/secrets/" in azure["locals"]["slack_secret_scope"]


def test_cross_cloud_identity_is_federated_not_keyed() -> None:
    gcp = module("gcp")["resource"]
    assert "google_iam_workload_identity_pool" in gcp
    aws_provider = gcp["google_iam_workload_identity_pool_provider"]["aws"]
    azure_provider = gcp["google_iam_workload_identity_pool_provider"]["azure"]
    assert aws_provider["aws"][0]["account_id"] == "${local.aws_account}"
    assert "attribute.aws_role in" in aws_provider["attribute_condition"]
    assert azure_provider["oidc"][0]["issuer_uri"].startswith("https://sts.windows.net/")
    assert "assertion.sub in" in azure_provider["attribute_condition"]
    credential = module("azure")["resource"]["azurerm_federated_identity_credential"]["guardrail_google"]
    assert credential["issuer"] == "https://accounts.google.com"
    assert credential["subject"] == "${var.guardrail_stop.google_service_account_unique_id}"
    assert credential["audience"] == ["api://AzureADTokenExchange"]
    # the guardrail's service account exists before its function, so the stop roles can trust it
    assert '["guardrail"]' in module("gcp")["locals"]["service_account_keys"]
