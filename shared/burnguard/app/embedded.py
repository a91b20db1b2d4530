"""The embedded mode: the whole pipeline on one machine (SQLite queue and ledger, an inventory
file for instances, Slack messages on the console).

A state directory (``.burnguard/`` by default, ``--home`` or ``BURNGUARD_HOME``) holds the
ledger, the queue, the inventory state and ``config.json`` (which policy and inventory it was
set up with), so ``burnguard spend``, ``guardrails``, ``resume`` work on it afterwards.

Local files stand for storage objects, as ``.../<aws|gcp|azure>/<bucket>/<key>``: the nearest
parent directory named ``aws``, ``gcp`` or ``azure`` says the provider, the directory below it
is the bucket (the S3 bucket, the GCS bucket, the Blob container) and the path below that is
the object key, so the delivery layouts (CUR folders and manifests, Azure export runs,
burnguard's GCS layout) are the real ones. Every file of a directory is offered as an object
event would offer it: manifests bring their whole delivery, data files wait for theirs,
single-file exports stand alone.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from burnguard.adapters.local.inventory import InventoryController, InventoryFile
from burnguard.adapters.local.ledger import SqliteLedger
from burnguard.adapters.local.notifier import ConsoleNotifier
from burnguard.adapters.local.queue import SqliteQueue
from burnguard.adapters.local.store import DirectoryStore
from burnguard.core.clouds import CLOUDS
from burnguard.core.delivery import Delivery, classify_object
from burnguard.core.errors import BurnguardError, InputError
from burnguard.core.ledger import AuditEvent
from burnguard.core.money import ISO_4217
from burnguard.core.policy import Policy, load_policy
from burnguard.services.budget import alert_message, parse_notification
from burnguard.services.guardrail import ExecutionReport, GuardrailFault, GuardrailService
from burnguard.services.objects import ObjectOutcome, identify, ingest_identified

HOME_ENV = "BURNGUARD_HOME"
#: The SQLite queue has no size limit: chunks go uncompressed (see messages.encode_chunk).
LOCAL_QUEUE_COMPRESSION: str | None = None
DEFAULT_HOME = ".burnguard"
PROVIDER_DIRS: tuple[str, ...] = CLOUDS


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV, DEFAULT_HOME))


def locate(path: Path) -> tuple[str, str, str] | None:
    """``(provider, bucket, key)`` of a local file ``.../<provider>/<bucket>/<key>``."""
    resolved = path.resolve()
    for parent in resolved.parents:
        if parent.name in PROVIDER_DIRS:
            parts = resolved.relative_to(parent).parts
            if len(parts) < 2:
                return None
            return parent.name, str(parent / parts[0]), "/".join(parts[1:])
    return None


def check_currency_argument(value: str, name: str = "--currency") -> str:
    """A currency given on the command line: ISO 4217, trimmed and upper-cased; else a named error."""
    code = value.strip().upper()
    if code not in ISO_4217:
        raise InputError(f"{value!r} is not an ISO 4217 currency code", field=name)
    return code


def object_metadata(path: Path) -> dict[str, Any]:
    """A local file's stand-in for an object's metadata: its size, and its modification time as
    the last-modified time (which orders deliveries that carry no production time of their own)."""
    stat = path.stat()
    return {"size": stat.st_size, "last_modified": datetime.fromtimestamp(stat.st_mtime, UTC)}


def with_local_production_time(delivery: Delivery, path: Path) -> Delivery:
    """An AWS CUR delivery's production time in a local tree. The period folder's manifest is
    AWS's statement of the current assembly (it is rewritten last, on every delivery): the
    assembly it names is produced no earlier than it, any other assembly of the period before
    it, so the one it names wins whatever the order the files are offered in or their times."""
    if delivery.layout != "cur" or delivery.produced_at is None:
        return delivery
    period_dir = next((p for p in path.parents if re.fullmatch(r"\d{8}-\d{8}", p.name)), None)
    if period_dir is None:
        return delivery
    period_manifest = period_dir / f"{period_dir.parent.name}-Manifest.json"
    if not period_manifest.is_file():
        return delivery
    try:
        named = json.loads(period_manifest.read_text()).get("assemblyId")
    except (OSError, ValueError):
        return delivery  # the period manifest is ingested (and its error reported) on its own
    stated = datetime.fromtimestamp(period_manifest.stat().st_mtime, UTC)
    if not isinstance(named, str) or not named.strip():
        return delivery
    if named.strip().lower() == delivery.version.lower():
        produced = max(delivery.produced_at, stated)
    else:
        produced = min(delivery.produced_at, stated - timedelta(seconds=1))
    return delivery.model_copy(update={"produced_at": produced})


def describe(path: Path) -> dict[str, Any]:
    """What a local file is as a storage object: its delivery's identity when the layout tells
    (a manifest, a single-file export), else its role (a data file waits for its manifest)."""
    where = locate(path)
    if where is None:
        return {"role": "unknown", "reason": "not in a <aws|gcp|azure>/<bucket>/ directory: no delivery identity"}
    provider, bucket, key = where
    try:
        role = classify_object(provider, bucket, key, object_metadata(path))
        delivery = identify(provider, bucket, key, DirectoryStore(), object_metadata(path))[0] if role.kind in (
            "manifest", "single") else None
        if delivery is not None:
            delivery = with_local_production_time(delivery, path)
    except BurnguardError as exc:
        return {"role": "invalid", "reason": str(exc)}
    if delivery is None:
        return {"role": role.kind, "reason": role.reason, "provider": provider, "billing_period": role.billing_period,
                "version": role.version, "source": role.source}
    return {"role": role.kind, "provider": delivery.provider, "source": delivery.source,
            "billing_period": delivery.billing_period, "version": delivery.version,
            "delivery_id": delivery.delivery_id, "complete": delivery.complete,
            "files": [f.key for f in delivery.files], "expected_rows": delivery.expected_rows,
            "cost_basis": delivery.cost_basis}


def delivery_paths(manifest: Path) -> tuple[dict[str, Any], list[Path]]:
    """A manifest's delivery and the local paths of its files."""
    info = describe(manifest)
    where = locate(manifest)
    if info.get("role") != "manifest" or where is None:
        raise InputError(f"not a delivery manifest burnguard can read ({info.get('reason', 'unknown layout')})",
                         file=str(manifest))
    bucket = Path(where[1])
    return info, [bucket / key for key in info["files"]]


class Progress:
    """A one-line progress report on a terminal (rows and rows/s per file); silent otherwise."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.key = ""
        self.rows = 0
        self.start = time.perf_counter()

    def __call__(self, key: str, rows: int) -> None:
        if key != self.key:
            self.done()
            self.key, self.rows, self.start = key, 0, time.perf_counter()
        self.rows += rows
        if self.enabled:
            rate = self.rows / max(time.perf_counter() - self.start, 1e-6)
            bar = "#" * min(30, int(self.rows / 2000))
            self.stream.write(f"\r  {Path(key).name[:40]:<40} [{bar:<30}] {self.rows:>10,} rows {rate:>10,.0f}/s")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.key:
            self.stream.write("\n")
        self.key = ""


@dataclass
class Outcome:
    path: str
    action: str  # ingested | skipped | failed | alert
    reason: str
    rows: int = 0
    delivery_id: str | None = None
    #: the delivery's state in the ledger before this run ("counted", "waiting", ...; None: new)
    prior: str | None = None


#: What became of a delivery: counted now, counted before this run, waiting for parts,
#: rejected (its parts disagree), superseded (a newer delivery of its period counts), failed
#: (it could not be read or published).
DELIVERY_STATES = ("counted", "already-counted", "waiting", "rejected", "superseded", "failed")


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one delivery an ingest offered, after the guardrail handled its messages:
    data for the CLI to print and to choose its exit code from (``ok``)."""

    delivery_id: str | None
    path: str
    state: str  # one of DELIVERY_STATES
    reason: str
    rows: int = 0
    dead_letters: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state in ("counted", "already-counted")


@dataclass
class DrainReport:
    handled: int = 0
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)


class LocalMode:
    def __init__(self, home: Path, policy: Policy, *, inventory_seed: Path | None = None,
                 notifier: ConsoleNotifier | None = None, new_inventory: bool = False):
        """``inventory_seed``: the inventory the state copy starts from (an error if it does not
        exist and there is no state copy yet); ``new_inventory``: the user just gave it, so it
        replaces the state copy."""
        self.home = home
        self.policy = policy
        state = home / "inventory.json"
        if inventory_seed is not None and not inventory_seed.is_file() and (new_inventory or not state.exists()):
            raise InputError("inventory file not found", file=str(inventory_seed), field="--inventory")
        self.ledger = SqliteLedger(home / "ledger.sqlite")
        self.queue = SqliteQueue(home / "queue.sqlite")
        seed = inventory_seed if inventory_seed is not None and (new_inventory or not state.exists()) else None
        self.inventory = InventoryFile(state, seed=seed, replace=new_inventory) if (
            seed is not None or state.exists()) else None
        self.notifier = notifier or ConsoleNotifier()
        self.store = DirectoryStore()

    # -- setup ----------------------------------------------------------------------------
    @classmethod
    def create(cls, home: Path, policy_path: Path, inventory: Path | None, **kwargs: Any) -> LocalMode:
        home.mkdir(parents=True, exist_ok=True)
        policy = load_policy(policy_path)
        config = {"policy": str(policy_path.resolve()), "inventory": str(inventory.resolve()) if inventory else None}
        (home / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return cls(home, policy, inventory_seed=inventory, **kwargs)

    @classmethod
    def open(cls, home: Path, policy_path: Path | None = None, inventory: Path | None = None,
             **kwargs: Any) -> LocalMode:
        """The state of ``home``; a policy or inventory given here replaces the saved one."""
        config_path = home / "config.json"
        if inventory is not None:
            saved = json.loads(config_path.read_text()) if config_path.exists() else {}
            policy = policy_path or (Path(saved["policy"]) if saved.get("policy") else None)
            if policy is None:
                raise InputError("an inventory needs a policy: pass --policy too", file=str(home))
            return cls.create(home, policy, inventory, new_inventory=True, **kwargs)
        if policy_path is None:
            if not config_path.exists():
                raise InputError(f"no local state in {home}: run `burnguard demo`, or `burnguard ingest --policy FILE`",
                                 file=str(home))
            config = json.loads(config_path.read_text())
            return cls(home, load_policy(Path(config["policy"])),
                       inventory_seed=Path(config["inventory"]) if config.get("inventory") else None, **kwargs)
        inventory = None
        if config_path.exists():
            saved = json.loads(config_path.read_text()).get("inventory")
            inventory = Path(saved) if saved else None
        return cls.create(home, policy_path, inventory, **kwargs)

    def close(self) -> None:
        self.ledger.close()
        self.queue.close()

    def service(self, clock: Callable[[], datetime] | None = None) -> GuardrailService:
        controllers = ({c: InventoryController(c, self.inventory) for c in PROVIDER_DIRS}
                       if self.inventory is not None else {})
        service = GuardrailService(self.policy, self.ledger, self.notifier, controllers,
                                   as_of=clock or self.data_clock)
        service.estimates = self.ledger  # billed + the live estimate (`burnguard meter`), by default
        return service

    def data_clock(self) -> datetime:
        """The local mode's "now": the last second the billing data covers, so sample data of
        any month is judged in its own month (data ending at 2024-10-01T00:00 is September's;
        ``--now`` overrides). Once ``burnguard meter`` has read instances, the latest reading
        is the end of the data (billed or estimated)."""
        latest = self.ledger.latest_data()
        metered = self.ledger.latest_reading()
        if metered is not None and (latest is None or metered > latest):
            return metered
        return latest - timedelta(seconds=1) if latest is not None else datetime.now(UTC)

    # -- ingesting ------------------------------------------------------------------------
    def ingest(self, paths: Sequence[Path], *, progress: Progress | None = None,
               default_currency: str | None = None) -> list[Outcome]:
        """Offer every file under ``paths`` as a storage object event; publish to the queue.
        ``default_currency`` (``--currency``) must be an ISO 4217 code (trimmed, any case)."""
        if default_currency is not None:
            default_currency = check_currency_argument(default_currency)
        outcomes: list[Outcome] = []
        seen: set[str] = set()
        ingested: dict[str, str] = {}
        for path in _files(paths):
            where = locate(path)
            if where is None:
                outcomes.append(Outcome(str(path), "skipped", "not in a <aws|gcp|azure>/<bucket>/ directory"))
                continue
            provider, bucket, key = where
            try:
                delivery, reason = identify(provider, bucket, key, self.store, object_metadata(path))
                if delivery is None:
                    outcomes.append(Outcome(str(path), "skipped", reason))
                    continue
                delivery = with_local_production_time(delivery, path)
                if delivery.delivery_id in ingested:
                    # A CUR's period-folder and assembly-folder manifests are one delivery.
                    outcomes.append(Outcome(str(path), "skipped", f"same delivery as {ingested[delivery.delivery_id]}",
                                            delivery_id=delivery.delivery_id))
                    continue
                ingested[delivery.delivery_id] = str(path)
                prior = self._delivery_state(delivery.delivery_id)
                outcome = ingest_identified(delivery, bucket, key, self.store, self._publish_once(seen),
                                            reason=reason, on_progress=progress, default_currency=default_currency,
                                            compression=LOCAL_QUEUE_COMPRESSION)
            except BurnguardError as exc:
                outcomes.append(Outcome(str(path), "failed", str(exc)))
                self.ledger.audit(AuditEvent(datetime.now(UTC), "dead-letter", "ingest", "failed",
                                             details={"object": str(path), "reason": str(exc)}))
                continue
            finally:
                if progress is not None:
                    progress.done()
            result = _outcome(path, outcome)
            result.prior = prior
            outcomes.append(result)
        return outcomes

    def _delivery_state(self, delivery_id: str) -> str | None:
        for d in self.ledger.deliveries(include_superseded=True):
            if d.delivery.delivery_id == delivery_id:
                return "counted" if d.counted else d.status
        return None

    def delivery_outcomes(self, outcomes: Sequence[Outcome]) -> list[DeliveryOutcome]:
        """Per delivery offered by :meth:`ingest` (call it after draining the queue): counted,
        already counted, waiting (for which parts), rejected or superseded (and why), or failed.
        Files skipped as parts of a delivery offered elsewhere are not repeated."""
        known = {d.delivery.delivery_id: d for d in self.ledger.deliveries(include_superseded=True)}
        dead: dict[str, list[str]] = {}
        for letter in self.queue.dead_letters():
            did = letter.message.attributes.get("delivery_id")
            if did:
                dead.setdefault(did, []).append(letter.reason)
        out: list[DeliveryOutcome] = []
        for o in outcomes:
            if o.action == "failed":
                out.append(DeliveryOutcome(o.delivery_id, o.path, "failed", o.reason))
                continue
            if o.action != "ingested" or o.delivery_id is None:
                continue
            letters = tuple(dead.get(o.delivery_id, ()))
            status = known.get(o.delivery_id)
            if status is None:
                why = "none of its messages has been handled" + (
                    f"; dead-lettered: {letters[0]}" if letters else " yet")
                out.append(DeliveryOutcome(o.delivery_id, o.path, "waiting", why, o.rows, letters))
            elif status.counted:
                state = "already-counted" if o.prior == "counted" else "counted"
                why = "counted before this run; nothing changed" if state == "already-counted" else o.reason
                out.append(DeliveryOutcome(o.delivery_id, o.path, state, why, status.rows, letters))
            elif status.status == "waiting":
                why = status.reason or "waiting for its parts"
                if letters:
                    why += f"; {len(letters)} of its messages dead-lettered: {letters[0]}"
                out.append(DeliveryOutcome(o.delivery_id, o.path, "waiting", why, o.rows, letters))
            else:  # rejected, superseded (or complete and since replaced)
                state = status.status if status.status in DELIVERY_STATES else "superseded"
                out.append(DeliveryOutcome(o.delivery_id, o.path, state, status.reason, o.rows, letters))
        return out

    def _publish_once(self, seen: set[str]) -> Callable[[Sequence[Any]], None]:
        """Both CUR manifests (period and assembly folder) stand for one delivery: publish it
        once per run. (Publishing it twice would be harmless, only slower.)"""
        def publish(messages: Sequence[Any]) -> None:
            fresh = [m for m in messages if m.message_id not in seen]
            seen.update(m.message_id for m in fresh)
            if fresh:
                self.queue.publish(fresh)
        return publish

    def ingest_notifications(self, paths: Sequence[Path]) -> list[Outcome]:
        outcomes = []
        for path in _files(paths):
            try:
                payload = json.loads(path.read_text())
                alerts = parse_notification(payload, datetime.now(UTC))
            except (OSError, ValueError, BurnguardError) as exc:
                outcomes.append(Outcome(str(path), "failed", str(exc)))
                continue
            self.queue.publish([alert_message(a) for a in alerts])
            outcomes.append(Outcome(str(path), "alert", ", ".join(f"{a.provider} {a.budget_name!r} {a.kind}"
                                                                   for a in alerts)))
        return outcomes

    # -- the guardrail --------------------------------------------------------------------
    def drain(self, service: GuardrailService, *, batch: int = 64, report: DrainReport | None = None) -> DrainReport:
        """Run the guardrail over every queued message (bad ones to the dead-letter table)."""
        report = report or DrainReport()
        while self._drain_once(service, report, batch):
            pass
        return report

    @contextmanager
    def guardrail_alongside(self, service: GuardrailService) -> Iterator[DrainReport]:
        """Run the guardrail in a background thread while the caller ingests, as the cloud's
        ingest and guardrail functions run side by side; on exit, drain what is left."""
        report = DrainReport()
        stop = threading.Event()
        failure: list[BaseException] = []

        def consume() -> None:
            try:
                while not stop.is_set():
                    if not self._drain_once(service, report, 64):
                        stop.wait(0.02)
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=consume, name="guardrail", daemon=True)
        worker.start()
        try:
            yield report
        finally:
            stop.set()
            worker.join()
        if failure:
            raise failure[0]
        self.drain(service, report=report)

    def _drain_once(self, service: GuardrailService, report: DrainReport, batch: int) -> bool:
        received = self.queue.pull(batch)
        for r in received:
            try:
                result = service.handle(r.message)
            except InputError as exc:
                self.queue.dead_letter(r, str(exc))
                report.dead_letters.append((r.message.message_id, str(exc)))
                service.dead_lettered(r.message, str(exc))
                continue
            except Exception as exc:  # transient: give it back, dead-lettered after max attempts
                reason = f"{type(exc).__name__}: {exc}"
                if self.queue.nack(r, reason):
                    if isinstance(exc, GuardrailFault):  # what the last attempt did (a retry redoes the rest)
                        report.reports += exc.reports
                    report.dead_letters.append((r.message.message_id, reason))
                    service.dead_lettered(r.message, f"{reason} (after {r.attempt} attempts)")
                continue
            self.queue.ack(r)
            report.handled += 1
            report.reports += result.reports
        return bool(received)


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")
                          and q.suffix not in (".py", ".md", ".txt"))
        elif p.exists():
            out.append(p)
        else:
            raise InputError("no such file or directory", file=str(p))
    return out


def _outcome(path: Path, outcome: ObjectOutcome) -> Outcome:
    if outcome.report is None:
        return Outcome(str(path), outcome.action, outcome.reason)
    summary = outcome.report.summary
    skipped = sum(f.rows_skipped for f in summary.files)
    reason = f"{len(summary.files)} file(s), {summary.totals.rows:,} line items" + (
        f", {skipped} bad rows skipped" if skipped else "")
    return Outcome(str(path), "ingested", reason, summary.totals.rows, summary.delivery.delivery_id)
