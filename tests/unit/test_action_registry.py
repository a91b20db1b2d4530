"""Actions by name: the catalogue the policy validates against and the executors the guardrail
runs agree; a new action joins with one spec and one class; skip and failure reasons are
codes, and renderers match the code, never the text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from burnguard.core.actions import ACTIONS, ActionCatalog, ActionSpec
from burnguard.core.instances import Instance
from burnguard.core.ledger import Scope, StopRecord
from burnguard.core.policy import PolicyError, Safety, load_policy
from burnguard.notify.blocks import decision_blocks
from burnguard.ports.instances import InstanceController
from burnguard.rules.actions import FailCode, Reason, SkipCode, Skipped, select_for_stop
from burnguard.rules.decisions import Decision
from burnguard.rules.registry import Action, ActionRegistry, actions
from burnguard.services.guardrail import ExecutionReport
from tests.unit.test_guardrail import INVENTORY, ML, Env, item

NOW = datetime(2024, 9, 20, 12, tzinfo=UTC)


def test_every_declared_action_has_one_executor_and_every_executor_a_declaration() -> None:
    assert sorted(actions.names()) == sorted(ACTIONS.names()) == ["notify", "stop"]


def test_stop_needs_the_cloud_permissions_of_stop_list_and_start_and_nothing_else() -> None:
    stop = actions["stop"]
    assert set(stop.get_permissions(["aws"])) == {"ec2:DescribeInstances", "ec2:StopInstances", "ec2:StartInstances"}
    assert set(stop.get_permissions(["gcp"])) == {"compute.instances.list", "compute.instances.stop",
                                                 "compute.instances.start"}
    assert "Microsoft.Compute/virtualMachines/deallocate/action" in stop.get_permissions(["azure"])
    assert not any("terminate" in p.lower() or "delete" in p.lower() for p in stop.get_permissions())
    assert actions.permissions(["aws"])["notify"] == ()


def test_the_policy_names_the_registered_actions_when_it_meets_an_unknown_one() -> None:
    text = Path("events/policies/demo.yaml").read_text().replace("actions: [notify]", "actions: [terminate]", 1)
    with pytest.raises(PolicyError) as err:
        load_policy(text, "demo.yaml")
    assert "must be 'notify' or 'stop', got 'terminate'" in str(err.value)


def test_each_action_publishes_its_options_schema() -> None:
    for spec in ACTIONS:
        schema = spec.json_schema()
        assert schema["name"] == spec.name and schema["options"]["additionalProperties"] is False


@dataclass
class FakeRun:
    """An ActionRun that only records (its ports are never called by the actions under test)."""

    decision: Decision
    report: ExecutionReport
    now: datetime = NOW
    budget: int = 10
    safety: Safety = field(default_factory=Safety)
    controllers: Mapping[str, InstanceController] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def stop_log(self) -> FakeRun:
        return self

    def record_stop(self, record: StopRecord) -> None:
        self.log.append(f"record {record.instance_id}")

    def clouds(self) -> tuple[str, ...]:
        return ()

    def audit(self, action: str, outcome: str, details: Mapping[str, object]) -> None:
        self.log.append(f"audit {action} {outcome}")

    def announce(self) -> None:
        self.log.append("announce")


def _decision(actions_: tuple[str, ...]) -> Decision:
    return Decision("threshold", "g", Scope("team", "ml"), "2024-09", "100%", actions_, ("k",))


def test_a_new_action_joins_with_one_spec_and_one_class_and_runs_in_its_order() -> None:
    catalog = ActionCatalog()
    tell = catalog.declare(ActionSpec("tell", "say it", "said as a dry run", order=20))
    label = catalog.declare(ActionSpec("label", "tag the instances", "nothing is tagged",
                                       permissions={"aws": ("ec2:CreateTags",)}, touches_instances=True, order=10))
    registry = ActionRegistry(catalog)

    @registry.register(tell)
    class Tell(Action):
        announces = True

        def process(self, run: FakeRun) -> None:  # type: ignore[override]
            run.log.append("tell")

    @registry.register(label)
    class Label(Action):
        def process(self, run: FakeRun) -> None:  # type: ignore[override]
            run.log.append("label")

    run = FakeRun(_decision(("tell", "label")), ExecutionReport(_decision(("tell", "label")), dry_run=False))
    registry.execute(["tell", "label"], run)  # type: ignore[arg-type]
    assert run.log == ["label", "tell"]
    assert registry["label"].get_permissions() == ("ec2:CreateTags",)
    with pytest.raises(ValueError, match="not declared"):
        registry.register(ActionSpec("ghost", "", ""))(Tell)


def test_what_was_done_to_instances_is_announced_even_without_an_announcing_action() -> None:
    inst = Instance("aws", "i-1", "n", "us-east-1", "p4d.24xlarge", "running")
    report = ExecutionReport(_decision(("stop",)), dry_run=True)
    report.stopped.append(inst)
    run = FakeRun(_decision(("stop",)), report)
    registry = ActionRegistry()
    registry.execute([], run)  # type: ignore[arg-type]
    assert run.log == ["announce"]
    quiet = FakeRun(_decision(("stop",)), ExecutionReport(_decision(("stop",)), dry_run=True))
    registry.execute([], quiet)  # type: ignore[arg-type]
    assert quiet.log == []


def test_skips_carry_codes_and_the_text_people_read() -> None:
    safety = Safety()

    def vm(instance_id: str, instance_type: str, tags: dict[str, str], state: str = "running") -> Instance:
        return Instance("aws", instance_id, "n", "l", instance_type, state, tags)

    instances = [
        vm("i-cpu", "m5.xlarge", {"team": "ml"}),
        vm("i-keep", "p5.48xlarge", {"team": "ml", "burnguard:protect": "true"}),
        vm("i-web", "g5.xlarge", {"team": "web"}),
        vm("i-off", "g5.xlarge", {"team": "ml"}, state="stopped"),
        vm("i-a", "g5.xlarge", {"team": "ml"}),
        vm("i-b", "g5.xlarge", {"team": "ml"}),
    ]
    selection = select_for_stop(instances, Scope("team", "ml"), safety, budget=1)
    codes = {s.instance.instance_id: s.code for s in selection.skipped}
    assert codes == {"i-cpu": SkipCode.NOT_GPU, "i-keep": SkipCode.PROTECTED, "i-web": SkipCode.OUT_OF_SCOPE,
                     "i-off": SkipCode.NOT_RUNNING, "i-b": SkipCode.CAP_REACHED}
    assert all(isinstance(s.reason, str) and s.reason for s in selection.skipped)


def test_renderers_recognise_protected_instances_by_code_not_by_wording() -> None:
    keep = Instance("aws", "i-keep", "kept-box", "l", "p5.48xlarge", "running")
    other = Instance("aws", "i-cpu", "protected-word", "l", "m5.xlarge", "running")
    report = ExecutionReport(_decision(("stop",)), dry_run=False)
    report.skipped = [Skipped(keep, Reason(SkipCode.PROTECTED, "its owner asked to keep it")),
                      Skipped(other, Reason(SkipCode.NOT_GPU, "protected? no: m5.xlarge is not a GPU instance"))]
    texts = [str(b) for b in decision_blocks(report)]
    line = next(t for t in texts if "Protected, left running" in t)
    assert "kept-box" in line and "protected-word" not in line


def test_the_guardrail_records_codes_of_skips_and_failures_in_the_audit_log(tmp_path: Path) -> None:
    env = Env(tmp_path)
    [report, _project] = env.deliver([item("1000", ML)])
    codes = {s.instance.instance_id: s.code for s in report.skipped}
    assert codes["i-keep"] is SkipCode.PROTECTED and codes["gce-keep"] is SkipCode.PROTECTED
    assert codes["i-cpu"] is SkipCode.NOT_GPU and codes[INVENTORY[9]["id"]] is SkipCode.NOT_RUNNING
    [(failed, why)] = report.failed
    assert failed.instance_id == INVENTORY[8]["id"] and isinstance(why, Reason) and why.code is FailCode.ACTION_FAILED
    audited = {(e.details.get("instance"), e.details.get("code")) for e in env.ledger.audit_log(limit=200)
               if e.kind == "action" and e.outcome in ("skipped", "failed")}
    assert ("aws:i-keep", "protected") in audited and (f"azure:{INVENTORY[8]['id']}", "action-failed") in audited
