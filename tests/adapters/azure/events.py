"""Event Grid ``BlobCreated`` events for a blob, in both schemas, built on Microsoft's
documented samples (``tests/fixtures/public/azure-docs/eventgrid-blobcreated.*.json``), and
handed to the function as the host does: ``azure.functions`` ``EventGridEvent`` /
``CloudEvent`` objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum

DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "public" / "azure-docs"
GRID = json.loads((DOCS / "eventgrid-blobcreated.eventgrid-schema.json").read_text())[0]
CLOUD = json.loads((DOCS / "eventgrid-blobcreated.cloudevents-schema.json").read_text())[0]


def event_json(schema: str, blob_endpoint: str, container: str, key: str, size: int, *, n: int = 0) -> dict[str, Any]:
    event = copy.deepcopy(GRID if schema == "eventgrid" else CLOUD)
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/{key}"
    event["id"] = f"831e1650-001e-001b-66ab-{n:012d}"
    event["data"].update(url=f"{blob_endpoint}/{container}/{key}", contentLength=size,
                         contentType="application/octet-stream")
    return event


def host_event(body: dict[str, Any]) -> Any:
    """What the Functions host's Event Grid binding hands the function for ``body``: the
    binding's own decoder (an ``EventGridEvent``, or a ``CloudEvent`` for the CloudEvents schema)."""
    return EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata={})
