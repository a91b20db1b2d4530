"""Smoke tests of the emulator harness (tests/emulators.py): each fixture serves the real client
library, state resets between tests where the emulator allows it, and stopping kills the whole
process group."""

from __future__ import annotations

import base64
import json
import queue
import sys
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.emulators import (
    Azurite,
    EmulatorError,
    FirestoreEmulator,
    GcsEmulator,
    MotoServer,
    PubSubEmulator,
    QuietHandler,
    free_port,
    http_server,
    pid_alive,
    start_gcs_emulator,
    start_process,
    stop_process,
    tcp_open,
)

pytestmark = pytest.mark.emulator

GPU_TYPES = ["g5.xlarge", "g6.xlarge", "p4d.24xlarge", "p5.48xlarge"]
AMI = "ami-12c6146b"  # one of moto's built-in images (describe_images is slow; do not look it up)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -------------------------------------------------------------------------------------- moto


def test_moto_s3_put_get(aws: MotoServer) -> None:
    s3 = boto3.client("s3")  # endpoint, region and keys all come from the environment
    assert s3.meta.endpoint_url == aws.endpoint_url
    s3.create_bucket(Bucket="cur-exports")
    s3.put_object(Bucket="cur-exports", Key="2026/12/part-0.csv.gz", Body=b"payload")
    assert s3.get_object(Bucket="cur-exports", Key="2026/12/part-0.csv.gz")["Body"].read() == b"payload"


def test_moto_state_is_reset_between_tests(aws: MotoServer) -> None:
    # The previous test's bucket is gone: the aws fixture reset moto.
    s3 = boto3.client("s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
    s3.create_bucket(Bucket="leftover")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_moto_ec2_gpu_instances(aws: MotoServer) -> None:
    ec2 = boto3.client("ec2")
    ids = []
    for instance_type in GPU_TYPES:
        reservation = ec2.run_instances(
            ImageId=AMI,
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ml"}]}],
        )
        ids.append(reservation["Instances"][0]["InstanceId"])
    found = ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["ml"]}])
    by_id = {i["InstanceId"]: i["InstanceType"] for r in found["Reservations"] for i in r["Instances"]}
    assert by_id == dict(zip(ids, GPU_TYPES, strict=True))
    # The server runs with instance-type validation, as AWS does.
    with pytest.raises(ClientError, match="InvalidInstanceType"):
        ec2.run_instances(ImageId=AMI, InstanceType="bogus.xlarge", MinCount=1, MaxCount=1)


# ----------------------------------------------------------------------------------- Pub/Sub


def test_pubsub_publish_pull(pubsub: PubSubEmulator) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(pubsub.project, unique("budget-alerts"))
    subscription = subscriber.subscription_path(pubsub.project, unique("guardrail"))
    try:
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=subscription, topic=topic)
        message_id = publisher.publish(topic, b'{"costAmount": 120.5}', budgetId="b-1").result(timeout=30)

        received: list[Any] = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            received = list(subscriber.pull(subscription=subscription, max_messages=10, timeout=10).received_messages)
        assert [m.message.message_id for m in received] == [message_id]
        assert received[0].message.data == b'{"costAmount": 120.5}'
        assert received[0].message.attributes["budgetId"] == "b-1"
        subscriber.acknowledge(subscription=subscription, ack_ids=[received[0].ack_id])
    finally:
        subscriber.close()


def test_pubsub_push_reaches_an_http_server(pubsub: PubSubEmulator) -> None:
    from google.cloud import pubsub_v1

    pushed: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()

    class Endpoint(QuietHandler):
        def do_POST(self) -> None:
            pushed.put((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    with http_server(Endpoint) as base_url:
        topic = publisher.topic_path(pubsub.project, unique("billing"))
        subscription = subscriber.subscription_path(pubsub.project, unique("push"))
        publisher.create_topic(name=topic)
        subscriber.create_subscription(
            request={"name": subscription, "topic": topic, "push_config": {"push_endpoint": f"{base_url}/pubsub"}}
        )
        publisher.publish(topic, b"hello", kind="export").result(timeout=30)
        path, envelope = pushed.get(timeout=30)
        subscriber.delete_subscription(subscription=subscription)  # stop redelivery before the server goes
    subscriber.close()
    assert path == "/pubsub"
    assert envelope["subscription"] == subscription
    message = envelope["message"]
    assert isinstance(message, dict)
    assert base64.b64decode(message["data"]) == b"hello"
    assert message["attributes"] == {"kind": "export"}


# --------------------------------------------------------------------------------- Firestore


def test_firestore_write_read_query(firestore: FirestoreEmulator) -> None:
    from google.cloud import firestore as fs

    db = fs.Client(project=firestore.project)
    ledger = db.collection("ledger")
    ledger.document("aws-2026-12").set({"cloud": "aws", "spend": 410.0})
    ledger.document("gcp-2026-12").set({"cloud": "gcp", "spend": 95.5})

    assert ledger.document("aws-2026-12").get().to_dict() == {"cloud": "aws", "spend": 410.0}
    over = [d.id for d in ledger.where(filter=fs.FieldFilter("spend", ">", 100)).stream()]
    assert over == ["aws-2026-12"]


def test_firestore_is_wiped_between_tests(firestore: FirestoreEmulator) -> None:
    from google.cloud import firestore as fs

    db = fs.Client(project=firestore.project)
    ledger = db.collection("ledger")
    assert list(ledger.stream()) == []  # the previous test's documents are gone
    ledger.document("x").set({"n": 1})
    firestore.wipe()
    assert not ledger.document("x").get().exists


# ----------------------------------------------------------------------------------- Azurite


def test_azurite_blob_upload_download_list(azure_storage: Azurite) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azure_storage.connection_string)
    container = service.create_container(unique("exports"))
    container.upload_blob("cost/2026-12/part-0.csv", b"a,b\n1,2\n")
    container.upload_blob("cost/2026-12/part-1.csv", b"a,b\n3,4\n")
    container.upload_blob("other/readme.txt", b"x")

    assert container.download_blob("cost/2026-12/part-0.csv").readall() == b"a,b\n1,2\n"
    names = [b.name for b in container.list_blobs(name_starts_with="cost/")]
    assert names == ["cost/2026-12/part-0.csv", "cost/2026-12/part-1.csv"]


def test_azurite_queue_send_receive(azure_storage: Azurite) -> None:
    from azure.storage.queue import QueueClient

    queue = QueueClient.from_connection_string(azure_storage.connection_string, unique("alerts"))
    queue.create_queue()
    queue.send_message('{"budget": "ml", "percent": 90}')
    messages = list(queue.receive_messages(max_messages=5))
    assert [m.content for m in messages] == ['{"budget": "ml", "percent": 90}']
    queue.delete_message(messages[0])
    assert queue.get_queue_properties().approximate_message_count == 0


# ------------------------------------------------------------------------------ GCS emulator


def test_gcs_upload_download_list(gcs: GcsEmulator) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=gcs.project, credentials=AnonymousCredentials())
    bucket = client.create_bucket("billing-export")
    bucket.blob("2026/12/export.jsonl").upload_from_string(b'{"cost": 1}\n')
    assert bucket.blob("2026/12/export.jsonl").download_as_bytes() == b'{"cost": 1}\n'
    assert [b.name for b in client.list_blobs("billing-export", prefix="2026/")] == ["2026/12/export.jsonl"]
    gcs.wipe()
    assert list(client.list_buckets()) == []


# ------------------------------------------------------------------------------- HTTP server


class _Echo(QuietHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        payload = json.dumps({"path": self.path, "got": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_http_server_serves_and_stops() -> None:
    handler: type[BaseHTTPRequestHandler] = _Echo
    with http_server(handler) as base_url:
        request = urllib.request.Request(
            f"{base_url}/api/chat.postMessage", data=b'{"channel": "C1"}', headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"path": "/api/chat.postMessage", "got": {"channel": "C1"}}
        port = int(base_url.rsplit(":", 1)[1])
    assert not tcp_open(port)


# ---------------------------------------------------------------------- start / stop helpers


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    # A launcher that, like the gcloud wrappers, keeps a child running.
    child_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {child_file}; wait"
    proc = start_process("wrapper", ["sh", "-c", script], lambda: child_file.exists() and child_file.read_text().strip() != "", tmp_path)
    child = int(child_file.read_text())
    assert pid_alive(proc.pid) and pid_alive(child)
    stop_process(proc)
    assert proc.popen.returncode is not None
    assert not pid_alive(proc.pid)
    assert not pid_alive(child)


def test_stop_a_real_emulator(tmp_path: Path) -> None:
    info, proc = start_gcs_emulator(tmp_path)
    assert tcp_open(info.port)
    stop_process(proc)
    assert not pid_alive(info.pid)
    assert not tcp_open(info.port)


def test_start_failure_reports_the_output(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('Address already in use'); sys.exit(3)"]
    with pytest.raises(EmulatorError, match=r"(?s)code 3.*Address already in use") as info:
        start_process("broken", argv, lambda: False, tmp_path)
    assert info.value.exited


def test_start_timeout_stops_the_process(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-c", "import time; print('still booting', flush=True); time.sleep(300)"]
    with pytest.raises(EmulatorError, match=r"(?s)not ready after.*still booting") as info:
        start_process("slow", argv, lambda: tcp_open(port), tmp_path, timeout=1)
    assert not info.value.exited
    assert not pid_alive(info.value.pid)


def test_a_missing_binary_fails_with_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.emulators as harness

    monkeypatch.setattr(harness, "AZURITE_BIN", tmp_path / "nowhere" / "azurite")
    with pytest.raises(pytest.fail.Exception) as info:
        harness.start_azurite(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "azurite" in message and "missing" in message and "bash .ci/setup" in message
