"""The Firestore ledger on the official emulator, beyond the shared contract suite: it answers
every question exactly as the SQLite ledger does; it stays within Firestore's limits (500
writes per batch, 1 MiB per document); money is exact beyond 36 significant digits; and faults in
the middle of a completion (a crash before or after the switch, two instances completing the
same delivery at once) leave a ledger equal to a clean run's."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.cloud import firestore as gcf

from burnguard.adapters.gcp import firestore as fsl
from burnguard.adapters.gcp.firestore import FirestoreLedger
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.core.facts import Facts, empty_facts
from burnguard.core.ledger import AuditEvent, Scope, StopRecord, Window
from burnguard.core.lineitem import MONEY
from burnguard.core.messages import DeliveryRef, DeliverySummary, FileSummary, Message, Totals, chunk_id
from burnguard.services.record import record_message
from tests.deliveries import cur_table, delivery_ref, messages_for, write_cur

pytestmark = pytest.mark.emulator

NOW = datetime(2024, 9, 30, 12, tzinfo=UTC)
SEPTEMBER = Window(date(2024, 9, 1), date(2024, 10, 1), ("2024-09",))


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[list[Message]]:
    d = tmp_path_factory.mktemp("cur")
    files = [write_cur(cur_table(2000, 1, 10), d / "v1.csv"), write_cur(cur_table(3000, 1, 20, scale=1.07), d / "v2.csv"),
             write_cur(cur_table(1500, 3, 30, period="2024-09"), d / "other.csv")]
    refs = [delivery_ref("v1", produced_at=datetime(2024, 9, 10, tzinfo=UTC)),
            delivery_ref("v2", produced_at=datetime(2024, 9, 20, tzinfo=UTC)),
            delivery_ref("o1", source="aws-cur|222|other")]
    return [messages_for(ref, [p]) for ref, p in zip(refs, files, strict=True)]


@pytest.fixture
def client(firestore: Any) -> Iterator[Any]:
    c = gcf.Client(project=firestore.project)
    yield c
    c.close()


def apply(ledger: Any, messages: list[Message]) -> None:
    for m in messages:
        record_message(ledger, m, NOW)


def answers(ledger: Any) -> dict[str, Any]:
    """Every question of the port, over what the fixtures hold."""
    since = datetime(2024, 9, 1, tzinfo=UTC)
    return {
        "spend": ledger.spend(Scope("team"), SEPTEMBER),
        "spend_one": ledger.spend(Scope("team", "ml-research"), SEPTEMBER, basis="billed"),
        "spend_aws": ledger.spend(Scope("project"), SEPTEMBER, clouds=["aws"]),
        "spend_none": ledger.spend(Scope("project"), SEPTEMBER, clouds=["azure"]),
        "days_only": ledger.spend(Scope("team"), Window(date(2024, 9, 5), date(2024, 9, 12))),
        "daily": ledger.daily(Scope("team"), SEPTEMBER),
        "hourly": ledger.gpu_hourly(Scope("team"), since),
        "hourly_late": ledger.gpu_hourly(Scope("team"), datetime(2024, 9, 18, 7, tzinfo=UTC), basis="billed"),
        "top": sorted(ledger.top_resources(Scope("team"), SEPTEMBER, limit=1000), key=repr),
        "top_gpu": sorted(ledger.top_resources(Scope("team"), SEPTEMBER, limit=1000, gpu_only=True), key=repr),
        "services": sorted(ledger.by_service(Scope("project"), SEPTEMBER), key=repr),
        "tag_values": sorted(ledger.top_tag_values("Team", SEPTEMBER, limit=1000), key=repr),
        "counted": sorted(d.delivery.version for d in ledger.deliveries() if d.counted),
        "statuses": sorted((d.delivery.version, d.status, d.rows) for d in ledger.deliveries(include_superseded=True)),
        "latest": ledger.latest_data(),
    }


def test_firestore_answers_every_question_as_sqlite_does(client: Any, tmp_path: Path,
                                                         batches: list[list[Message]]) -> None:
    reference = SqliteLedger(tmp_path / "ref.sqlite")
    for batch in batches:
        apply(reference, batch)
    ledger = FirestoreLedger(client, prefix="cmp_")
    chaos = [m for batch in batches for m in batch] * 2
    random.Random(3).shuffle(chaos)
    apply(ledger, chaos)
    want, got = answers(reference), answers(ledger)
    assert want["spend"] and want["hourly"] and want["top_gpu"] and want["tag_values"]
    for key in want:
        assert got[key] == want[key], key
    reference.close()


def test_stops_snoozes_audit_and_announcements_as_sqlite(client: Any, tmp_path: Path) -> None:
    def exercise(ledger: Any) -> dict[str, Any]:
        t = NOW
        for i, (g, cloud, dry) in enumerate([("g1", "aws", False), ("g1", "gcp", False), ("g2", "aws", True)]):
            ledger.record_stop(StopRecord(g, "team=a", cloud, f"i-{i}", f"n{i}", "zone", "a2-highgpu-1g",
                                          t + timedelta(minutes=i), dry, Decimal("3.673") if i else None, "USD"))
        ledger.mark_resumed("g1", "aws", "i-0", t + timedelta(hours=1))
        ledger.mark_resumed("g1", "aws", "i-0", t + timedelta(hours=2))  # no-op: already resumed
        ledger.snooze("g1", t + timedelta(days=1), "U1", t)
        ledger.snooze("g1", t + timedelta(days=2), "U2", t)
        for i in range(5):
            ledger.audit(AuditEvent(t, "decision", "guardrail", "ok", "g1" if i % 2 else "g2", "team=a",
                                    {"i": i, "amount": "12.5"}))
        claims = [ledger.announce(k, t, {"x": 1}) for k in ("th:g1:80", "th:g1:80", "th:g1:100", "th:g2:80")]
        return {
            "active": ledger.stops(), "g1_all": ledger.stops("g1", active_only=False),
            "all": ledger.stops(active_only=False), "snoozed": ledger.snoozed_until("g1"),
            "not_snoozed": ledger.snoozed_until("g9"), "audit": ledger.audit_log(limit=3),
            "audit_g1": ledger.audit_log(guardrail="g1"), "claims": claims,
            "announced": ledger.announced("th:g1:"),
        }

    want = exercise(SqliteLedger(tmp_path / "ref.sqlite"))
    got = exercise(FirestoreLedger(client, prefix="misc_"))
    assert want["audit"][0].details == {"i": 4, "amount": "12.5"} and want["claims"] == [True, False, True, True]
    for key in want:
        assert got[key] == want[key], key


def test_writes_stay_within_firestore_limits(client: Any, batches: list[list[Message]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Small parts force many documents per chunk and page: every commit holds at most 500
    writes, every document at most 1 MiB, and the answers are unchanged."""
    reference = FirestoreLedger(client, prefix="big_")
    apply(reference, batches[1])
    monkeypatch.setattr(fsl, "PART_BYTES", 200)
    commits: list[int] = []
    biggest: list[int] = []
    real_batch = client.batch

    def batch() -> Any:
        b = real_batch()
        real_commit = b.commit

        def commit(**kwargs: Any) -> Any:
            commits.append(len(b._write_pbs))
            biggest.append(max(type(pb).pb(pb).ByteSize() for pb in b._write_pbs))
            return real_commit(**kwargs)

        b.commit = commit
        return b

    monkeypatch.setattr(client, "batch", batch)
    ledger = FirestoreLedger(client, prefix="small_")
    apply(ledger, batches[1])
    assert max(commits) == 500 and len(commits) > 2  # many parts, split into full batches
    assert max(biggest) < 1_048_576
    assert answers(ledger) == answers(reference)


def test_settling_many_crossings_commits_within_firestore_limits(client: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim settled with 1,200 other crossings: every transaction commits at most 500
    writes (the emulator takes more, Firestore does not) and every key is announced."""
    from google.cloud.firestore_v1.transaction import Transaction

    commits: list[int] = []
    real_commit = Transaction._commit

    def commit(self: Any) -> Any:
        commits.append(len(self._write_pbs))
        return real_commit(self)

    ledger = FirestoreLedger(client, prefix="settle_")
    key = "threshold|p|project=p0000|2024-09|100%"
    others = [f"threshold|p|project=p{i:04d}|2024-09|100%" for i in range(1, 1201)]
    assert ledger.claim(key, NOW, {}) == "new"
    monkeypatch.setattr(Transaction, "_commit", commit)
    ledger.settle(key, NOW, others)
    assert len(commits) >= 3 and max(commits) <= 500, commits
    assert set(ledger.announced("threshold|p|")) == {key, *others}
    assert ledger.pending_claims() == {}


def huge_chunk(delivery: DeliveryRef, index: int, amount: Decimal) -> tuple[str, Facts]:
    """A chunk of one resource's day with an amount of 36 significant digits."""
    spend = empty_facts().spend.schema
    money = pa.array([amount]).cast(MONEY)
    table = pa.table({
        "period": ["2024-09"], "day": [date(2024, 9, 3)], "cloud": ["aws"], "service": ["EC2"], "category": ["Usage"],
        "currency": ["USD"], "gpu": [True], "tagset": ["t1"], "resource_id": ["i-1"], "instance_type": ["p5.48xlarge"],
        "account": ["111"], "region": ["us-east-1"], "billed": money, "effective": money, "rows": [1],
    }, schema=spend)
    facts = Facts(table, empty_facts().gpu_hourly, {"t1": {"team": "whale"}}, 1, datetime(2024, 9, 4, tzinfo=UTC))
    return chunk_id(delivery.delivery_id, "f", index), facts


def test_money_is_exact_beyond_int64_nano_units(client: Any) -> None:
    ledger = FirestoreLedger(client, prefix="huge_")
    ref = delivery_ref("h1")
    # Line items hold 18 integer digits (MONEY); their sums go beyond (and far beyond int64 nano-units).
    amounts = [Decimal("999999999999999999.123456789123456789"), Decimal("888888888888888888.000000000876543211"),
               Decimal("0.000000000500000000")]
    total = Decimal(0)
    for i, amount in enumerate(amounts):
        cid, facts = huge_chunk(ref, i, amount)
        declared = Totals(rows=1, billed={"USD": amount}, effective={"USD": amount})
        assert ledger.add_chunk(cid, ref, declared, facts, NOW)
        total += amount
    summary = DeliverySummary(delivery=ref, files=[FileSummary(key="f", chunks=3, totals=Totals(rows=3), rows_read=3)],
                              totals=Totals(rows=3, billed={"USD": total}, effective={"USD": total}))
    ledger.add_summary(summary, NOW)
    assert ledger.complete(ref.delivery_id, NOW).switched
    [row] = ledger.spend(Scope("team"), SEPTEMBER)
    # The three chunks are one aggregate row: summed exactly (…790.5 nano), then rounded half-even
    # at 1e-9 once (to the even …790).
    assert row.amount == Decimal("1888888888888888887.123456790") == row.gpu_amount
    assert row.amount == total.quantize(Decimal("1e-9"))
    [resource] = ledger.top_resources(Scope("team", "whale"), SEPTEMBER)
    assert resource.amount == row.amount


def test_a_crash_before_the_switch_or_before_cleanup_leaves_a_clean_ledger(client: Any, batches: list[list[Message]],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    clean = FirestoreLedger(client, prefix="clean_")
    apply(clean, batches[0] + batches[1])
    ledger = FirestoreLedger(client, prefix="crash_")
    apply(ledger, batches[0])
    real_switch, real_delete = FirestoreLedger._switch, FirestoreLedger._delete_pages
    crashes = {"switch": 1, "delete": 1}

    def switch(self: FirestoreLedger, *args: Any, **kwargs: Any) -> Any:
        if crashes["switch"]:
            crashes["switch"] -= 1
            raise ConnectionError("instance died after writing the pages, before the switch")
        return real_switch(self, *args, **kwargs)

    def delete(self: FirestoreLedger, delivery_id: str) -> None:
        if crashes["delete"]:
            crashes["delete"] -= 1
            raise ConnectionError("instance died after the switch, before deleting the old pages")
        real_delete(self, delivery_id)

    monkeypatch.setattr(FirestoreLedger, "_switch", switch)
    monkeypatch.setattr(FirestoreLedger, "_delete_pages", delete)
    summary = batches[1][-1]
    with pytest.raises(ConnectionError, match="before the switch"):
        apply(ledger, batches[1])
    assert answers(ledger)["counted"] == ["v1"]  # v1 still counted, v2's written pages invisible
    with pytest.raises(ConnectionError, match="before deleting"):
        apply(ledger, [summary])  # the redelivered message completes it
    assert answers(ledger) == answers(clean)  # v1's leftover pages are invisible
    apply(ledger, [summary])
    assert answers(ledger) == answers(clean)


def test_two_instances_completing_one_delivery_switch_it_once(client: Any, firestore: Any,
                                                             batches: list[list[Message]]) -> None:
    clean = FirestoreLedger(client, prefix="clean2_")
    apply(clean, batches[0] + batches[1])
    ledgers = [FirestoreLedger(gcf.Client(project=firestore.project), prefix="race_") for _ in range(2)]
    apply(ledgers[0], batches[0] + batches[1][:-1])
    summary = batches[1][-1]
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run(ledger: FirestoreLedger) -> None:
        barrier.wait()
        results.append(record_message(ledger, summary, NOW))

    threads = [threading.Thread(target=run, args=(led,)) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and [r.status for r in results] == ["complete", "complete"]
    assert sum(r.switched for r in results) == 1
    assert answers(ledgers[0]) == answers(clean)
