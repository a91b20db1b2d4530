"""Ingest deliveries from object events in a function with a time limit (AWS Lambda: 15 min).

Built on :mod:`burnguard.services.objects` (which delivery an object stands for, and when it is
whole) and :mod:`burnguard.services.ingest` (stream a file into chunks). It adds two things a
cloud function needs:

* **Repeated and reordered events have no effect.** With a marker store, a delivery whose
  closing summary was published is recorded (``published/<delivery_id>``), and a second event
  for it (the same event again, or the CUR manifest copied in both the period folder and the
  assembly folder) publishes nothing. Without one, every message id is deterministic, so the
  consumer drops what it has seen (ARCHITECTURE.md rule 2). An event for a data file is
  skipped; only the manifest, written last, triggers.
* **Big deliveries complete part by part.** With a part queue, a delivery of at least
  ``fan_out_parts`` files is not read in the manifest's invocation: one *part job* per file is
  sent to the queue (``fanned/<delivery_id>`` marks it), and each job is its own invocation
  (its own 15 minutes): it publishes that file's chunks (ids from delivery, file and index:
  the same as a whole-delivery run) and records the file's summary (``parts/<id>/<n>``). The
  invocation that finds every part recorded publishes the closing summary, built from the
  recorded parts in the manifest's order. Two last parts finishing together both publish the
  same summary, same id: harmless. A malformed part never records its summary, so the
  delivery never closes, and the part's job is dead-lettered with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from burnguard.core.delivery import Delivery
from burnguard.core.errors import InputError
from burnguard.core.messages import (
    DELIVERY_SUMMARY,
    DeliverySummary,
    FileSummary,
    Message,
    Totals,
    add_totals,
    encode_summary,
)
from burnguard.ports.objects import ObjectStore, Publish
from burnguard.services.ingest import SourceFile
from burnguard.services.ingest import ingest_delivery as _ingest_files
from burnguard.services.objects import delivery_ref, identify, ingest_identified


class Markers(Protocol):
    """Small JSON records by name (an S3 prefix, a GCS prefix, a directory)."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def put(self, name: str, value: Mapping[str, Any]) -> None: ...

    def list(self, folder: str) -> list[str]: ...


#: Send part jobs (JSON objects) to the queue whose consumer calls :meth:`DeliveryIngestor.on_part`.
SendParts = Callable[[Sequence[Mapping[str, Any]]], None]


@dataclass
class Outcome:
    action: str  # ingested | skipped | fanned-out | part-ingested | closed
    reason: str
    delivery_id: str | None = None
    messages: int = 0
    summary: DeliverySummary | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "reason": self.reason, "delivery_id": self.delivery_id,
                               "messages": self.messages}
        if self.summary is not None:
            out["rows"] = self.summary.totals.rows
            out["billed"] = {k: str(v) for k, v in self.summary.totals.billed.items()}
        return {**out, **self.details}


@dataclass
class DeliveryIngestor:
    provider: str
    store: ObjectStore
    publish: Publish
    markers: Markers | None = None
    send_parts: SendParts | None = None
    fan_out_parts: int = 2
    default_currency: str | None = None
    compression: str | None = "zstd"

    def _done(self, delivery_id: str) -> bool:
        return self.markers is not None and self.markers.get(f"published/{delivery_id}") is not None

    def _mark_done(self, summary: DeliverySummary) -> None:
        if self.markers is not None:
            self.markers.put(f"published/{summary.delivery.delivery_id}",
                             {"rows": summary.totals.rows, "files": len(summary.files)})

    def on_object(self, bucket: str, key: str, metadata: Mapping[str, Any] | None = None) -> Outcome:
        """An object was created: ingest, fan out, or skip its delivery (with the reason)."""
        delivery, reason = identify(self.provider, bucket, key, self.store, metadata)
        if delivery is None:
            return Outcome("skipped", reason)
        did = delivery.delivery_id
        if self._done(did):
            return Outcome("skipped", "delivery already published (a repeated event)", did)
        keys = [f.key for f in delivery.files] or [key]
        if self.send_parts is not None and len(keys) >= self.fan_out_parts:
            if self.markers is not None and self.markers.get(f"fanned/{did}") is not None:
                return Outcome("skipped", "delivery already fanned out (a repeated event)", did)
            self.send_parts([{"bucket": bucket, "trigger": key, "part": k, "index": i, "parts": len(keys),
                              "delivery_id": did} for i, k in enumerate(keys)])
            if self.markers is not None:
                self.markers.put(f"fanned/{did}", {"parts": len(keys)})
            return Outcome("fanned-out", f"{len(keys)} part jobs queued", did, details={"parts": len(keys)})
        outcome = ingest_identified(delivery, bucket, key, self.store, self.publish, reason=reason,
                                    default_currency=self.default_currency, compression=self.compression)
        assert outcome.report is not None
        self._mark_done(outcome.report.summary)
        return Outcome("ingested", reason, did, outcome.report.messages, outcome.report.summary)

    def on_part(self, job: Mapping[str, Any]) -> Outcome:
        """One part job: publish that file's chunks, record its summary, close the delivery
        when every part is recorded."""
        if self.markers is None:
            raise InputError("part jobs need a marker store (BURNGUARD_STATE_BUCKET)")
        bucket, trigger, part, index = _part_job(job)
        delivery, keys = self._part_delivery(bucket, trigger, part, index)
        did = delivery.delivery_id
        if self._done(did):
            return Outcome("skipped", "delivery already published (a repeated part job)", did)
        messages = self._ingest_part(delivery, bucket, part, f"parts/{did}/{index:06d}")
        recorded = sorted(self.markers.list(f"parts/{did}"))
        if len(recorded) < len(keys):
            return Outcome("part-ingested", f"part {index + 1} of {len(keys)}; {len(recorded)} recorded", did,
                           messages)
        files, missing = self._recorded_parts(did, len(keys))
        if missing is not None:
            return Outcome("part-ingested", f"part {missing} not recorded yet", did, messages)
        summary = self._close(delivery, files)
        return Outcome("closed", f"every part of {len(keys)} recorded; summary published", did, messages + 1, summary)

    def _part_delivery(self, bucket: str, trigger: str, part: str, index: int) -> tuple[Delivery, list[str]]:
        """The part's delivery, still whole, whose manifest names ``part`` at ``index``."""
        delivery, reason = identify(self.provider, bucket, trigger, self.store)
        if delivery is None:
            raise InputError(f"the part's delivery is not whole any more: {reason}", file=trigger)
        keys = [f.key for f in delivery.files] or [trigger]
        if index >= len(keys) or keys[index] != part:
            raise InputError(f"part {index} of the manifest is not {part!r}", file=trigger)
        return delivery, keys

    def _ingest_part(self, delivery: Delivery, bucket: str, part: str, name: str) -> int:
        """Publish one part's chunks (not its summary) and record the summary under ``name``,
        unless it is recorded already. The number of messages published."""
        assert self.markers is not None
        if self.markers.get(name) is not None:
            return 0
        messages = 0

        def publish_chunks(batch: Sequence[Message]) -> None:
            nonlocal messages
            chunks = [m for m in batch if m.attributes.get("kind") != DELIVERY_SUMMARY]
            if chunks:
                self.publish(chunks)
                messages += len(chunks)

        basis = delivery.cost_basis if delivery.cost_basis in ("actual", "amortized") else None
        report = _ingest_files(delivery_ref(delivery), [SourceFile(part, _opener(self.store, bucket, part),
                                                                   self.store.local_path(bucket, part))],
                               publish_chunks, default_currency=self.default_currency, cost_basis=basis,
                               compression=self.compression)
        self.markers.put(name, report.summary.files[0].model_dump(mode="json"))
        return messages

    def _recorded_parts(self, did: str, count: int) -> tuple[list[FileSummary], int | None]:
        """Every part's recorded summary, or the index of the first one not recorded yet."""
        assert self.markers is not None
        files: list[FileSummary] = []
        for n in range(count):
            value = self.markers.get(f"parts/{did}/{n:06d}")
            if value is None:
                return files, n
            files.append(FileSummary.model_validate(value))
        return files, None

    def _close(self, delivery: Delivery, files: list[FileSummary]) -> DeliverySummary:
        """Publish the delivery's closing summary from its parts' and mark it done."""
        total = Totals(rows=0)
        for f in files:
            total = add_totals(total, f.totals)
        summary = DeliverySummary(delivery=delivery_ref(delivery), files=files, totals=total,
                                  expected_rows=delivery.expected_rows)
        self.publish([encode_summary(summary)])
        self._mark_done(summary)
        return summary


def _part_job(job: Mapping[str, Any]) -> tuple[str, str, str, int]:
    try:
        return str(job["bucket"]), str(job["trigger"]), str(job["part"]), int(job["index"])
    except (KeyError, TypeError, ValueError):
        raise InputError("a part job has bucket, trigger, part and index", field="burnguard_part") from None


def _opener(store: ObjectStore, bucket: str, key: str) -> Callable[[], Any]:
    return lambda: store.open(bucket, key)
