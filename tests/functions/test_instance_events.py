"""Instance state changes from AWS and Azure reach the meter through the shared queue.

* AWS: the ``instance_event`` Lambda gets the EventBridge ``EC2 Instance State-change
  Notification`` (the AWS docs' sample of ``events/aws``, and events derived from it) and
  publishes a ``state-change`` message on the Pub/Sub emulator; the ``guardrail`` function
  (functions-framework's test client) hands it to its meter, over EC2 on moto's server.
* Azure: the ``instance_event`` function (azure-functions objects: a real ``func.EventGridEvent``)
  publishes the VM's start or stop on the Pub/Sub emulator.

The ledger is the Firestore emulator's (``ledger_url`` of ``test_gcp_meter``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import azure.functions as func
import boto3
import pytest

from burnguard.adapters.gcp.pubsub import PubSubPublisher
from burnguard.app import aws as aws_app
from burnguard.app import azure as azure_app
from burnguard.app import gcp
from burnguard.app.config import open_ledger
from burnguard.core.messages import STATE_CHANGE, Message, decode_state_change
from burnguard.core.state_events import StateChange
from tests.adapters.meter_clouds import launch_ec2
from tests.functions.aws_helpers import LambdaContext, Topic
from tests.functions.slash_events import load
from tests.functions.test_gcp_guardrail import Notes, function_client, post_cloudevent, push_envelope
from tests.functions.test_gcp_meter import ROLE, client, ledger_url, list_price, scheduler_tick  # noqa: F401

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "aws" / "instance-event.ec2-state-change.pending.json"
lambda_handler = load("aws", "instance_event.py").lambda_handler
azure_functions = load("azure", "function_app.py")
POLICY = """
version: 1
slack: {channel: "#gpu"}
guardrails:
  - {name: ml, scope: team=ml-research, budget: 100000 USD, thresholds: [{at: 100%, actions: [notify]}]}
"""


def ec2_event(instance_id: str, state: str, at: datetime) -> dict[str, Any]:
    """The documented sample with another instance, state and time."""
    event = json.loads(SAMPLE.read_text())
    event["detail"] = {"instance-id": instance_id, "state": state}
    event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


@pytest.fixture
def queue(pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    topic = Topic(pubsub.project)
    monkeypatch.setenv("BURNGUARD_TOPIC", topic.path)
    aws_app.instance_event_app.cache_clear()
    azure_app.instance_event_endpoint.cache_clear()
    yield topic
    aws_app.instance_event_app.cache_clear()
    azure_app.instance_event_endpoint.cache_clear()
    topic.close()


def test_ec2_starts_and_stops_reach_the_meter_through_the_queue(
        aws: Any, queue: Topic, pubsub: Any, tmp_path: Path, ledger_url: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="burnguard-instance-event-dlq")["QueueUrl"]
    monkeypatch.setenv("BURNGUARD_DEAD_LETTER_URL", dlq)
    context = LambdaContext(function_name="burnguard-instance-event")

    # the documented sample is a `pending`: no start yet, ignored (the drain below finds only the start)
    assert lambda_handler(json.loads(SAMPLE.read_text()), context)["action"] == "ignored"

    (instance,) = launch_ec2(1, "g5.xlarge", {"team": "ml-research"})
    ec2 = boto3.client("ec2", region_name="us-east-1")
    launched = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["LaunchTime"]
    launched = launched.astimezone(UTC)
    assert lambda_handler(ec2_event(instance, "running", launched), context)["action"] == "published"
    (started,) = queue.drain(expect=1)
    assert started.kind == STATE_CHANGE
    assert decode_state_change(started) == StateChange("aws", instance, "running", launched.replace(microsecond=0))

    # the guardrail function hands it to its meter (EC2 reached with a stand-in ID token)
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"BURNGUARD_POLICY": str(tmp_path / "policy.yaml"), "BURNGUARD_LEDGER": ledger_url,
           "BURNGUARD_AWS_ROLE_ARN": ROLE, "BURNGUARD_AWS_REGIONS": "us-east-1"}
    controllers = gcp.cloud_controllers(env, id_token=lambda audience: "stand-in")
    dead = Topic(pubsub.project)
    clock = [launched + timedelta(hours=1)]
    consumer = gcp.build_guardrail(env, controllers=controllers, notifier=Notes(),
                                   dead_letter=PubSubPublisher(dead.publisher, dead.path), clock=lambda: clock[0])
    monkeypatch.setattr(gcp, "guardrail_runtime", lambda: consumer)
    guardrail = function_client()
    assert post_cloudevent(guardrail, push_envelope(started)).status_code == 200

    # stopped an hour later: the stop event ends the accrual at its time
    ec2.stop_instances(InstanceIds=[instance])
    stopped_at = launched.replace(microsecond=0) + timedelta(hours=2)
    assert lambda_handler(ec2_event(instance, "stopped", stopped_at), context)["action"] == "published"
    (stopped,) = queue.drain(expect=1)
    clock[0] = stopped_at + timedelta(minutes=5)
    assert post_cloudevent(guardrail, push_envelope(stopped)).status_code == 200

    # the scheduled tick, hours later, adds nothing to a stopped instance
    now = stopped_at + timedelta(hours=3)
    meter = gcp.build_meter(env, controllers=controllers, notifier=Notes(), clock=lambda: now)
    monkeypatch.setattr(gcp, "meter_runtime", lambda: meter)
    assert scheduler_tick(client("meter")).status_code == 200
    ledger = open_ledger(ledger_url)
    (row,) = ledger.estimates()
    hours = Decimal(int((stopped_at - launched).total_seconds())) / 3600  # launch to the stop event
    assert row.instance_id == instance and row.amount == list_price("aws", "g5.xlarge") * hours
    ledger.close()

    # a malformed state-change message is dead-lettered with its reason (field named)
    bad = Message({**started.attributes, "message_id": "bad-1"},
                  json.dumps({"cloud": "aws", "instance_id": instance, "state": "paused",
                              "at": "2026-12-04T18:00:00Z"}).encode())
    assert post_cloudevent(guardrail, push_envelope(bad)).status_code == 200
    (buried,) = dead.drain(expect=1)
    assert buried.message_id == "bad-1" and "state" in buried.attributes["reason"]
    # a malformed EventBridge event: dead-lettered (SQS) with its reason, nothing published
    broken = ec2_event(instance, "running", launched)
    del broken["detail"]["instance-id"]
    assert lambda_handler(broken, context)["action"] == "dead-lettered"
    (body,) = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=dlq).get("Messages", [])]
    assert "detail.instance-id" in body["reason"] and body["function"] == "instance_event"
    assert queue.drain() == []  # nor the pending sample, nor the broken event: nothing more
    dead.close()


VM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/gpu/providers/Microsoft.Compute/virtualMachines/nd-1"


def grid_event(operation: str, at: datetime, *, event_type: str = "Microsoft.Resources.ResourceActionSuccess",
               subject: str = VM) -> func.EventGridEvent:
    """An Event Grid resource event of the subscription (the documented data fields)."""
    return func.EventGridEvent(
        id="4f1c" + operation[-12:], topic="/subscriptions/00000000-0000-0000-0000-000000000001", subject=subject,
        event_type=event_type, event_time=at, data_version="2",
        data={"operationName": operation, "status": "Succeeded", "resourceProvider": operation.split("/", maxsplit=1)[0],
              "resourceUri": subject, "subscriptionId": "00000000-0000-0000-0000-000000000001"})


def test_azure_vm_starts_and_deallocations_are_published_and_other_events_ignored(queue: Topic) -> None:
    instance_event = azure_functions.instance_event.build().get_user_function()
    at = datetime(2026, 12, 4, 20, 15, 0, 123456, tzinfo=UTC)
    instance_event(grid_event("Microsoft.Compute/virtualMachines/deallocate/action", at))
    instance_event(grid_event("Microsoft.Compute/virtualMachines/start/action", at + timedelta(hours=1)))
    # not VM starts or stops: ignored
    instance_event(grid_event("Microsoft.Storage/storageAccounts/listKeys/action", at,
                              subject="/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/gpu/"
                                      "providers/Microsoft.Storage/storageAccounts/acme"))
    instance_event(grid_event("Microsoft.Compute/virtualMachines/write", at,
                              event_type="Microsoft.Resources.ResourceWriteSuccess"))
    got = [decode_state_change(m) for m in queue.drain(expect=2)]
    assert sorted(got, key=lambda c: c.at) == [StateChange("azure", VM, "stopped", at),
                                               StateChange("azure", VM, "running", at + timedelta(hours=1))]
    assert queue.drain() == []  # the two others were not published
