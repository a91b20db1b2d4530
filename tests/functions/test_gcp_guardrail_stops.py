"""The ``guardrail`` function crossing a budget stops Compute Engine instances: a September
snapshot over ml-research's budget arrives as push CloudEvents (functions-framework test
client); the ledger is Firestore (emulator); the controller is google-cloud-compute's REST
client against the Compute Engine FAKE of ``tests/adapters/gcp/test_compute_controller.py``
(Compute Engine has no emulator)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud import firestore as gcf

from burnguard.adapters.gcp.compute import GceController
from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.adapters.gcp.pubsub import PushConsumer
from burnguard.app import gcp
from burnguard.core.lineitem import SCHEMA
from burnguard.core.messages import DeliveryRef, DeliverySummary, FileSummary, encode_chunk, encode_summary, totals_of
from tests.emulators import http_server
from tests.fakes.compute import FakeCompute, handler_for, vm
from tests.functions.test_gcp_guardrail import Notes, function_client, post_cloudevent, push_envelope
from tests.slack_helpers import ML, NOW, POLICY, SEPTEMBER, item

pytestmark = pytest.mark.emulator


def test_an_overspend_stops_the_gce_gpu_machines_of_the_scope(firestore: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    fake = FakeCompute()
    fake.add(vm("ml-research-prod", "us-central1-a", "trainer-a2", "a2-highgpu-1g", {"team": "ml-research"}))
    fake.add(vm("ml-research-prod", "us-central1-a", "trainer-t4", "n1-standard-8", {"team": "ml-research"},
                accelerators=[("nvidia-tesla-t4", 1)]))
    fake.add(vm("ml-research-prod", "us-central1-b", "cpu-box", "e2-standard-4", {"team": "ml-research"}))
    fake.add(vm("ml-research-prod", "us-central1-b", "vision", "g2-standard-4", {"team": "vision"}))
    rows = [*SEPTEMBER, item("300", ML, day=18)]  # ml-research over its 1,000 USD budget
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    ref = DeliveryRef(delivery_id="d-stop", provider="aws", source="cur", billing_period="2024-09", version="1",
                      produced_at=datetime(2024, 9, 20, tzinfo=UTC))
    totals = totals_of(table)
    messages = [encode_chunk(ref, "f.csv", 0, table), encode_summary(DeliverySummary(
        delivery=ref, files=[FileSummary(key="f.csv", chunks=1, totals=totals, rows_read=table.num_rows)],
        totals=totals))]
    ledger = FirestoreLedger(gcf.Client(project=firestore.project), prefix="stops_")
    notes = Notes()
    with http_server(handler_for(fake)) as url:
        options = {"api_endpoint": url}
        gce = GceController(["ml-research-prod"], clients=compute_v1.InstancesClient(
            transport="rest", credentials=AnonymousCredentials(), client_options=options),
            operations=compute_v1.ZoneOperationsClient(transport="rest", credentials=AnonymousCredentials(),
                                                      client_options=options))
        consumer: PushConsumer = gcp.build_guardrail({"BURNGUARD_POLICY": str(tmp_path / "policy.yaml")},
                                                     ledger=ledger, controllers={"gcp": gce}, notifier=notes,
                                                     dead_letter=lambda ms: pytest.fail("dead-lettered"),
                                                     clock=lambda: NOW)
        monkeypatch.setattr(gcp, "guardrail_runtime", lambda: consumer)
        client = function_client()
        for m in messages:
            assert post_cloudevent(client, push_envelope(m)).status_code == 200
        for m in messages:  # redelivered: nothing is stopped twice
            assert post_cloudevent(client, push_envelope(m)).status_code == 200
    states = {name: inst["status"] for (_p, _z, name), inst in fake.instances.items()}
    assert states == {"trainer-a2": "TERMINATED", "trainer-t4": "TERMINATED", "cpu-box": "RUNNING",
                      "vision": "RUNNING"}
    stops = [p for m, p in fake.requests if m == "POST" and p.split("?")[0].endswith("/stop")]
    assert len(stops) == 2
    stopped = {s.name for s in ledger.stops("ml-monthly")}
    assert stopped == {"trainer-a2", "trainer-t4"}
    assert notes.sent  # the channel is told
