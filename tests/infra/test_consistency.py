"""Consistency between infra/ and the code it deploys.

* every entry point Terraform names exists in functions/ with the event type its trigger delivers;
* every environment variable a function reads is one Terraform sets for it;
* the permissions granted equal the actions the adapters declare (`PERMISSIONS`).

Data-driven from the tables below (the brief's names). The adapters, composition roots and entry
points being written on the aws, gcp and azure branches are listed in PENDING_MODULES: their
checks do not run yet, and `test_pending_modules_are_still_missing` fails as soon as one exists,
so that whoever merges it removes it from the list and its checks run. When every branch is
merged, PENDING_MODULES is empty.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

#: Written in parallel on other branches; the integrator empties this list when merging them.
PENDING_MODULES: frozenset[str] = frozenset({
    "burnguard.adapters.aws.ec2", "burnguard.adapters.aws.s3",
    "burnguard.adapters.gcp.compute", "burnguard.adapters.gcp.gcs", "burnguard.adapters.gcp.firestore",
    "burnguard.app.aws", "burnguard.app.gcp",
    "functions/aws/ingest.py:lambda_handler", "functions/aws/budget.py:lambda_handler",
    "functions/gcp/main.py:ingest", "functions/gcp/main.py:budget", "functions/gcp/main.py:guardrail",
})

# --- the tables ------------------------------------------------------------------------------------

#: (cloud, function stem) -> (entry point, trigger type in the module's functions map)
ENTRY_POINTS: dict[tuple[str, str], tuple[str, str]] = {
    ("aws", "slack_command"): ("functions/aws/slack_command.py:lambda_handler", "function_url"),
    ("aws", "ingest"): ("functions/aws/ingest.py:lambda_handler", "s3"),
    ("aws", "budget"): ("functions/aws/budget.py:lambda_handler", "sns"),
    ("gcp", "slack_command"): ("functions/gcp/main.py:slack_command", "http"),
    ("gcp", "slack_deferred"): ("functions/gcp/main.py:slack_deferred", "pubsub"),
    ("gcp", "ingest"): ("functions/gcp/main.py:ingest", "storage"),
    ("gcp", "budget"): ("functions/gcp/main.py:budget", "pubsub"),
    ("gcp", "guardrail"): ("functions/gcp/main.py:guardrail", "pubsub"),
    ("azure", "slack_command"): ("functions/azure/function_app.py:slack_command", "http"),
    ("azure", "ingest"): ("functions/azure/function_app.py:ingest", "blob_events"),
    ("azure", "budget"): ("functions/azure/function_app.py:budget", "http"),
}

#: (cloud, trigger type) -> the decorator the entry point must carry (None: a plain Lambda handler
#: taking (event, context)), and the event type that reaches it
TRIGGER_EVENTS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("aws", "function_url"): (None, "Function URL request, payload 2.0"),
    ("aws", "s3"): (None, "EventBridge 'Object Created'"),
    ("aws", "sns"): (None, "SNS notification"),
    ("gcp", "http"): ("functions_framework.http", "HTTP request"),
    ("gcp", "pubsub"): ("functions_framework.cloud_event", "google.cloud.pubsub.topic.v1.messagePublished"),
    ("gcp", "storage"): ("functions_framework.cloud_event", "google.cloud.storage.object.v1.finalized"),
    ("azure", "http"): ("app.route", "HTTP request"),
    ("azure", "blob_events"): ("app.event_grid_trigger", "Microsoft.Storage.BlobCreated"),
}

SLASH = {"BURNGUARD_SLACK_SIGNING_SECRET_REF", "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_REPLAY"}
REACH = {"BURNGUARD_AWS_ROLE_ARN", "BURNGUARD_AWS_REGIONS", "BURNGUARD_AZURE_TENANT_ID", "BURNGUARD_AZURE_CLIENT_ID",
         "BURNGUARD_AZURE_SCOPES", "BURNGUARD_GCP_PROJECTS"}
#: (cloud, function stem) -> the environment variables it reads (the brief's names)
READS: dict[tuple[str, str], set[str]] = {
    ("aws", "slack_command"): SLASH | {"BURNGUARD_GCP_WIF_CONFIG"},
    ("aws", "ingest"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG"},
    ("aws", "budget"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG"},
    ("gcp", "slack_command"): SLASH | {"BURNGUARD_SLACK_DEFER_TOPIC"},
    ("gcp", "slack_deferred"): SLASH,
    ("gcp", "ingest"): {"BURNGUARD_TOPIC"},
    ("gcp", "budget"): {"BURNGUARD_TOPIC"},
    ("gcp", "guardrail"): {"BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_BOT_TOKEN_REF",
                           "BURNGUARD_SLACK_CHANNEL"} | REACH,
    ("azure", "slack_command"): SLASH | {"BURNGUARD_GCP_WIF_CONFIG"},
    ("azure", "ingest"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG"},
    ("azure", "budget"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_WEBHOOK_SECRET_REF"},
}
#: composition roots and the clouds whose functions they configure
SETTINGS_MODULES = {"burnguard.app.slack": ("aws", "gcp", "azure"), "burnguard.app.aws": ("aws",),
                    "burnguard.app.gcp": ("gcp",), "burnguard.app.azure": ("azure",)}

#: The documented contents of the predefined roles the modules bind (a predefined role cannot be
#: cut to one adapter's actions: there the declared actions must be within the role, and the role
#: is the narrowest one that holds them).
PREDEFINED_ROLES = {
    "roles/pubsub.publisher": {"pubsub.topics.publish"},
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list", "storage.folders.get",
                                   "storage.folders.list", "storage.managedFolders.get", "storage.managedFolders.list",
                                   "resourcemanager.projects.get"},
    "roles/datastore.user": {"datastore.databases.get", "datastore.databases.getMetadata", "datastore.entities.allocateIds",
                             "datastore.entities.create", "datastore.entities.delete", "datastore.entities.get",
                             "datastore.entities.list", "datastore.entities.update", "datastore.indexes.list",
                             "datastore.namespaces.get", "datastore.namespaces.list", "datastore.statistics.get",
                             "datastore.statistics.list", "resourcemanager.projects.get", "resourcemanager.projects.list"},
    "Storage Blob Data Reader": {"Microsoft.Storage/storageAccounts/blobServices/containers/read",
                                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
                                 "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"},
}


# --- reading the modules -------------------------------------------------------------------------

def _resources(cloud: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((INFRA / "modules" / cloud).glob("*.tf")):
        for item in hcl2.loads(path.read_text(), serialization_options=HCL).get("resource", []):
            for rtype, named in item.items():
                out.setdefault(rtype, {}).update(named)
    return out


def _locals(cloud: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted((INFRA / "modules" / cloud).glob("*.tf")):
        for item in hcl2.loads(path.read_text(), serialization_options=HCL).get("locals", []):
            out.update(item)
    return out


def _example_functions(example: str = "complete") -> dict[tuple[str, str], dict[str, Any]]:
    """The functions an example deploys. The tables describe examples/complete, the whole pipeline."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((INFRA / "examples" / example).glob("*.tf")):
        for item in hcl2.loads(path.read_text(), serialization_options=HCL).get("module", []):
            for call in item.values():
                cloud = Path(call["source"]).name
                for stem, fn in call.get("functions", {}).items():
                    found[(cloud, stem)] = fn
    return found


def _split_top_level(text: str) -> list[str]:
    parts, depth, current, quoted = [], 0, [], False
    for i, ch in enumerate(text):
        if ch == '"' and text[i - 1] != "\\":
            quoted = not quoted
        if not quoted:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append("".join(current).strip())
                current = []
                continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


ENV_NAME = re.compile(r"\b((?:BURNGUARD|AZURE)_[A-Z0-9_]+)\s*=")


def environment_set_for(cloud: str, function: dict[str, Any]) -> set[str]:
    """The variables the module's environment expression sets for a function with these grants and
    trigger (every optional input given): the merge(...) arguments whose condition holds."""
    local = _locals(cloud)
    text = local["app_settings" if cloud == "azure" else "environment"]
    body = text[text.index("merge(") + len("merge("): text.rindex(")")]
    grants = set(function.get("grants", []))
    names: set[str] = set()
    for part in _split_top_level(body):
        condition, _, value = part.partition(" ? ")
        if not value:
            condition, value = "", part
        wanted = set(re.findall(r'contains\(f\.grants, "(\w+)"\)', condition))
        wanted |= {g for lst in re.findall(r"setintersection\(f\.grants, \[([^\]]*)\]\)", condition)
                   for g in re.findall(r'"(\w+)"', lst)}
        trigger = re.findall(r'f\.trigger\.type == "(\w+)"', condition)
        if wanted and not wanted & grants and " && " not in condition:
            continue
        if " && " in condition and not wanted <= grants:
            continue
        if trigger and function["trigger"]["type"] not in trigger:
            continue
        value = value.split(" : ")[0] if value.rstrip().endswith("{}") else value
        for ref in re.findall(r"local\.(\w+)", value):
            names |= set(ENV_NAME.findall(str(local.get(ref, ""))))
        names |= set(ENV_NAME.findall(value))
        if value.strip() == "f.environment":
            names |= set(function.get("environment", {}))
    return names


# --- pending ---------------------------------------------------------------------------------------

def _exists(name: str) -> bool:
    if ":" in name:
        file, _, func = name.partition(":")
        path = ROOT / file
        return path.is_file() and func in _top_level_functions(path)
    return importlib.util.find_spec(name) is not None


def _top_level_functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("name", sorted(PENDING_MODULES))
def test_pending_modules_are_still_missing(name: str) -> None:
    assert not _exists(name), f"{name} exists now: remove it from PENDING_MODULES so that its checks run"


# --- entry points ----------------------------------------------------------------------------------

def test_examples_deploy_the_table_s_functions_with_its_triggers() -> None:
    deployed = _example_functions()
    assert set(deployed) == set(ENTRY_POINTS), set(deployed) ^ set(ENTRY_POINTS)
    aws_only = _example_functions("aws-only")
    assert aws_only and set(aws_only) <= set(ENTRY_POINTS)
    for (cloud, stem), fn in [*deployed.items(), *aws_only.items()]:
        entry, trigger = ENTRY_POINTS[(cloud, stem)]
        named = fn["handler"].replace(".", ".py:", 1) if cloud == "aws" else fn["entry_point"]
        assert entry.endswith(named), (cloud, stem, named)
        assert fn["trigger"]["type"] == trigger, (cloud, stem)


@pytest.mark.parametrize(("cloud", "stem"), sorted(k for k, (e, _) in ENTRY_POINTS.items() if e not in PENDING_MODULES))
def test_entry_point_exists_with_its_trigger_s_event_type(cloud: str, stem: str) -> None:
    entry, trigger = ENTRY_POINTS[(cloud, stem)]
    file, _, name = entry.partition(":")
    functions = _top_level_functions(ROOT / file)
    assert name in functions, f"{entry} does not exist"
    node = functions[name]
    decorator, event = TRIGGER_EVENTS[(cloud, trigger)]
    decorators = [ast.unparse(d) for d in node.decorator_list]
    if decorator is None:
        assert decorators == [] and len(node.args.args) == 2, f"{entry}: a Lambda handler (event, context) for {event}"
    else:
        assert any(d == decorator or d.startswith(f"{decorator}(") for d in decorators), (entry, decorators, event)
    if (cloud, trigger) == ("azure", "http"):
        fn = _example_functions()[(cloud, stem)]
        route = fn["trigger"].get("route", fn["entry_point"])
        assert any(f"route='{route}'" in d or f'route="{route}"' in d for d in decorators), (entry, route)


def test_gcp_triggers_deliver_the_event_types_the_table_names() -> None:
    function = _resources("gcp")["google_cloudfunctions2_function"]["this"]
    (dynamic,) = [d["event_trigger"] for d in function["dynamic"] if "event_trigger" in d]
    assert dynamic["for_each"].startswith('${each.value.trigger.type == "storage"')
    assert dynamic["content"][0]["event_type"] == TRIGGER_EVENTS[("gcp", "storage")][1]
    # pubsub: a push subscription to the function's URL; functions-framework turns the push
    # request into the messagePublished CloudEvent a @cloud_event function receives
    push = _resources("gcp")["google_pubsub_subscription"]["push"]
    assert push["push_config"][0]["push_endpoint"] == "${google_cloudfunctions2_function.this[each.key].url}"
    assert "no_wrapper" not in push["push_config"][0]


def test_azure_blob_events_reach_the_event_grid_trigger() -> None:
    subscription = _resources("azure")["azurerm_eventgrid_system_topic_event_subscription"]["exports"]
    assert subscription["included_event_types"] == [TRIGGER_EVENTS[("azure", "blob_events")][1]]
    endpoint = subscription["azure_function_endpoint"][0]["function_id"]
    assert endpoint.endswith("/functions/${each.value.entry_point}")
    assert subscription["event_delivery_schema"] == "EventGridSchema"


# --- environment -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cloud", "stem"), sorted(READS))
def test_every_variable_a_function_reads_is_set(cloud: str, stem: str) -> None:
    function = _example_functions()[(cloud, stem)]
    missing = READS[(cloud, stem)] - environment_set_for(cloud, function)
    assert not missing, f"{cloud}/{stem} reads {sorted(missing)}, which Terraform does not set for it"


def test_the_environment_evaluator_follows_grants_and_triggers() -> None:
    # an oracle written by hand from locals.tf, so the evaluator above can be trusted
    assert environment_set_for("gcp", {"grants": [], "trigger": {"type": "http"}}) == {"BURNGUARD_POLICY", "BURNGUARD_LEDGER"}
    assert environment_set_for("aws", {"grants": ["queue_publish"], "trigger": {"type": "s3"}}) == {
        "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG"}
    azure = environment_set_for("azure", {"grants": ["webhook_secret"], "trigger": {"type": "http"}})
    assert "BURNGUARD_WEBHOOK_SECRET_REF" in azure and "BURNGUARD_TOPIC" not in azure


@pytest.mark.parametrize("module", sorted(m for m in SETTINGS_MODULES if m not in PENDING_MODULES))
def test_settings_read_only_variables_the_tables_know(module: str) -> None:
    source = Path(importlib.import_module(module).__file__ or "").read_text()
    read = set(re.findall(r'"(BURNGUARD_[A-Z0-9_]+)"', source)) - {"BURNGUARD_HOME"}  # HOME: local mode only
    known = {v for (cloud, _), names in READS.items() if cloud in SETTINGS_MODULES[module] for v in names}
    known |= {"BURNGUARD_SLACK_DEFER_TOPIC"}
    assert read and read <= known, f"{module} reads {sorted(read - known)}: add them to READS and to the modules"


# --- permissions -----------------------------------------------------------------------------------

def _aws_stop_actions() -> set[str]:
    local = _locals("aws")
    actions = set(local["stop_statement_describe"]["Action"])
    actions |= set(re.findall(r'"(ec2:\w+)"', re.search(r"Action = \[[^\]]*\]", local["stop_statements_scoped"]).group(0)))
    return actions


def _aws_grant_actions(sid: str) -> set[str]:
    text = (INFRA / "modules" / "aws" / "iam.tf").read_text()
    block = text[text.index(f'Sid      = "{sid}"'):]
    return set(re.findall(r'"([a-z0-9]+:\w+)"', block[: block.index("]")]))


def _gcp_role_of(resource: str, name: str) -> str:
    return _resources("gcp")[resource][name]["role"]


GRANTED: dict[str, Any] = {
    "burnguard.adapters.gcp.pubsub": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_pubsub_topic_iam_member", "queue_publish")]),
    "burnguard.adapters.gcp.compute": lambda: ("exact", set(_resources("gcp")["google_project_iam_custom_role"]["instance_stop"]["permissions"])),
    "burnguard.adapters.gcp.gcs": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_storage_bucket_iam_member", "read_exports")]),
    "burnguard.adapters.gcp.firestore": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_project_iam_member", "ledger")]),
    "burnguard.adapters.aws.ec2": lambda: ("exact", _aws_stop_actions()),
    "burnguard.adapters.aws.s3": lambda: ("exact", _aws_grant_actions("ReadBillingExports")),
    "burnguard.adapters.azure.vms": lambda: ("exact", set(_resources("azure")["azurerm_role_definition"]["vm_stop"]["permissions"][0]["actions"])),
    "burnguard.adapters.azure.blob": lambda: ("role", PREDEFINED_ROLES[_resources("azure")["azurerm_role_assignment"]["read_exports"]["role_definition_name"]]),
}


@pytest.mark.parametrize("module", sorted(m for m in GRANTED if m not in PENDING_MODULES))
def test_permissions_granted_equal_the_adapter_s_declared_actions(module: str) -> None:
    declared = set(importlib.import_module(module).PERMISSIONS)
    kind, granted = GRANTED[module]()
    assert declared, f"{module}.PERMISSIONS is empty"
    if kind == "exact":
        assert granted == declared, f"{module}: granted {sorted(granted)} != declared {sorted(declared)}"
    else:
        assert declared <= granted, f"{module} declares {sorted(declared - granted)}, which its role does not hold"
        # and the role is needed for what is declared: no narrower predefined role holds it
        narrower = [r for r, perms in PREDEFINED_ROLES.items() if declared <= perms < granted]
        assert not narrower, f"{module}: {narrower} would do"


def test_the_granted_sets_are_read_from_the_modules() -> None:
    assert _aws_stop_actions() == {"ec2:DescribeInstances", "ec2:StopInstances", "ec2:StartInstances"}
    assert _aws_grant_actions("ReadBillingExports") == {"s3:GetObject"}
    assert GRANTED["burnguard.adapters.gcp.pubsub"]() == ("role", {"pubsub.topics.publish"})
    kind, azure = GRANTED["burnguard.adapters.azure.vms"]()
    assert kind == "exact" and "Microsoft.Compute/virtualMachines/deallocate/action" in azure
