"""Event Grid ``Microsoft.Storage.BlobCreated`` events, in the Event Grid schema
(``eventType``, ``topic``, ``eventTime``) and in the CloudEvents 1.0 schema (``type``,
``source``, ``time``, ``specversion``): the container, the blob name and the metadata the
ingest use case reads (``contentLength``, ``api``, ``eTag``, the event time).

Works on plain mappings (the JSON the host delivers, a sample event file) and on the
``azure.functions`` ``EventGridEvent`` / ``CloudEvent`` objects the trigger hands over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from burnguard.core.delivery import blob_path_from_subject
from burnguard.core.errors import InputError

BLOB_CREATED = "Microsoft.Storage.BlobCreated"


@dataclass(frozen=True)
class BlobCreated:
    event_id: str
    container: str
    key: str
    #: the storage account, from ``data.url`` (``None`` when the URL does not name one)
    account: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def event_fields(event: Any) -> dict[str, Any]:
    """The schema-neutral fields of an event: ``id``, ``type``, ``subject``, ``data``, ``time``,
    ``source``; from a mapping of either schema or an ``azure.functions`` event object."""
    if isinstance(event, Mapping):
        cloud = "specversion" in event
        return {"id": event.get("id"), "type": event.get("type" if cloud else "eventType"),
                "subject": event.get("subject"), "data": event.get("data"),
                "time": event.get("time" if cloud else "eventTime"),
                "source": event.get("source" if cloud else "topic")}
    if hasattr(event, "specversion"):  # azure.functions.CloudEvent
        return {"id": event.id, "type": event.type, "subject": event.subject, "data": event.get_json(),
                "time": event.time, "source": event.source}
    if hasattr(event, "event_type"):  # azure.functions.EventGridEvent
        return {"id": event.id, "type": event.event_type, "subject": event.subject, "data": event.get_json(),
                "time": event.event_time, "source": event.topic}
    raise InputError(f"not an Event Grid event: {type(event).__name__}", field="event")


def _account(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith((".blob.core.windows.net", ".dfs.core.windows.net")):
        return host.split(".", 1)[0]
    segs = [s for s in parts.path.split("/") if s]
    return unquote(segs[0]) if segs else None  # Azurite: http://host:port/<account>/<container>/<blob>


def blob_created(event: Any) -> BlobCreated:
    """The blob an event announces; :class:`InputError` naming the field for anything else."""
    fields = event_fields(event)
    if fields["type"] != BLOB_CREATED:
        raise InputError(f"event type {fields['type']!r} is not {BLOB_CREATED}", field="type")
    data = fields["data"]
    if not isinstance(data, Mapping):
        raise InputError("event data is not an object", field="data")
    container, key = blob_path_from_subject(fields["subject"])
    metadata: dict[str, Any] = {k: data[k] for k in ("api", "contentLength", "eTag", "contentType", "blobType")
                                if data.get(k) is not None}
    when = fields["time"]
    if isinstance(when, datetime):
        metadata["last_modified"] = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    elif when:
        metadata["last_modified"] = str(when)
    return BlobCreated(str(fields["id"] or ""), container, key, _account(data.get("url")), metadata)
