"""The ledger contract: snapshots replace each other, messages are idempotent, incomplete or
inconsistent deliveries never count. Every ledger adapter must pass this module."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from burnguard.core.ledger import Scope, Window
from burnguard.core.messages import DELIVERY_SUMMARY, LINE_ITEMS, DeliverySummary, Message, encode_summary
from burnguard.core.summary import Summary
from burnguard.normalize import Normalizer
from burnguard.ports.ledger import Ledger
from burnguard.services.record import record_message
from tests.deliveries import cur_table, delivery_ref, messages_for, write_cur

NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))


def apply(ledger: Ledger, messages: list[Message]) -> None:
    for m in messages:
        record_message(ledger, m, NOW)


def expected_by_team(path: Path) -> dict[str, Decimal]:
    """EffectiveCost per team of one file, from the normalizer's own summary of it."""
    summary = Summary()
    for table in Normalizer.from_path(path).batches():
        summary.add(table)
    return {value: totals.effective for (key, value, _cur), totals in summary.by_tag.items() if key == "team"}


def team_spend(ledger: Ledger) -> dict[str, Decimal]:
    return {row.scope_value: row.amount for row in ledger.spend(Scope("team"), SEPTEMBER)}  # type: ignore[misc]


def cents(d: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v.quantize(Decimal("0.01")) for k, v in d.items()}


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three month-to-date deliveries of September: days 1-10, 1-20 restated, 1-30 restated."""
    d = tmp_path_factory.mktemp("cur")
    return [
        write_cur(cur_table(3000, 1, 10), d / "v1.csv"),
        write_cur(cur_table(6000, 1, 20, scale=1.07), d / "v2.csv"),
        write_cur(cur_table(9000, 1, 30, scale=1.11), d / "v3.csv"),
    ]


def test_successive_deliveries_replace_each_other(ledger: Ledger, three_versions: list[Path]) -> None:
    for i, path in enumerate(three_versions):
        ref = delivery_ref(f"v{i + 1}", produced_at=datetime(2024, 9, 10 * (i + 1), tzinfo=UTC))
        apply(ledger, messages_for(ref, [path]))
    assert cents(team_spend(ledger)) == cents(expected_by_team(three_versions[-1]))
    counted = [d for d in ledger.deliveries(include_superseded=True) if d.counted]
    assert [d.delivery.version for d in counted] == ["v3"]
    statuses = {d.delivery.version: d.status for d in ledger.deliveries(include_superseded=True)}
    assert statuses == {"v1": "superseded", "v2": "superseded", "v3": "complete"}


def fingerprint(ledger: Ledger) -> dict[str, Any]:
    return {
        "teams": team_spend(ledger),
        "daily": ledger.daily(Scope("team", "ml-research"), SEPTEMBER),
        "hourly": ledger.gpu_hourly(Scope("team"), datetime(2024, 9, 1, tzinfo=UTC)),
        "top": ledger.top_resources(Scope("team", "ml-research"), SEPTEMBER, limit=20),
        "services": ledger.by_service(Scope("project"), SEPTEMBER),
        "counted": sorted(d.delivery.delivery_id for d in ledger.deliveries() if d.counted),
        "latest": ledger.latest_data(),
    }


def test_duplicated_and_shuffled_messages_give_the_same_ledger(ledger_factory: Callable[[], Ledger],
                                                               three_versions: list[Path]) -> None:
    refs = [delivery_ref(f"v{i + 1}", produced_at=datetime(2024, 9, 10 * (i + 1), tzinfo=UTC)) for i in range(3)]
    batches = [messages_for(ref, [p]) for ref, p in zip(refs, three_versions, strict=True)]
    in_order = ledger_factory()
    for batch in batches:
        apply(in_order, batch)
    chaos = ledger_factory()
    shuffled = [m for batch in batches for m in batch] * 2
    random.Random(42).shuffle(shuffled)
    apply(chaos, shuffled)
    assert fingerprint(chaos) == fingerprint(in_order)
    assert cents(team_spend(chaos)) == cents(expected_by_team(three_versions[-1]))


def test_a_delivery_missing_a_chunk_is_not_counted_and_is_reported(ledger: Ledger, three_versions: list[Path]) -> None:
    ref = delivery_ref("v1")
    messages = messages_for(ref, [three_versions[0]])
    chunks = [m for m in messages if m.kind == LINE_ITEMS]
    assert len(chunks) > 1
    apply(ledger, [m for m in messages if m is not chunks[1]])
    assert team_spend(ledger) == {}
    [status] = ledger.deliveries()
    assert status.status == "waiting" and not status.counted
    assert f"1 of {len(chunks)} chunks not yet received" in status.reason
    apply(ledger, [chunks[1]])  # the straggler arrives: now it counts
    assert cents(team_spend(ledger)) == cents(expected_by_team(three_versions[0]))


def test_a_delivery_whose_chunks_disagree_with_its_summary_is_rejected(ledger: Ledger,
                                                                         three_versions: list[Path]) -> None:
    ref = delivery_ref("v1")
    messages = messages_for(ref, [three_versions[0]])
    summary_msg = next(m for m in messages if m.kind == DELIVERY_SUMMARY)
    summary = DeliverySummary.model_validate_json(summary_msg.data)
    cur = next(iter(summary.totals.effective))
    forged = summary.model_copy(update={"totals": summary.totals.model_copy(
        update={"effective": {cur: summary.totals.effective[cur] + Decimal("0.05")}})})
    apply(ledger, [m for m in messages if m.kind == LINE_ITEMS] + [encode_summary(forged)])
    [status] = ledger.deliveries()
    assert status.status == "rejected" and not status.counted
    assert "effective cost of the chunks" in status.reason
    assert team_spend(ledger) == {}


def test_an_older_version_arriving_late_never_replaces_a_newer_one(ledger: Ledger, three_versions: list[Path]) -> None:
    newer = delivery_ref("v3", produced_at=datetime(2024, 9, 30, tzinfo=UTC))
    older = delivery_ref("v2", produced_at=datetime(2024, 9, 20, tzinfo=UTC))
    apply(ledger, messages_for(newer, [three_versions[2]]))
    apply(ledger, messages_for(older, [three_versions[1]]))
    assert cents(team_spend(ledger)) == cents(expected_by_team(three_versions[2]))
    statuses = {d.delivery.version: d.status for d in ledger.deliveries(include_superseded=True)}
    assert statuses == {"v3": "complete", "v2": "superseded"}


def test_separate_sources_and_periods_add_up(ledger: Ledger, three_versions: list[Path]) -> None:
    apply(ledger, messages_for(delivery_ref("a", source="aws-cur|111|x"), [three_versions[0]]))
    apply(ledger, messages_for(delivery_ref("b", source="aws-cur|222|y"), [three_versions[1]]))
    both = expected_by_team(three_versions[0])
    for k, v in expected_by_team(three_versions[1]).items():
        both[k] = both.get(k, Decimal(0)) + v
    assert cents(team_spend(ledger)) == cents(both)


def test_alert_announcements_are_edge_triggered(ledger: Ledger) -> None:
    assert ledger.announce("threshold:g:team=a:2024-09:80", NOW, {"spend": "4100"}) is True
    assert ledger.announce("threshold:g:team=a:2024-09:80", NOW + timedelta(hours=1), {}) is False
    assert set(ledger.announced("threshold:g:")) == {"threshold:g:team=a:2024-09:80"}
