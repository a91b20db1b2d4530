"""Dead-letter records of the ingest function: why an export run was not counted.

Event Grid dead-letters an event it could not deliver (after its retries) to the subscription's
dead-letter container, but with its own reason (``MaxDeliveryAttemptsExceeded``), not burnguard's.
So the function also writes, before failing the event, one JSON blob per event id
(``burnguard/<event id>.json``, overwritten on each retry: the latest attempt's reason) to
a container of its own storage account, normally that same dead-letter container.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: Actions the recorder calls ("Storage Blob Data Contributor" on the dead-letter container).
PERMISSIONS: tuple[str, ...] = (
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
)
PREFIX = "burnguard/"


class BlobDeadLetters:
    """``container`` is an ``azure.storage.blob.ContainerClient``."""

    def __init__(self, container: Any):
        self.container = container

    def record(self, event_id: str, reason: str, details: Mapping[str, Any]) -> str:
        name = f"{PREFIX}{event_id or 'unknown'}.json"
        body = {"at": datetime.now(UTC).isoformat(), "reason": reason, **details}
        self.container.upload_blob(name, json.dumps(body, indent=2, default=str).encode(), overwrite=True)
        return name
