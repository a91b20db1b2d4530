"""The meter over the three clouds' real controllers (EC2 on moto's server; Compute Engine and
Azure Resource Manager SDKs against the FAKES serving their documented shapes): each cloud's
start time (EC2 ``LaunchTime``, GCE ``lastStartTimestamp``, the Azure instance view) is where an
instance's first reading backfills from, and a stopped instance accrues nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import boto3
import pytest

from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.app.estimates_cli import load_prices
from burnguard.core.policy import load_policy
from burnguard.services.guardrail import GuardrailService
from burnguard.services.meter import MeterService
from tests.adapters.meter_clouds import arm_vm, gce_vm, launch_ec2, three_clouds
from tests.emulators import MotoServer

pytestmark = pytest.mark.emulator
ML = {"team": "ml-research"}
POLICY = """
version: 1
slack: {channel: "#gpu"}
guardrails:
  - {name: ml, scope: team=ml-research, budget: 100000 USD, thresholds: [{at: 100%, actions: [notify]}]}
"""


def test_one_tick_reads_three_clouds_and_backfills_from_each_start_time(aws: MotoServer) -> None:
    (running,) = launch_ec2(1, "p5.48xlarge", ML)
    (stopped,) = launch_ec2(1, "g5.xlarge", ML)
    launch_ec2(1, "p5.48xlarge", {"team": "search"})  # out of scope
    launch_ec2(1, "m5.large", ML)  # not a GPU instance
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ec2.stop_instances(InstanceIds=[stopped])
    launched = ec2.describe_instances(InstanceIds=[running])["Reservations"][0]["Instances"][0]["LaunchTime"]
    gce = [gce_vm("a2", "a2-highgpu-8g", ML, started="2026-12-04T10:00:00.000-08:00"),
           gce_vm("g2-off", "g2-standard-8", ML, status="TERMINATED")]
    arm = [arm_vm("nd", "Standard_ND96asr_v4", ML, changed="2026-12-04T17:30:00.0000000+00:00"),
           arm_vm("nc-off", "Standard_NC6s_v3", ML, power="deallocated")]
    with three_clouds(gce, arm) as clouds:
        found = {i.instance_id.rsplit("/", 1)[-1]: i for c in clouds.controllers.values() for i in c.find("team", None)}
        # Azure VMs are listed with their instance views ($expand=instanceView): no call per VM
        assert not [p for _, p in clouds.arm.requests if p.lower().endswith("/instanceview")]
        assert found[running].started_at == launched.astimezone(UTC)
        assert found["a2"].started_at == datetime(2026, 12, 4, 18, tzinfo=UTC)  # -08:00 read as UTC
        assert found["a2"].billing_id == gce[0]["id"]  # GCP billing names instances by their numeric id
        assert found["nd"].started_at == datetime(2026, 12, 4, 17, 30, tzinfo=UTC)
        assert found["nc-off"].started_at is None and found["nc-off"].stopped_at is not None

        now = max(launched.astimezone(UTC), datetime(2026, 12, 4, 18, tzinfo=UTC)) + timedelta(hours=2)
        ledger = SqliteLedger(":memory:")
        policy = load_policy(POLICY)
        guardrail = GuardrailService(policy, ledger, ConsoleNotifier(stream=StringIO()), clouds.controllers,
                                     clock=lambda: now)
        guardrail.estimates = ledger
        report = MeterService(policy, ledger, clouds.controllers, load_prices(), guardrail, clock=lambda: now).tick()
    assert report.read == 6 and report.running == 3 and not report.problems and not report.unpriced
    prices = load_prices()
    est = {r.instance_id.rsplit("/", 1)[-1]: r for r in ledger.estimates()}
    assert set(est) == {running, "a2", "nd"}  # stopped instances accrue nothing
    hours = {running: Decimal(int((now - launched.astimezone(UTC)).total_seconds())) / 3600,
             "a2": Decimal(2) + Decimal(int((now - datetime(2026, 12, 4, 20, tzinfo=UTC)).total_seconds())) / 3600,
             "nd": Decimal(int((now - datetime(2026, 12, 4, 17, 30, tzinfo=UTC)).total_seconds())) / 3600}
    types = {running: ("aws", "p5.48xlarge"), "a2": ("gcp", "a2-highgpu-8g"), "nd": ("azure", "Standard_ND96asr_v4")}
    for key, (cloud, itype) in types.items():
        price = prices.price(cloud, itype)
        assert price is not None and est[key].source == "price-table"
        assert abs(est[key].amount - price * hours[key]) < Decimal("1e-6")
