"""The EC2 controller on moto's server (over HTTP): 250 instances in two regions, the tag rule,
pagination, GPU classification (the table, and DescribeInstanceTypes for a family it does not
know), stop never terminate, start for resume.

What moto does not model is injected through botocore's event hooks, and the tests say so in
their names: an instance-store root volume (DescribeInstances rewritten after the call), a
one-time spot instance refusing to stop (StopInstances answered with EC2's
UnsupportedOperation), and throttling (RequestLimitExceeded answered before the request is sent).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from burnguard.adapters.aws.ec2 import PERMISSIONS, Ec2Controller
from burnguard.core.ledger import Scope
from burnguard.core.policy import Safety
from burnguard.ports.instances import ActionError
from burnguard.rules.actions import select_for_stop

pytestmark = pytest.mark.emulator
REGIONS = ("us-east-1", "eu-west-1")
AMI = "ami-12c6146b"  # one of moto's default images (present in every region)


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _ec2_error(code: str, message: str, status: int = 400) -> AWSResponse:
    body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>injected</RequestID></Response>").encode()
    return AWSResponse("https://ec2.amazonaws.com/", status, {}, _Raw(body))


def _launch(ec2: Any, count: int, itype: str, tags: dict[str, str], **extra: Any) -> list[str]:
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    kwargs: dict[str, Any] = {"ImageId": AMI, "MinCount": count, "MaxCount": count, "InstanceType": itype, **extra}
    if spec:
        kwargs["TagSpecifications"] = spec
    return [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]


ML = {"team": "ml-research"}


def _fleet(region: str, ec2: Any, scale: int) -> dict[str, list[str]]:
    """One region's instances, by what should happen to them. ``scale`` 2 or 1 (regions differ)."""
    ids: dict[str, list[str]] = {}
    ids["stop"] = (_launch(ec2, 20 * scale, "g5.xlarge", ML)
                   + _launch(ec2, 5 * scale, "g5.2xlarge", {"TEAM": "ml-research", "Name": "upper-key"})
                   + (_launch(ec2, 2, "g7.2xlarge", ML) if region == "us-east-1" else []))  # GPU from DescribeInstanceTypes
    ids["other-value"] = _launch(ec2, 5, "g5.xlarge", {"team": "ML-Research"})  # value compared exactly
    ids["untagged"] = _launch(ec2, 20 * scale, "g5.xlarge", {})
    ids["other-team"] = _launch(ec2, 10, "g5.xlarge", {"team": "web"})
    ids["protected"] = _launch(ec2, 4, "p4d.24xlarge", {**ML, "Burnguard:Protect": "true"})
    ids["cpu"] = _launch(ec2, 6 * scale, "m5.large", ML)
    ids["spot"] = _launch(ec2, 3, "g5.xlarge", ML, InstanceMarketOptions={"MarketType": "spot"})
    ids["instance-store"] = _launch(ec2, 3, "g5.xlarge", ML)
    ids["stopped"] = _launch(ec2, 4, "g5.xlarge", ML)
    ec2.stop_instances(InstanceIds=ids["stopped"])
    if scale == 1:
        ids["untagged-cpu"] = _launch(ec2, 37, "m5.large", {"Name": "builder"})  # 133 + 117 = 250
    return ids


def _inject(client: Any, instance_store: set[str], spot: set[str]) -> None:
    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        for reservation in parsed.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                if inst["InstanceId"] in instance_store:
                    inst["RootDeviceType"] = "instance-store"

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["injected_ids"] = list(params.get("InstanceIds", []))

    def refuse(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if set(context.get("injected_ids", [])) & spot:
            return _ec2_error("UnsupportedOperation", "one-time spot"), {
                "Error": {"Code": "UnsupportedOperation",
                          "Message": "You can't stop the Spot Instance because it is associated with a one-time "
                                     "Spot Instance request."},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    client.meta.events.register("after-call.ec2.DescribeInstances", rewrite)
    client.meta.events.register("before-parameter-build.ec2.StopInstances", remember)
    client.meta.events.register("before-call.ec2.StopInstances", refuse)


def _states(region: str) -> dict[str, str]:
    ec2 = boto3.client("ec2", region_name=region)
    out = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i["State"]["Name"]
    return out


def test_250_instances_in_two_regions_with_injected_spot_and_instance_store_refusals(aws: Any) -> None:
    fleets = {r: _fleet(r, boto3.client("ec2", region_name=r), scale) for r, scale in zip(REGIONS, (2, 1), strict=True)}
    before = {r: _states(r) for r in REGIONS}
    assert sum(len(s) for s in before.values()) == 250
    everything = {i for f in fleets.values() for ids in f.values() for i in ids}
    store = {i for f in fleets.values() for i in f["instance-store"]}
    spot = {i for f in fleets.values() for i in f["spot"]}
    pages: Counter[str] = Counter()

    def client_for(region: str) -> Any:
        client = boto3.client("ec2", region_name=region, config=Config(retries={"mode": "adaptive"}))
        _inject(client, store, spot)
        client.meta.events.register("after-call.ec2.DescribeInstances", lambda **_: pages.update([region]))
        return client

    controller = Ec2Controller(REGIONS, client_for)
    found = controller.find("team", "ml-research")
    found_ids = {i.instance_id for i in found}
    expected_found = {i for f in fleets.values() for k in ("stop", "protected", "cpu", "spot", "instance-store",
                                                           "stopped") for i in f[k]}
    assert found_ids == expected_found  # key without case, value exact, both regions
    assert all(i.location in REGIONS for i in found)
    assert {i.account for i in found} == {"123456789012"}  # the reservation's owner (moto's account)
    assert {i.instance_id for i in found if i.spot} == spot
    g7 = [i for i in found if i.instance_type.startswith("g7.")]
    assert g7 and all(i.is_gpu and i.accelerators for i in g7)

    selection = select_for_stop(found, Scope("team", "ml-research"), Safety(), budget=1000)
    reasons = {s.instance.instance_id: s.reason for s in selection.skipped}
    errors: dict[str, str] = {}
    for inst in selection.stop:
        try:
            controller.stop(inst)
        except ActionError as exc:
            errors[inst.instance_id] = str(exc)

    for f in fleets.values():
        assert all("protected" in reasons[i] for i in f["protected"])
        assert all("not a GPU instance" in reasons[i] for i in f["cpu"])
        assert all("is stopped" in reasons[i] for i in f["stopped"])
        assert all("instance-store" in errors[i] for i in f["instance-store"])
        assert all("UnsupportedOperation" in errors[i] and "one-time spot" in errors[i] for i in f["spot"])
    after = {i: s for r in REGIONS for i, s in _states(r).items()}
    should_stop = {i for f in fleets.values() for i in f["stop"]}
    changed = {i for r in REGIONS for i, s in before[r].items() if after[i] != s}
    assert changed == should_stop
    assert all(after[i] in ("stopping", "stopped") for i in should_stop)
    assert "terminated" not in after.values() and len(after) == len(everything)

    # resume: start brings them back
    for inst in [i for i in found if i.instance_id in should_stop][:3]:
        controller.start(inst)
    assert sum(1 for i in should_stop if _states("us-east-1").get(i) in ("pending", "running")) >= 1


def test_pagination_reads_every_page(aws: Any) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    # moto pages by reservation: one reservation per instance.
    ids = {i for _ in range(30) for i in _launch(ec2, 1, "g5.xlarge", ML)}
    calls: list[int] = []
    asked: list[Any] = []

    def client_for(region: str) -> Any:
        client = boto3.client("ec2", region_name=region)
        # The controller asks for the largest pages (1,000); these become small ones, counted.
        def small_pages(params: dict[str, Any], **_: Any) -> None:
            asked.append(params.get("MaxResults"))
            params["MaxResults"] = 5

        client.meta.events.register("provide-client-params.ec2.DescribeInstances", small_pages)
        client.meta.events.register("after-call.ec2.DescribeInstances", lambda **_: calls.append(1))
        return client

    found = Ec2Controller(["us-east-1"], client_for).find("team", "ml-research")
    assert {i.instance_id for i in found} == ids
    assert len(calls) >= 6 and set(asked) == {1000}


def test_injected_throttling_is_retried_by_botocore(aws: Any) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ids = set(_launch(ec2, 3, "g5.xlarge", ML))
    sent: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        sent.append("x")
        return _ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503) if len(sent) <= 3 else None

    def client_for(region: str) -> Any:
        client = boto3.client("ec2", region_name=region, config=Config(retries={"mode": "standard",
                                                                                "max_attempts": 5}))
        client.meta.events.register("before-send.ec2.DescribeInstances", throttle)
        return client

    found = Ec2Controller(["us-east-1"], client_for).find("team", "ml-research")
    assert {i.instance_id for i in found} == ids
    assert len(sent) == 4  # three throttled attempts, then the one that went through


def test_default_clients_use_adaptive_retries_and_permissions_are_declared(aws: Any) -> None:
    controller = Ec2Controller(["us-east-1"])
    client = controller.client("us-east-1")
    assert client.meta.config.retries["mode"] == "adaptive"
    assert set(PERMISSIONS) == {"ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:StopInstances",
                                "ec2:StartInstances"}
    assert not any("Terminate" in p for p in PERMISSIONS)


def test_a_stop_refused_for_another_reason_names_it(aws: Any) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    [iid] = _launch(ec2, 1, "g5.xlarge", ML)
    controller = Ec2Controller(["us-east-1"])
    [inst] = controller.find("team", "ml-research")
    ec2.terminate_instances(InstanceIds=[iid])  # gone meanwhile (by someone else)
    ec2.get_waiter("instance_terminated")
    try:
        controller.stop(inst)
    except ActionError as exc:
        assert iid in str(exc) and "could not stop" in str(exc)


def test_the_guardrail_reaches_ec2_by_assuming_the_role_with_a_web_identity(aws: Any) -> None:
    from burnguard.app.aws import ConfigurationError, ec2_controller

    ec2 = boto3.client("ec2", region_name="eu-west-1")
    ids = set(_launch(ec2, 2, "g5.xlarge", ML))
    tokens: list[str] = []

    def token() -> str:
        tokens.append("eyJhbGciOiJSUzI1NiJ9.e30.sig")
        return tokens[-1]

    env = {"BURNGUARD_AWS_REGIONS": "us-east-1, eu-west-1",
           "BURNGUARD_AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/burnguard-guardrail"}
    controller = ec2_controller(env, web_identity_token=token)
    assert tokens and controller.regions == ["us-east-1", "eu-west-1"]
    assert {i.instance_id for i in controller.find("team", "ml-research")} == ids
    for bad, message in [({}, "BURNGUARD_AWS_REGIONS is not set"),
                         ({"BURNGUARD_AWS_REGIONS": "Virginia"}, "not an AWS region"),
                         ({**env, "BURNGUARD_AWS_ROLE_ARN": "burnguard"}, "BURNGUARD_AWS_ROLE_ARN must be")]:
        with pytest.raises(ConfigurationError, match=message):
            ec2_controller(bad)
