"""Event Grid ``Microsoft.Storage.BlobCreated`` events, in the Event Grid schema
(``eventType``, ``topic``, ``eventTime``) and in the CloudEvents 1.0 schema (``type``,
``source``, ``time``, ``specversion``): the container, the blob name and the metadata the
ingest use case reads (``contentLength``, ``api``, ``eTag``, the event time).

Works on plain mappings (the JSON the host delivers, a sample event file) and on the
``azure.functions`` ``EventGridEvent`` / ``CloudEvent`` objects the trigger hands over.
"""

from __future__ import annotations

import base64
import binascii
import json
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


def events_of_queue_message(body: bytes | str) -> list[dict[str, Any]]:
    """The events of a Storage queue message Event Grid wrote (a storage-queue destination: one
    event per message, JSON, in either schema). The host hands the body base64-decoded; a body
    still in base64 (``messageEncoding: none``) is decoded here."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if stripped and stripped[0] not in "[{":
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InputError("queue message is neither JSON nor base64 JSON", field="message") from None
    try:
        parsed = json.loads(stripped)
    except ValueError as exc:
        raise InputError(f"queue message is not JSON ({exc})", field="message") from None
    events = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(e, dict) for e in events):
        raise InputError("queue message is not an event object or a list of them", field="message")
    return events


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
