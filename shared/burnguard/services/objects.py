"""Ingest a created storage object: the use case behind every cloud's ingest function.

The object event names a bucket and a key. A manifest (the completion marker of a multi-file
delivery) makes its whole delivery ingested; a single-file export is its own delivery; a data
file of a manifest delivery, an empty or marker object, or a non-billing object is skipped
with the reason (it will be read when its manifest arrives).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from burnguard.core.delivery import (
    Delivery,
    classify_object,
    delivery_for_single_file,
    parse_azure_manifest,
    parse_cur_manifest,
    parse_data_exports_manifest,
    parse_gcp_manifest,
)
from burnguard.core.messages import DeliveryRef
from burnguard.ports.objects import ObjectStore, Publish
from burnguard.services.ingest import IngestReport, SourceFile, ingest_delivery

MANIFEST_PARSERS: Mapping[str, Callable[..., Delivery]] = {
    "cur": parse_cur_manifest,
    "data_exports": parse_data_exports_manifest,
    "azure": parse_azure_manifest,
    "gcp": parse_gcp_manifest,
}


@dataclass
class ObjectOutcome:
    action: str  # ingested | skipped
    reason: str
    delivery: Delivery | None = None
    report: IngestReport | None = None


def delivery_ref(delivery: Delivery) -> DeliveryRef:
    return DeliveryRef(delivery_id=delivery.delivery_id, provider=delivery.provider, source=delivery.source,
                       billing_period=delivery.billing_period or "unknown", version=delivery.version,
                       produced_at=delivery.produced_at)


def identify(provider: str, bucket: str, key: str, store: ObjectStore,
             metadata: Mapping[str, Any] | None = None) -> tuple[Delivery | None, str]:
    """The delivery an object event stands for, or ``None`` with the reason to skip it."""
    role = classify_object(provider, bucket, key, metadata)
    if role.kind == "manifest":
        assert role.manifest_format is not None
        parse = MANIFEST_PARSERS[role.manifest_format]
        delivery = parse(store.read(bucket, key), key, bucket=bucket, metadata=metadata)
    elif role.kind == "single":
        tag = _meta(metadata, "etag", "generation", "version") or _meta(metadata, "last_modified") or "0"
        delivery = delivery_for_single_file(provider, bucket, key, str(tag))
    else:
        return None, role.reason
    if not delivery.is_cost_data:
        return None, f"{delivery.export_type} export is not cost data"
    if not delivery.complete:
        return None, "an incomplete delivery (a shard without its manifest) is never counted"
    return delivery, role.reason


def ingest_object(provider: str, bucket: str, key: str, store: ObjectStore, publish: Publish, *,
                  metadata: Mapping[str, Any] | None = None, default_currency: str | None = None,
                  on_progress: Callable[[str, int], None] | None = None) -> ObjectOutcome:
    delivery, reason = identify(provider, bucket, key, store, metadata)
    if delivery is None:
        return ObjectOutcome("skipped", reason)
    return ingest_identified(delivery, bucket, key, store, publish, reason=reason,
                             default_currency=default_currency, on_progress=on_progress)


def ingest_identified(  # noqa: PLR0913 - the object's identity and ports, then keyword-only options
        delivery: Delivery, bucket: str, key: str, store: ObjectStore, publish: Publish, *,
        reason: str = "", default_currency: str | None = None,
        on_progress: Callable[[str, int], None] | None = None,
        compression: str | None = "zstd") -> ObjectOutcome:
    """Ingest a delivery already identified (from the object ``key`` that announced it)."""
    basis = delivery.cost_basis if delivery.cost_basis in ("actual", "amortized") else None
    keys = [f.key for f in delivery.files] or [key]
    files = [SourceFile(k, _opener(store, bucket, k), store.local_path(bucket, k)) for k in keys]
    report = ingest_delivery(delivery_ref(delivery), files, publish, default_currency=default_currency,
                             cost_basis=basis, expected_rows=delivery.expected_rows, on_progress=on_progress,
                             compression=compression)
    return ObjectOutcome("ingested", reason, delivery, report)


def _opener(store: ObjectStore, bucket: str, key: str) -> Callable[[], IO[bytes]]:
    return lambda: store.open(bucket, key)


def _meta(metadata: Mapping[str, Any] | None, *names: str) -> Any:
    if not metadata:
        return None
    folded = {k.casefold().replace("-", "_"): v for k, v in metadata.items()}
    for n in names:
        if folded.get(n) is not None:
            return folded[n]
    return None
