"""Write the Google Cloud sample events of ``burnguard invoke gcp …`` (deterministic).

    PYTHONPATH=shared .venv/bin/python events/gcp/make_events.py
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from burnguard.core.budget import parse_gcp_pubsub_cloudevent
from burnguard.core.messages import Message
from burnguard.services.budget import alert_message

HERE = Path(__file__).parent
EVENTS = HERE.parent
RUN = "bigquery-export/01D4EE-079462-DFD6EC/2024-09/20240921T060000Z"
BUCKET = "acme-finops-billing"


def storage_event(name: str, size: int, generation: str) -> dict[str, object]:
    """A ``google.cloud.storage.object.v1.finalized`` CloudEvent (structured), as Eventarc
    delivers it; ``data`` is a StorageObjectData (google-cloudevents)."""
    return {
        "specversion": "1.0", "id": f"{generation}-{name.rsplit('/', 1)[-1]}",
        "source": f"//storage.googleapis.com/projects/_/buckets/{BUCKET}",
        "type": "google.cloud.storage.object.v1.finalized", "subject": f"objects/{RUN}/{name}",
        "time": "2024-09-21T06:04:10.512Z", "datacontenttype": "application/json",
        "data": {"kind": "storage#object", "bucket": BUCKET, "name": f"{RUN}/{name}", "generation": generation,
                 "metageneration": "1", "size": str(size), "contentType": "application/json",
                 "storageClass": "STANDARD", "timeCreated": "2024-09-21T06:04:10.512Z",
                 "updated": "2024-09-21T06:04:10.512Z", "etag": "CLnS5dK7+YgDEAE="},
    }


def push_event(message: Message, event_id: str) -> dict[str, object]:
    """A Pub/Sub messagePublished CloudEvent on the shared topic (``data`` = the push envelope)."""
    return {
        "specversion": "1.0", "id": event_id, "source": "//pubsub.googleapis.com/projects/acme-finops/topics/burnguard",
        "type": "google.cloud.pubsub.topic.v1.messagePublished", "time": "2024-09-21T06:05:00.000Z",
        "datacontenttype": "application/json",
        "data": {"message": {"data": base64.b64encode(message.data).decode(), "attributes": message.attributes,
                             "messageId": event_id, "publishTime": "2024-09-21T06:05:00.000Z"},
                 "subscription": "projects/acme-finops/subscriptions/burnguard-guardrail"},
    }


def main() -> None:
    local = EVENTS / "exports" / "gcp" / BUCKET / RUN
    files = {"storage.manifest-finalized.cloudevent.json": ("manifest.json", "1726898650512001"),
             "storage.part-finalized.cloudevent.json": ("part-000000000000.json.gz", "1726898650101001")}
    for out, (name, generation) in files.items():
        (HERE / out).write_text(json.dumps(storage_event(name, (local / name).stat().st_size, generation),
                                           indent=2) + "\n")
    budget = json.loads((EVENTS / "budget" / "gcp-budget.threshold-80.cloudevent.CONSTRUCTED.json").read_text())
    alert = alert_message(parse_gcp_pubsub_cloudevent(budget))
    (HERE / "guardrail.budget-alert.cloudevent.json").write_text(
        json.dumps(push_event(alert, "10000000000001"), indent=2) + "\n")
    poison = Message({"kind": "line-items", "message_id": "poison-0001", "delivery_id": "d-0001", "schema": "1"},
                     b"not an Arrow IPC stream")
    (HERE / "guardrail.poison.cloudevent.json").write_text(json.dumps(push_event(poison, "10000000000002"),
                                                                      indent=2) + "\n")
    (HERE / "slack.spend.json").write_text(json.dumps({"text": "spend team=ml-research 2024-09",
                                                       "user_id": "U0ADMIN01"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
