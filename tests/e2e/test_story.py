"""One story through three clouds on one machine (issue #12): the serverless pipeline end to
end, as deployed, on the emulators and fakes of :mod:`tests.e2e.deployment`.

1. The AWS CUR lands in S3 → the AWS ingest Lambda → Pub/Sub → the guardrail function → the
   ledger: ml-research crosses 100% of its 5,000 USD month → its GPU machines stop in moto's
   EC2, in the Compute Engine fake and in the ARM fake (deallocated), the rest keep running →
   Slack (a local server, through slack-sdk) hears the spend, the stops, the saving, how to
   resume.
2. Two Azure export runs land in Azurite (the second restates the first): no second crossing.
3. Every event again, shuffled: nothing changes; the restated run counts alone.
4. A native budget notification from each cloud, re-sent: one alert each.
5. ``/burnguard spend`` answers with the files' totals; ``/burnguard resume`` starts the
   machines again for an authorized user, and is refused to anyone else.

Run it to watch: ``bash .ci/e2e`` (this test with its narration).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import functions_framework
import pytest
from azure.storage.blob import BlobServiceClient

from burnguard.adapters.azure import secrets as kv
from burnguard.adapters.gcp.deferral import PubSubDeferrer
from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.adapters.gcp.pubsub import PubSubPublisher
from burnguard.adapters.slack.notifier import SlackNotifier
from burnguard.adapters.slack.respond import WebhookResponder
from burnguard.app import aws as aws_app
from burnguard.app import azure as azure_app
from burnguard.app import gcp as gcp_app
from burnguard.app import slack as bootstrap
from tests.adapters.azure.events import event_json, host_event
from tests.e2e.deployment import (
    ADMIN,
    AWS_EXPORTS,
    AZURE_CONTAINER,
    BUDGETS,
    CUR_BUCKET,
    GCP_PROJECT,
    NATIVE,
    NOW,
    POLICY,
    ROLE_ARN,
    STRANGER,
    UNTAGGED,
    WEBHOOK_SECRET,
    Bridge,
    Topics,
    aws_team_total,
    azure_runs,
    azure_team_total,
    ec2_states,
    id_token_stand_in,
    inventory,
    iter_slack_posts,
    launch_ec2,
    money,
    push_envelope,
    say,
    settle,
)
from tests.emulators import http_server
from tests.fakes.arm import ArmState, FakeVm, _Bearer, _Token
from tests.fakes.arm import handler_for as arm_handler
from tests.fakes.compute import FakeCompute, compute_clients, vm
from tests.fakes.compute import handler_for as compute_handler
from tests.functions.aws_helpers import LambdaContext, s3_notification
from tests.functions.slash_events import FUNCTIONS, load, use_service
from tests.functions.test_gcp_guardrail import post_cloudevent
from tests.slack_helpers import NOW_TS, SECRET, FakeSlack, form, signed_headers

pytestmark = pytest.mark.emulator

GCP_SOURCE = str(FUNCTIONS / "gcp" / "main.py")
REGIONS = ["us-east-1", "us-west-2"]
AZURE_SUBSCRIPTIONS = "5f1c3a7e-2b4d-4c6e-8f0a-1b3d5e7f9a2c,9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ML_GPUS = {"aws": {"trainer-p4d-1", "notebook-g5-1"}, "gcp": {"trainer-a100-1", "nb-t4-1"},
           "azure": {"trainer-a100-az"}}


def ledger_url(firestore: Any) -> str:
    """The control plane's ledger, as deployed: Firestore (its emulator)."""
    return f"firestore://projects/{firestore.project}/databases/(default)?prefix=e2e_"


class Deployment:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, emulators: tuple[Any, Any, Any],
                 slack: FakeSlack, compute_url: str, arm_url: str):
        pubsub, firestore, azure_storage = emulators
        self.tmp, self.monkeypatch, self.slack = tmp, monkeypatch, slack
        (tmp / "policy.yaml").write_text(POLICY)
        self.topics = Topics(pubsub.project)
        self.ledger_url = ledger_url(firestore)
        self.env = {"BURNGUARD_POLICY": str(tmp / "policy.yaml"), "BURNGUARD_LEDGER": self.ledger_url,
                    "BURNGUARD_GCP_PROJECTS": GCP_PROJECT, "BURNGUARD_AWS_ROLE_ARN": ROLE_ARN,
                    "BURNGUARD_AWS_REGIONS": ",".join(REGIONS), "BURNGUARD_AZURE_TENANT_ID": "e2e-tenant",
                    "BURNGUARD_AZURE_CLIENT_ID": "e2e-client", "BURNGUARD_AZURE_SCOPES": AZURE_SUBSCRIPTIONS,
                    "BURNGUARD_DEAD_LETTER_TOPIC": self.topics.dead,
                    "BURNGUARD_SLACK_SIGNING_SECRET_REF": "projects/acme/secrets/slack-signing",
                    "BURNGUARD_SLACK_DEFER_TOPIC": self.topics.defer}
        instances, operations = compute_clients(compute_url)
        self.controller_options: dict[str, Any] = {
            "compute_clients": instances, "compute_operations": operations, "id_token": id_token_stand_in,
            "azure_credential": _Token(), "azure_options": {"base_url": arm_url, "authentication_policy": _Bearer(),
                                                            "polling_interval": 0, "retry_total": 3}}
        self.ledger = bootstrap.open_ledger(self.ledger_url)
        assert isinstance(self.ledger, FirestoreLedger)
        # the guardrail function (Google Cloud), its controllers built from its environment
        from slack_sdk import WebClient

        notifier = SlackNotifier(WebClient(token="xoxb-stand-in", base_url=f"{slack.url}/api/"))
        controllers = gcp_app.cloud_controllers(self.env, **self.controller_options)
        assert set(controllers) == {"gcp", "aws", "azure"}
        consumer = gcp_app.build_guardrail(self.env, ledger=self.ledger, controllers=controllers, notifier=notifier,
                                           dead_letter=PubSubPublisher(self.topics.publisher, self.topics.dead),
                                           clock=lambda: NOW)
        monkeypatch.setattr(gcp_app, "guardrail_runtime", lambda: consumer)
        guardrail = functions_framework.create_app(target="guardrail", source=GCP_SOURCE,
                                                   signature_type="cloudevent").test_client()
        self.bridge = Bridge(lambda body: post_cloudevent(guardrail, body, self.topics.shared).status_code)
        # the ingest and budget functions of the three clouds publish to the shared topic
        for name, value in {"BURNGUARD_TOPIC": self.topics.shared, azure_app.EXPORT_STORAGE:
                            azure_storage.connection_string, azure_app.WEBHOOK_SECRET_REF:
                            "https://burnguard-kv.vault.azure.net/secrets/budget-webhook"}.items():
            monkeypatch.setenv(name, value)
        for name in ("BURNGUARD_GCP_WIF_CONFIG", azure_app.WEBHOOK_AUTH):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(kv, "azure_secret", lambda ref, client=None: WEBHOOK_SECRET)  # Key Vault STAND-IN
        for cached in (aws_app.ingest_app, aws_app.budget_app, azure_app.ingest_endpoint, azure_app.budget_endpoint,
                       gcp_app.budget_runtime):
            cached.cache_clear()
        self.aws_ingest = load("aws", "ingest.py").lambda_handler
        self.aws_budget = load("aws", "budget.py").lambda_handler
        azure_functions = load("azure", "function_app.py")
        self.azure_ingest = azure_functions.ingest.build().get_user_function()
        self.azure_budget = azure_functions.budget.build().get_user_function()
        self.gcp_budget = functions_framework.create_app(target="budget", source=GCP_SOURCE,
                                                         signature_type="cloudevent").test_client()
        self.s3 = boto3.client("s3")
        self.s3.create_bucket(Bucket=CUR_BUCKET)
        self.blobs = BlobServiceClient.from_connection_string(azure_storage.connection_string)
        self.blobs.create_container(AZURE_CONTAINER)
        self.blob_endpoint = azure_storage.blob_endpoint
        self.events: list[tuple[str, Any]] = []  # every storage event fired, to replay in step 3

    # -- the clouds' storage events
    def land_cur(self) -> None:
        root = AWS_EXPORTS / CUR_BUCKET
        files = sorted(p for p in root.rglob("*") if p.is_file())
        data = [p for p in files if not p.name.endswith("Manifest.json")]
        for path in [*data, *[p for p in files if p not in data]]:  # data first, then both manifests
            key = str(path.relative_to(root))
            self.s3.put_object(Bucket=CUR_BUCKET, Key=key, Body=path.read_bytes())
            event = s3_notification(CUR_BUCKET, key, path.stat().st_size)
            self.events.append(("aws", event))
            self.aws_ingest(event, LambdaContext())

    def land_azure_run(self, folder: Path) -> None:
        root = folder.parents[3]  # events/exports/azure/<container>/cost-management/<export>/<period>/<run>
        files = sorted(folder.iterdir(), key=lambda p: p.name == "manifest.json")  # manifest last
        for path in files:
            key = str(path.relative_to(root))
            self.blobs.get_blob_client(AZURE_CONTAINER, key).upload_blob(path.read_bytes(), overwrite=True)
            event = event_json("eventgrid", self.blob_endpoint, AZURE_CONTAINER, key, path.stat().st_size,
                               n=len(self.events))
            self.events.append(("azure", event))
            self.azure_ingest(host_event(event))

    def replay(self, events: list[tuple[str, Any]]) -> None:
        for cloud, event in events:
            if cloud == "aws":
                self.aws_ingest(event, LambdaContext())
            else:
                self.azure_ingest(host_event(event))

    # -- native budget notifications
    def native_budget(self, cloud: str) -> None:
        body = (BUDGETS / NATIVE[cloud][0]).read_bytes()
        if cloud == "aws":
            self.aws_budget(json.loads(body), LambdaContext(function_name="burnguard-budget"))
        elif cloud == "gcp":
            response = self.gcp_budget.post("/", data=body, headers={"Content-Type": "application/cloudevents+json"})
            assert response.status_code == 200, response.get_data(as_text=True)
        else:
            import azure.functions as func

            response = self.azure_budget(func.HttpRequest(
                method="POST", url="https://burnguard.azurewebsites.net/api/budget",
                headers={"Content-Type": "application/json"}, params={"token": WEBHOOK_SECRET}, body=body))
            assert response.status_code == 200, response.get_body()

    def posts(self) -> list[dict[str, Any]]:
        return list(iter_slack_posts(self.slack.requests))

    # -- the slash command and its deferred completion (Google Cloud functions)
    def slash(self, text: str, user: str) -> dict[str, Any]:
        settings = bootstrap.SlashSettings.from_env("gcp", self.env)
        service = bootstrap.build_slash_service(
            settings, secret=lambda cloud, ref: SECRET, clock=lambda: NOW_TS,  # Secret Manager STAND-IN
            guardrails=gcp_app.resume_guardrails(self.env, **self.controller_options),
            responder=WebhookResponder(allowed_prefixes=(self.slack.url,)),
            deferrer=PubSubDeferrer(self.topics.publisher, self.topics.defer))
        use_service(self.monkeypatch, "gcp", service)
        client = functions_framework.create_app(target="slack_command", source=GCP_SOURCE,
                                                signature_type="http").test_client()
        body = form(text, user, response_url=f"{self.slack.url}/response/{len(self.slack.requests)}")
        response = client.post("/", data=body, headers=signed_headers(body))
        assert response.status_code == 200, response.get_data(as_text=True)
        deferred = functions_framework.create_app(target="slack_deferred", source=GCP_SOURCE,
                                                  signature_type="cloudevent").test_client()
        deferred_messages = self.topics.pull(self.topics.defer_sub, timeout=0.5)
        for _ in range(10 if "resume" in text and user == ADMIN else 0):  # a resume is completed later
            deferred_messages = deferred_messages or self.topics.pull(self.topics.defer_sub, timeout=2.0)
        for message in deferred_messages:
            assert post_cloudevent(deferred, push_envelope(message, self.topics.defer_sub),
                                   self.topics.defer).status_code == 200
        answer: dict[str, Any] = response.get_json()
        return answer


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: Any, pubsub: Any, firestore: Any,
               azure_storage: Any) -> Iterator[tuple[Deployment, FakeCompute, ArmState, dict[str, Any]]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    launched = launch_ec2(REGIONS)
    gce = FakeCompute()
    for inst in inventory("gcp"):
        gce.add(vm(GCP_PROJECT, inst["location"], inst["name"], inst["type"], inst["tags"],
                   accelerators=[(a, 1) for a in inst.get("accelerators", [])]))
    arm = ArmState([FakeVm(i["id"].split("/")[2], i["location"], i["name"], i["type"],
                           "running" if i["state"] == "running" else "deallocated", i["tags"])
                    for i in inventory("azure")])
    with FakeSlack() as slack, http_server(compute_handler(gce)) as compute_url, \
            http_server(arm_handler(arm)) as arm_url:
        d = Deployment(tmp_path, monkeypatch, (pubsub, firestore, azure_storage), slack, compute_url, arm_url)
        with http_server(d.bridge.handler()) as bridge_url:
            d.topics.push_to(bridge_url + "/push")
            yield d, gce, arm, launched
        d.topics.close()
    for cached in (aws_app.ingest_app, aws_app.budget_app, azure_app.ingest_endpoint, azure_app.budget_endpoint,
                   gcp_app.budget_runtime):
        cached.cache_clear()


def machine_states(gce: FakeCompute, arm: ArmState, launched: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {"aws": ec2_states(launched),
            "gcp": {name: inst["status"] for (_p, _z, name), inst in gce.instances.items()},
            "azure": {v.name: v.power for v in arm.vms}}


def stop_calls(gce: FakeCompute, arm: ArmState) -> tuple[int, int]:
    with gce.lock:
        gce_stops = sum(1 for m, p in gce.requests if m == "POST" and p.split("?")[0].endswith("/stop"))
    with arm.lock:
        arm_stops = sum(1 for a, _ in arm.actions if a == "deallocate")
    return gce_stops, arm_stops


def list_price_of(machines: dict[str, set[str]]) -> Decimal:
    """The list price per hour of the named sample machines, read from the raw price table."""
    root = Path(__file__).parents[2]
    table = json.loads((root / "shared" / "burnguard" / "data" / "gpu_prices.json").read_text())["prices"]
    types = {(i["cloud"], i["type"].casefold()) for i in json.loads((root / "events" / "inventory.json").read_text())[
        "instances"] if i["name"] in machines.get(i["cloud"], set())}
    prices = {(p["cloud"], p["instance_type"].casefold()): Decimal(p["hourly"]) for p in table}  # one region each here
    return sum((prices[t] for t in types if t in prices), Decimal(0))


STOPPED = {"aws": {"stopped", "stopping"}, "gcp": {"TERMINATED"}, "azure": {"deallocated"}}
RUNNING = {"aws": {"running", "pending"}, "gcp": {"RUNNING"}, "azure": {"running"}}


World = tuple[Deployment, FakeCompute, ArmState, dict[str, Any]]


def test_one_story_through_three_clouds(deployment: World) -> None:
    ml_aws = aws_team_total("ml-research")
    step_1_the_cur_lands_and_the_gpus_stop(deployment, ml_aws)
    runs = step_2_azure_runs_land_and_nothing_is_announced_twice(deployment)
    step_3_every_event_again_shuffled_changes_nothing(deployment)
    step_4_native_budget_notifications_alert_once_each(deployment)
    step_5_slash_spend_and_resume(deployment, ml_aws, runs)


def step_1_the_cur_lands_and_the_gpus_stop(world: World, ml_aws: Decimal) -> None:
    d, gce, arm, launched = world
    before = machine_states(gce, arm, launched)
    say("\n1. The AWS CUR delivery lands in S3 (moto) -> ingest Lambda -> Pub/Sub -> guardrail function")
    d.land_cur()
    settle(d.topics, d.bridge)
    after = machine_states(gce, arm, launched)
    for cloud, names in ML_GPUS.items():
        for name, state in after[cloud].items():
            want = STOPPED[cloud] if name in names else {before[cloud][name]}
            assert state in want, f"{cloud} {name}: {state}, expected {want}"
    say(f"   ml-research on AWS: {money(ml_aws)} of 5,000.00 USD (from the CUR files)")
    say("   stopped: " + ", ".join(f"{c}:{n}" for c, ns in ML_GPUS.items() for n in sorted(ns)))
    say(f"   still running: untagged {', '.join(UNTAGGED.values())}, protected eval-p5-1 and eval-l4-1, "
        "non-GPU features-m5-1, other teams' machines")
    crossings = [p for p in d.posts() if "crossed 100%" in p.get("text", "")]
    assert len(crossings) == 1, [p.get("text") for p in d.posts()]
    alert = json.dumps(crossings[0])
    assert f"Spend {money(ml_aws)} of 5,000.00 USD" in alert and "/burnguard resume ml-research-monthly" in alert
    # The clouds' APIs give no price: the stopped machines are priced at the shipped list price
    # (oracle: the raw price table and the inventory; n1-standard-8 with a T4 has no entry there).
    assert f"Estimated saving: {money(list_price_of(ML_GPUS))}/h (on-demand prices)" in alert
    for names in ML_GPUS.values():
        for name in names:
            assert name in alert
    say("   Slack (local server, via slack-sdk) got:\n     " + crossings[0]["text"].replace("\n", "\n     "))
    assert stop_calls(gce, arm) == (2, 1)


def crossings_announced(d: Deployment) -> int:
    return len([p for p in d.posts() if "crossed 100%" in p.get("text", "")])


def step_2_azure_runs_land_and_nothing_is_announced_twice(world: World) -> list[Path]:
    d = world[0]
    say("\n2. Two Azure export runs land in Azurite (the second restates the first) -> ingest function")
    runs = list(azure_runs().values())
    for run in runs:
        d.land_azure_run(run)
    settle(d.topics, d.bridge)
    assert crossings_announced(d) == 1, "announced twice"
    say("   no second announcement of the 100% crossing")
    return runs


def step_3_every_event_again_shuffled_changes_nothing(world: World) -> None:
    d, gce, arm, launched = world
    say("\n3. Every storage event again, shuffled")
    posts_before, states_before, stops_before = len(d.posts()), machine_states(gce, arm, launched), stop_calls(gce, arm)
    replay = list(d.events)
    random.Random(12).shuffle(replay)
    d.replay(replay)
    settle(d.topics, d.bridge)
    assert len(d.posts()) == posts_before and machine_states(gce, arm, launched) == states_before
    assert stop_calls(gce, arm) == stops_before
    say(f"   {len(replay)} events replayed: no new message, no new stop")


def step_4_native_budget_notifications_alert_once_each(world: World) -> None:
    d = world[0]
    say("\n4. A native budget notification from each cloud, each sent three times")
    posts_before = len(d.posts())
    for cloud in ("aws", "gcp", "azure", "aws", "gcp", "azure", "azure", "gcp", "aws"):
        d.native_budget(cloud)
    settle(d.topics, d.bridge)
    new = d.posts()[posts_before:]
    for cloud, (_file, budget) in NATIVE.items():
        about = [p for p in new if budget in json.dumps(p)]
        assert len(about) == 1, f"{cloud} budget {budget!r}: {len(about)} alerts"
    assert len(new) == 3
    say("   one alert each: " + "; ".join(p["text"].splitlines()[0] for p in new))


def step_5_slash_spend_and_resume(world: World, ml_aws: Decimal, runs: list[Path]) -> None:
    d, gce, arm, launched = world
    say("\n5. /burnguard spend and resume through the slash function")
    ml_azure = azure_team_total(runs[-1], "ml-research")  # the restatement alone
    answer = d.slash("spend team=ml-research 2024-09", ADMIN)
    assert f"total {money(ml_aws + ml_azure)}" in answer["text"], answer["text"]
    both = ml_aws + sum(azure_team_total(r, "ml-research") for r in runs)
    assert f"total {money(both)}" not in answer["text"]  # the first run is replaced by the restatement, not added
    total_line = next(line for line in answer["text"].splitlines() if "total" in line)
    say(f"   spend: {total_line.strip()}  (files: {money(ml_aws + ml_azure)})")
    refused = d.slash("resume ml-research-monthly", STRANGER)
    assert refused["text"].startswith("You are not allowed to resume ml-research-monthly"), refused
    assert all(s in STOPPED["aws"] for n, s in ec2_states(launched).items() if n in ML_GPUS["aws"])
    say(f"   resume by {STRANGER}: {refused['text'].splitlines()[0]}")
    d.slash("resume ml-research-monthly", ADMIN)
    resumed = machine_states(gce, arm, launched)
    for cloud, names in ML_GPUS.items():
        for name in names:
            assert resumed[cloud][name] in RUNNING[cloud], f"{cloud} {name} not started: {resumed[cloud][name]}"
    say(f"   resume by {ADMIN}: every stopped machine runs again")
    dead = d.topics.pull(d.topics.dead_tap, timeout=0.5)
    assert dead == [], [m.attributes for m in dead]
