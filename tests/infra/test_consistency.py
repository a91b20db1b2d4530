"""Consistency between infra/ and the code it deploys.

* every entry point Terraform names exists in functions/ with the event type its trigger delivers;
* every environment variable a function reads is one Terraform sets for it, and the code reads no
  variable the tables below do not know (local-only ones and those Terraform does not set are
  listed with their reason);
* the permissions granted equal the actions the adapters and composition roots declare
  (`PERMISSIONS`, `INGEST_PERMISSIONS`, `BUDGET_PERMISSIONS`).

Data-driven from the tables below (the brief's names). A module or entry point written on a branch
not merged yet goes into PENDING_MODULES until it exists (then its checks run); it is empty now.
"""

from __future__ import annotations

import ast
import fnmatch
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
PENDING_MODULES: frozenset[str] = frozenset()

POWERTOOLS_DECORATORS = ("metrics.log_metrics", "logger.inject_lambda_context")

# --- the tables ------------------------------------------------------------------------------------

#: (cloud, function stem) -> (entry point, trigger type in the module's functions map)
ENTRY_POINTS: dict[tuple[str, str], tuple[str, str]] = {
    ("aws", "slack_command"): ("functions/aws/slack_command.py:lambda_handler", "function_url"),
    ("aws", "ingest"): ("functions/aws/ingest.py:lambda_handler", "s3"),
    ("aws", "budget"): ("functions/aws/budget.py:lambda_handler", "sns"),
    ("aws", "instance_event"): ("functions/aws/instance_event.py:lambda_handler", "ec2_state"),
    ("gcp", "slack_command"): ("functions/gcp/main.py:slack_command", "http"),
    ("gcp", "slack_deferred"): ("functions/gcp/main.py:slack_deferred", "pubsub"),
    ("gcp", "ingest"): ("functions/gcp/main.py:ingest", "storage"),
    ("gcp", "budget"): ("functions/gcp/main.py:budget", "pubsub"),
    ("gcp", "guardrail"): ("functions/gcp/main.py:guardrail", "pubsub"),
    ("gcp", "meter"): ("functions/gcp/main.py:meter", "pubsub"),
    ("gcp", "instance_event"): ("functions/gcp/main.py:instance_event", "audit_log"),
    ("azure", "slack_command"): ("functions/azure/function_app.py:slack_command", "http"),
    ("azure", "ingest"): ("functions/azure/function_app.py:ingest", "blob_events"),
    ("azure", "budget"): ("functions/azure/function_app.py:budget", "http"),
    ("azure", "slack_deferred"): ("functions/azure/function_app.py:slack_deferred", "queue"),
    ("azure", "instance_event"): ("functions/azure/function_app.py:instance_event", "resource_events"),
}

#: (cloud, trigger type) -> the decorator the entry point must carry (None: a Lambda handler taking
#: (event, context), with powertools' decorators at most), and the event type that reaches it
TRIGGER_EVENTS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("aws", "function_url"): (None, "Function URL request, payload 2.0"),
    ("aws", "s3"): (None, "EventBridge 'Object Created'"),
    ("aws", "sns"): (None, "SNS notification"),
    ("aws", "ec2_state"): (None, "EventBridge 'EC2 Instance State-change Notification'"),
    ("gcp", "http"): ("functions_framework.http", "HTTP request"),
    ("gcp", "pubsub"): ("functions_framework.cloud_event", "google.cloud.pubsub.topic.v1.messagePublished"),
    ("gcp", "storage"): ("functions_framework.cloud_event", "google.cloud.storage.object.v1.finalized"),
    ("gcp", "audit_log"): ("functions_framework.cloud_event", "google.cloud.audit.log.v1.written"),
    ("azure", "http"): ("app.route", "HTTP request"),
    ("azure", "blob_events"): ("app.event_grid_trigger", "Microsoft.Storage.BlobCreated"),
    ("azure", "resource_events"): ("app.event_grid_trigger", "Microsoft.Resources.ResourceActionSuccess"),
    ("azure", "queue"): ("app.queue_trigger", "Storage queue message"),
}

SLASH = {"BURNGUARD_SLACK_SIGNING_SECRET_REF", "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_REPLAY"}
REACH_AWS = {"BURNGUARD_AWS_ROLE_ARN", "BURNGUARD_AWS_REGIONS", "BURNGUARD_AWS_TOKEN_AUDIENCE"}
REACH_AZURE = {"BURNGUARD_AZURE_TENANT_ID", "BURNGUARD_AZURE_CLIENT_ID", "BURNGUARD_AZURE_SCOPES"}
REACH = REACH_AWS | REACH_AZURE | {"BURNGUARD_GCP_PROJECTS", "BURNGUARD_GCE_LOCAL_SSD"}
#: the meter's functions on Google Cloud read what the guardrail reads, but for its dead letters
METER = {"BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_BOT_TOKEN_REF", "BURNGUARD_SLACK_CHANNEL"} | REACH
#: publishing to Pub/Sub from Azure: the external-account configuration and the Entra audience
AZURE_WIF = {"BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_AZURE_WIF_AUDIENCE"}
#: (cloud, function stem) -> the environment variables it reads (the brief's names). The AWS and
#: Azure slash commands get BURNGUARD_GCP_WIF_CONFIG for their ledger grant (Firestore from outside
#: Google Cloud); burnguard.app.slack.open_ledger does not build federated credentials from it yet.
READS: dict[tuple[str, str], set[str]] = {
    ("aws", "slack_command"): SLASH | {"BURNGUARD_GCP_WIF_CONFIG"},
    ("aws", "ingest"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_DEAD_LETTER_URL",
                        "BURNGUARD_STATE_BUCKET", "BURNGUARD_STATE_PREFIX", "BURNGUARD_PARTS_QUEUE_URL",
                        "BURNGUARD_FAN_OUT_PARTS"},
    ("aws", "budget"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_DEAD_LETTER_URL"},
    ("aws", "instance_event"): {"BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_DEAD_LETTER_URL"},
    ("gcp", "slack_command"): SLASH | {"BURNGUARD_SLACK_DEFER_TOPIC"},
    ("gcp", "slack_deferred"): SLASH,
    ("gcp", "ingest"): {"BURNGUARD_TOPIC"},
    ("gcp", "budget"): {"BURNGUARD_TOPIC"},
    ("gcp", "guardrail"): {"BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_SLACK_BOT_TOKEN_REF",
                           "BURNGUARD_SLACK_CHANNEL", "BURNGUARD_DEAD_LETTER_TOPIC",
                           "BURNGUARD_MAX_DELIVERY_ATTEMPTS"} | REACH,
    ("gcp", "meter"): METER,
    ("gcp", "instance_event"): METER,
    ("azure", "slack_command"): SLASH | AZURE_WIF | {"BURNGUARD_SLACK_DEFER_QUEUE"},
    ("azure", "slack_deferred"): SLASH | AZURE_WIF | {"BURNGUARD_SLACK_DEFER_QUEUE"},
    ("azure", "ingest"): {"BURNGUARD_TOPIC", "BURNGUARD_AZURE_EXPORT_STORAGE", "BURNGUARD_DEAD_LETTER_CONTAINER"} | AZURE_WIF,
    ("azure", "budget"): {"BURNGUARD_TOPIC", "BURNGUARD_WEBHOOK_AUTH", "BURNGUARD_WEBHOOK_SECRET_REF"} | AZURE_WIF,
    ("azure", "instance_event"): {"BURNGUARD_TOPIC", "BURNGUARD_DEAD_LETTER_CONTAINER"} | AZURE_WIF,
}
#: Read by the code, never set by Terraform: local runs only (`burnguard invoke`, the embedded mode).
LOCAL_ONLY = {
    "BURNGUARD_HOME": "the embedded mode's state directory (burnguard CLI)",
    "BURNGUARD_LOCAL_EXPORTS": "burnguard invoke aws ingest without BURNGUARD_TOPIC: directories stand for buckets",
    "BURNGUARD_LOCAL_BUCKETS": "burnguard invoke gcp ingest without BURNGUARD_TOPIC: directories stand for buckets",
    "BURNGUARD_AZURE_LOCAL_EXPORTS": "burnguard invoke azure ingest without BURNGUARD_TOPIC: directories stand for containers",
}
#: Read by the deployed code, deliberately not set by the modules (set through functions[*].environment).
NOT_SET_BY_TERRAFORM = {
    "BURNGUARD_WEBHOOK_ALLOWED_PRINCIPALS": "only with BURNGUARD_WEBHOOK_AUTH=entra, which needs App Service "
                                            "Authentication on the budget app; the module deploys the secret mode",
    "BURNGUARD_EVENTS": "the connection of ingest_queue (Event Grid to a Storage queue), which the module does not "
                        "deploy: it subscribes the Event Grid trigger itself",
    "BURNGUARD_EVENTS_QUEUE": "the queue of ingest_queue (see BURNGUARD_EVENTS)",
}
#: composition roots (and entry point files) and the clouds whose functions they configure
SETTINGS_MODULES = {"burnguard.app.config": ("aws", "gcp", "azure"),
                    "burnguard.app.slack": ("aws", "gcp", "azure"), "burnguard.app.aws": ("aws",),
                    "burnguard.app.federation": ("aws", "azure"),
                    "burnguard.app.gcp": ("gcp",), "burnguard.app.azure": ("azure",)}
ENTRY_FILES = {"functions/aws/ingest.py": "aws", "functions/aws/budget.py": "aws", "functions/aws/slack_command.py": "aws",
               "functions/aws/instance_event.py": "aws",
               "functions/gcp/main.py": "gcp", "functions/azure/function_app.py": "azure"}
#: what a cloud's composition root reads for the guardrail (which runs on Google Cloud): its controller
READ_FOR_THE_GUARDRAIL = {"burnguard.app.aws": REACH_AWS, "burnguard.app.azure": REACH_AZURE}

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
    "Storage Queue Data Message Sender": {"Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action"},
    "Storage Blob Data Owner": {"Microsoft.Storage/storageAccounts/blobServices/containers/*",
                                "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
                                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"},
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


def _applicable(cloud: str, text: str, function: dict[str, Any]) -> list[str]:
    """The arguments of the merge(...)/concat(...) in ``text`` whose condition holds for a function
    with these grants and trigger (every optional input given)."""
    body = text[text.index("(") + 1: text.rindex(")")]
    grants = set(function.get("grants", []))
    values: list[str] = []
    for part in _split_top_level(body):
        condition, _, value = part.partition(" ? ")
        if not value:
            condition, value = "", part
        wanted = set(re.findall(r'contains\(f\.grants, "(\w+)"\)', condition))
        wanted |= {g for lst in re.findall(r"setintersection\(f\.grants, \[([^\]]*)\]\)", condition)
                   for g in re.findall(r'"(\w+)"', lst)}
        trigger = re.findall(r'f\.trigger\.type == "(\w+)"', condition)
        trigger += [t for lst in re.findall(r"contains\(\[([^\]]*)\], f\.trigger\.type\)", condition)
                    for t in re.findall(r'"(\w+)"', lst)]
        if wanted and not wanted & grants and " && " not in condition:
            continue
        if " && " in condition and not wanted <= grants:
            continue
        if trigger and function["trigger"]["type"] not in trigger:
            continue
        values.append(value.split(" : ")[0] if value.rstrip().endswith(("{}", "[]")) else value)
    return values


def environment_set_for(cloud: str, function: dict[str, Any]) -> set[str]:
    """The variables the module's environment expression sets for a function with these grants and
    trigger (every optional input given): the merge(...) arguments whose condition holds."""
    local = _locals(cloud)
    names: set[str] = set()
    for value in _applicable(cloud, local["app_settings" if cloud == "azure" else "environment"], function):
        for ref in re.findall(r"local\.(\w+)", value):
            names |= set(ENV_NAME.findall(str(local.get(ref, ""))))
        names |= set(ENV_NAME.findall(value))
        if value.strip() == "f.environment":
            names |= set(function.get("environment", {}))
    return names


def aws_role_actions(function: dict[str, Any]) -> set[str]:
    """The IAM actions of the execution role of an AWS function with these grants and trigger."""
    text = _locals("aws")["function_statements"]
    return {a for value in _applicable("aws", text[text.index("concat("):], function)
            for actions in re.findall(r"Action\s*=\s*\[([^\]]*)\]", value)
            for a in re.findall(r'"([a-z0-9]+:[A-Za-z]+)"', actions)}


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


def test_pending_modules_are_still_missing() -> None:
    exist = sorted(name for name in PENDING_MODULES if _exists(name))
    assert not exist, f"{exist} exist now: remove them from PENDING_MODULES so that their checks run"
    assert _exists("functions/azure/function_app.py:slack_deferred") and _exists("burnguard.app.aws")
    assert not _exists("functions/azure/function_app.py:no_such_function") and not _exists("burnguard.app.no_such")


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
        assert all(d.startswith(POWERTOOLS_DECORATORS) for d in decorators), (entry, decorators)
        assert len(node.args.args) == 2, f"{entry}: a Lambda handler (event, context) for {event}"
    else:
        assert any(d == decorator or d.startswith(f"{decorator}(") for d in decorators), (entry, decorators, event)
    if (cloud, trigger) == ("azure", "http"):
        fn = _example_functions()[(cloud, stem)]
        route = fn["trigger"].get("route", fn["entry_point"])
        assert any(f"route='{route}'" in d or f'route="{route}"' in d for d in decorators), (entry, route)
    if (cloud, trigger) == ("azure", "queue"):
        # the queue Terraform creates, named by the setting it sets; read through the host's own
        # storage connection, which Terraform points at the sender's account (host_storage)
        assert any("queue_name='%BURNGUARD_SLACK_DEFER_QUEUE%'" in d and "connection='AzureWebJobsStorage'" in d
                   for d in decorators), (entry, decorators)


def test_azure_queue_reader_shares_the_sender_s_storage_account() -> None:
    deployed = _example_functions()
    readers = {k: f for k, f in deployed.items() if k[0] == "azure" and f["trigger"]["type"] == "queue"}
    senders = [k for k, f in deployed.items() if k[0] == "azure" and "slack_defer" in f.get("grants", [])]
    assert readers and senders == [("azure", "slack_command")]
    for fn in readers.values():
        assert fn["trigger"]["queue"] == "slack_defer" and fn["host_storage"] == "slack_command"
    local = _locals("azure")
    settings = local["app_settings"]
    for setting in ("AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri"):
        assert re.search(setting + r" *= *trimsuffix\(azurerm_storage_account\.function\[local\.storage_owner\[k\]\]", settings)
    assert "AzureWebJobsStorage__accountName" not in settings  # the code reaches the account by its URIs
    assert "coalesce(f.host_storage, k)" in local["storage_owner"]
    queue = _resources("azure")["azurerm_storage_queue"]["slack_defer"]
    assert queue["storage_account_id"] == "${azurerm_storage_account.function[local.slack_defer_sender].id}"


def test_azure_apps_disable_every_other_function_of_the_bundle() -> None:
    tree = ast.parse((ROOT / "functions/azure/function_app.py").read_text())
    bundle = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
              and any(ast.unparse(d).startswith("app.") for d in n.decorator_list)}
    assert set(_locals("azure")["bundle_entry_points"]) == bundle


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


def test_instance_state_changes_reach_the_functions_that_read_them() -> None:
    """The three clouds' state-change triggers select exactly what burnguard.core.state_events
    turns into a StateChange, and deliver it to the instance_event functions."""
    from burnguard.core.state_events import AZURE_OPERATIONS, EC2_STATES, GCE_METHODS

    # Google Cloud: one Eventarc trigger per audit-logged method, to the function's service
    local = _locals("gcp")
    methods = local["instance_methods"]
    assert "setproduct([\"v1\", \"beta\"]" in methods or 'setproduct(["v1", "beta"]' in methods
    assert set(re.findall(r'"(\w+)"', methods.split("],", 1)[1].split("]", 1)[0])) == set(GCE_METHODS)
    trigger = _resources("gcp")["google_eventarc_trigger"]["instance_event"]
    criteria = {c["attribute"]: c["value"] for c in trigger["matching_criteria"]}
    assert criteria == {"type": TRIGGER_EVENTS[("gcp", "audit_log")][1], "serviceName": "compute.googleapis.com",
                        "methodName": "${each.value.method}"}
    assert trigger["destination"][0]["cloud_run_service"][0]["service"] == \
        "${google_cloudfunctions2_function.this[each.value.function].service_config[0].service}"
    # AWS: the EventBridge rule's states are those the parser maps (pending is not a start yet)
    rule = _resources("aws")["aws_cloudwatch_event_rule"]["ec2_state"]
    pattern = rule["event_pattern"]
    assert "EC2 Instance State-change Notification" in pattern and '"aws.ec2"' in pattern
    states = re.search(r"state = \[([^\]]*)\]", pattern)
    assert states and set(re.findall(r'"([\w-]+)"', states.group(1))) == set(EC2_STATES)
    assert _resources("aws")["aws_cloudwatch_event_target"]["ec2_state"]["arn"] == \
        "${aws_lambda_function.this[each.key].arn}"
    # Azure: the subscription's ResourceActionSuccess, filtered to the VM operations the parser maps
    sub = _resources("azure")["azurerm_eventgrid_system_topic_event_subscription"]["instance_events"]
    assert sub["included_event_types"] == [TRIGGER_EVENTS[("azure", "resource_events")][1]]
    (string_in,) = sub["advanced_filter"][0]["string_in"]
    assert string_in["key"] == "data.operationName"
    prefix, suffix = "microsoft.compute/virtualmachines/", "/action"
    assert {v.lower().removeprefix(prefix).removesuffix(suffix) for v in string_in["values"]} == set(AZURE_OPERATIONS)
    assert sub["azure_function_endpoint"][0]["function_id"].endswith("/functions/${each.value.entry_point}")
    topic = _resources("azure")["azurerm_eventgrid_system_topic"]["subscription"]
    assert topic["topic_type"] == "Microsoft.Resources.Subscriptions"


def test_the_meter_ticks_on_its_schedule_and_runs_with_the_guardrail_s_reach() -> None:
    job = _resources("gcp")["google_cloud_scheduler_job"]["meter"]
    assert job["pubsub_target"][0]["topic_name"] == "${google_pubsub_topic.meter[0].id}"
    assert "var.meter.every_minutes" in job["schedule"]
    assert _locals("gcp")["topics"].count("google_pubsub_topic.meter[0].id") == 1
    deployed = _example_functions()
    assert deployed[("gcp", "meter")]["trigger"] == {"type": "pubsub", "topic": "meter"}
    # the functions that list and stop on the three clouds run as the identity the stop roles trust
    assert re.search(r'contains\(f\.grants, "stop_instances"\) \? "guardrail" : k', _locals("gcp")["identity"])
    function = _resources("gcp")["google_cloudfunctions2_function"]["this"]
    assert function["service_config"][0]["service_account_email"] == \
        "${google_service_account.function[local.identity[each.key]].email}"
    for stem in ("guardrail", "meter", "instance_event"):
        assert "stop_instances" in deployed[("gcp", stem)]["grants"], stem


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
        "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_TOPIC", "BURNGUARD_GCP_WIF_CONFIG", "BURNGUARD_DEAD_LETTER_URL"}
    assert environment_set_for("aws", {"grants": ["state"], "trigger": {"type": "function_url"}}) == {
        "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_STATE_BUCKET", "BURNGUARD_STATE_PREFIX"}
    assert environment_set_for("gcp", {"grants": ["dead_letter"], "trigger": {"type": "pubsub"}}) == {
        "BURNGUARD_POLICY", "BURNGUARD_LEDGER", "BURNGUARD_DEAD_LETTER_TOPIC", "BURNGUARD_MAX_DELIVERY_ATTEMPTS"}
    queue = environment_set_for("azure", {"grants": [], "trigger": {"type": "queue"}})
    assert "BURNGUARD_SLACK_DEFER_QUEUE" in queue and "BURNGUARD_DEAD_LETTER_CONTAINER" not in queue
    azure = environment_set_for("azure", {"grants": ["webhook_secret"], "trigger": {"type": "http"}})
    assert "BURNGUARD_WEBHOOK_SECRET_REF" in azure and "BURNGUARD_TOPIC" not in azure


_READ = re.compile(r'["%](BURNGUARD_[A-Z0-9_]+)["%]')


def _read_by(module: str) -> set[str]:
    return set(_READ.findall(Path(importlib.import_module(module).__file__ or "").read_text()))


@pytest.mark.parametrize("module", sorted(m for m in SETTINGS_MODULES if m not in PENDING_MODULES))
def test_settings_read_only_variables_the_tables_know(module: str) -> None:
    read = _read_by(module)
    known = {v for (cloud, _), names in READS.items() if cloud in SETTINGS_MODULES[module] for v in names}
    known |= set(LOCAL_ONLY) | set(NOT_SET_BY_TERRAFORM) | READ_FOR_THE_GUARDRAIL.get(module, set())
    assert read and read <= known, f"{module} reads {sorted(read - known)}: add them to READS and to the modules"


@pytest.mark.parametrize("file", sorted(ENTRY_FILES))
def test_entry_points_read_only_variables_the_tables_know(file: str) -> None:
    read = set(_READ.findall((ROOT / file).read_text()))
    known = {v for (cloud, _), names in READS.items() if cloud == ENTRY_FILES[file] for v in names}
    assert read <= known | set(NOT_SET_BY_TERRAFORM), f"{file} reads {sorted(read - known)}"


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_tables_name_only_variables_the_code_reads(cloud: str) -> None:
    read = set().union(*(_read_by(m) for m, clouds in SETTINGS_MODULES.items() if cloud in clouds))
    read |= set().union(*(set(_READ.findall((ROOT / f).read_text())) for f, c in ENTRY_FILES.items() if c == cloud))
    if cloud == "gcp":  # the guardrail builds the other clouds' controllers with their roots
        read |= set().union(*(_read_by(m) for m in READ_FOR_THE_GUARDRAIL))
    tabled = {v for (c, _), names in READS.items() if c == cloud for v in names}
    assert tabled <= read, f"READS names {sorted(tabled - read)} for {cloud}, which its code does not read"
    local_or_unset = set(LOCAL_ONLY) | set(NOT_SET_BY_TERRAFORM)
    assert not local_or_unset & tabled


@pytest.mark.parametrize("name", sorted(set(LOCAL_ONLY) | set(NOT_SET_BY_TERRAFORM)))
def test_variables_terraform_does_not_set_are_not_set_and_documented(name: str) -> None:
    for cloud in ("aws", "gcp", "azure"):
        assert name not in "".join(p.read_text() for p in (INFRA / "modules" / cloud).glob("*.tf")), (cloud, name)
    assert name in (ROOT / "functions" / "README.md").read_text() + (INFRA / "README.md").read_text(), \
        f"{name}: say in functions/README.md or infra/README.md why Terraform does not set it"


def test_guardrail_max_delivery_attempts_is_its_subscription_s() -> None:
    assert re.search(r"BURNGUARD_MAX_DELIVERY_ATTEMPTS *= *tostring\(f\.trigger\.max_delivery_attempts\)",
                     _locals("gcp")["environment"])
    push = _resources("gcp")["google_pubsub_subscription"]["push"]
    assert push["dead_letter_policy"][0]["max_delivery_attempts"] == "${each.value.trigger.max_delivery_attempts}"
    assert push["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert re.search(r"BURNGUARD_DEAD_LETTER_TOPIC *= *google_pubsub_topic\.dead_letter\.id", _locals("gcp")["environment"])
    member = _resources("gcp")["google_pubsub_topic_iam_member"]["dead_letter"]
    assert member["topic"] == "${google_pubsub_topic.dead_letter.name}" and member["role"] == "roles/pubsub.publisher"
    assert "dead_letter" in _example_functions()[("gcp", "guardrail")]["grants"]


def test_firestore_declares_the_audit_index_the_ledger_queries() -> None:
    source = (ROOT / "shared/burnguard/adapters/gcp/firestore.py").read_text()
    assert 'self._col("audit")' in source and '_f("guardrail", "==", guardrail)' in source
    assert 'order_by("seq", direction=firestore.Query.DESCENDING)' in source
    assert 'prefix: str = "burnguard_"' in source  # the module's default collection_prefix
    index = _resources("gcp")["google_firestore_index"]["audit_by_guardrail"]
    assert index["collection"] == "${var.ledger.collection_prefix}audit"
    assert [(f["field_path"], f["order"]) for f in index["fields"]] == [("guardrail", "ASCENDING"), ("seq", "DESCENDING")]


# --- permissions -----------------------------------------------------------------------------------

def _aws_stop_actions() -> set[str]:
    local = _locals("aws")
    actions = set(local["stop_statement_describe"]["Action"])
    actions |= set(re.findall(r'"(ec2:\w+)"', re.search(r"Action = \[[^\]]*\]", local["stop_statements_scoped"]).group(0)))
    return actions


def _aws_ingest_actions(service: str) -> set[str]:
    """What the example's ingest role may do on one service (s3, sqs)."""
    return {a for a in aws_role_actions(_example_functions()[("aws", "ingest")]) if a.startswith(f"{service}:")}


def _gcp_role_of(resource: str, name: str) -> str:
    return _resources("gcp")[resource][name]["role"]


GRANTED: dict[str, Any] = {
    "burnguard.adapters.gcp.pubsub": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_pubsub_topic_iam_member", "queue_publish")]),
    "burnguard.adapters.gcp.compute": lambda: ("exact", set(_resources("gcp")["google_project_iam_custom_role"]["instance_stop"]["permissions"])),
    "burnguard.adapters.gcp.gcs": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_storage_bucket_iam_member", "read_exports")]),
    "burnguard.adapters.gcp.firestore": lambda: ("role", PREDEFINED_ROLES[_gcp_role_of("google_project_iam_member", "ledger")]),
    "burnguard.adapters.aws.ec2": lambda: ("exact", _aws_stop_actions()),
    # S3Store (exports) and S3Markers (state bucket) are one module: the ingest role's S3 actions
    "burnguard.adapters.aws.s3": lambda: ("exact", _aws_ingest_actions("s3")),
    # dead letters and part jobs are sent; the parts queue's event source mapping also receives
    # and deletes with the role (burnguard.app.aws.INGEST_PERMISSIONS, checked below)
    "burnguard.adapters.aws.sqs": lambda: ("within", _aws_ingest_actions("sqs")),
    "burnguard.adapters.azure.vms": lambda: ("exact", set(_resources("azure")["azurerm_role_definition"]["vm_stop"]["permissions"][0]["actions"])),
    "burnguard.adapters.azure.blob": lambda: ("role", PREDEFINED_ROLES[_resources("azure")["azurerm_role_assignment"]["read_exports"]["role_definition_name"]]),
    "burnguard.adapters.azure.deferral": lambda: ("role", PREDEFINED_ROLES[_resources("azure")["azurerm_role_assignment"]["slack_defer_send"]["role_definition_name"]]),
    # dead-letter records go to the app's own host account, whose role the Functions host needs
    # anyway (Storage Blob Data Owner): no assignment of their own
    "burnguard.adapters.azure.deadletter": lambda: ("within", PREDEFINED_ROLES[_resources("azure")["azurerm_role_assignment"]["host_storage"]["role_definition_name"]]),
}


def _holds(granted: set[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action, g) for g in granted)


#: adapters no deployed function uses: what they call runs with an operator's own credentials
RUN_BY_OPERATORS = {
    "burnguard.adapters.aws.prices": "`burnguard prices refresh` reads the AWS Price List on an operator's machine",
    "burnguard.adapters.azure.prices": "`burnguard prices refresh` reads the public Azure Retail Prices API",
    "burnguard.adapters.gcp.prices": "`burnguard prices refresh` reads the Cloud Billing Catalog with an operator's "
                                     "Application Default Credentials",
}


def test_every_adapter_declaring_permissions_is_checked() -> None:
    adapters = ROOT / "shared" / "burnguard" / "adapters"
    declaring = {"burnguard." + ".".join(p.relative_to(adapters.parent).with_suffix("").parts)
                 for p in adapters.rglob("*.py") if re.search(r"^PERMISSIONS\b", p.read_text(), re.M)}
    assert declaring == set(GRANTED) | set(RUN_BY_OPERATORS), declaring ^ (set(GRANTED) | set(RUN_BY_OPERATORS))


@pytest.mark.parametrize("module", sorted(m for m in GRANTED if m not in PENDING_MODULES))
def test_permissions_granted_equal_the_adapter_s_declared_actions(module: str) -> None:
    declared = set(importlib.import_module(module).PERMISSIONS)
    kind, granted = GRANTED[module]()
    assert declared, f"{module}.PERMISSIONS is empty"
    if kind == "exact":
        assert granted == declared, f"{module}: granted {sorted(granted)} != declared {sorted(declared)}"
        return
    missing = sorted(a for a in declared if not _holds(granted, a))
    assert not missing, f"{module} declares {missing}, which its grant does not hold"
    if kind == "role":  # and the role is needed: no narrower predefined role holds what is declared
        narrower = [r for r, perms in PREDEFINED_ROLES.items() if declared <= perms < granted]
        assert not narrower, f"{module}: {narrower} would do"


@pytest.mark.parametrize(("stem", "declared"), [("ingest", "INGEST_PERMISSIONS"), ("budget", "BUDGET_PERMISSIONS"),
                                                ("instance_event", "INSTANCE_EVENT_PERMISSIONS")])
def test_aws_function_roles_equal_what_the_composition_root_declares(stem: str, declared: str) -> None:
    from burnguard.app import aws

    granted = aws_role_actions(_example_functions()[("aws", stem)]) - {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted == set(getattr(aws, declared)), f"{stem}: granted {sorted(granted)} != {declared}"


def test_the_granted_sets_are_read_from_the_modules() -> None:
    assert _aws_stop_actions() == {"ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:StopInstances",
                                   "ec2:StartInstances"}
    assert _aws_ingest_actions("s3") == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    assert aws_role_actions(_example_functions()[("aws", "budget")]) == {"logs:CreateLogStream", "logs:PutLogEvents",
                                                                        "sqs:SendMessage"}
    assert aws_role_actions({"grants": ["read_exports"], "trigger": {"type": "function_url"}}) == {
        "logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject"}
    assert GRANTED["burnguard.adapters.gcp.pubsub"]() == ("role", {"pubsub.topics.publish"})
    kind, azure = GRANTED["burnguard.adapters.azure.vms"]()
    assert kind == "exact" and "Microsoft.Compute/virtualMachines/deallocate/action" in azure
    assert not _holds({"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"},
                      "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write")
