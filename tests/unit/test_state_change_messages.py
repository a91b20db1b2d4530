"""The ``state-change`` queue message: its JSON payload, deterministic id, and validation (a
malformed one raises an InputError naming the field, which the guardrail dead-letters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from burnguard.core.errors import InputError
from burnguard.core.messages import KINDS, STATE_CHANGE, Message, decode_state_change, encode_state_change
from burnguard.core.state_events import StateChange

CHANGE = StateChange("gcp", "projects/ml-prod/zones/us-central1-a/instances/trainer-1", "running",
                     datetime(2026, 12, 4, 18, 0, 0, 250000, tzinfo=UTC))


def test_a_state_change_round_trips_with_a_deterministic_id() -> None:
    message = encode_state_change(CHANGE)
    assert message.kind == STATE_CHANGE and STATE_CHANGE in KINDS
    assert message.attributes["schema"] == "1" and message.attributes["cloud"] == "gcp"
    assert json.loads(message.data) == {"cloud": "gcp", "instance_id": CHANGE.instance_id, "state": "running",
                                        "at": "2026-12-04T18:00:00.250000Z"}
    assert decode_state_change(message) == CHANGE
    # the same event in another offset is the same message (redelivery is harmless)
    shifted = StateChange(CHANGE.cloud, CHANGE.instance_id, CHANGE.state,
                          CHANGE.at.astimezone(timezone(timedelta(hours=-8))))
    assert encode_state_change(shifted).message_id == message.message_id
    assert encode_state_change(StateChange("gcp", CHANGE.instance_id, "stopped", CHANGE.at)).message_id \
        != message.message_id


@pytest.mark.parametrize(("payload", "field"), [
    ({"cloud": "oracle", "instance_id": "i-1", "state": "running", "at": "2026-12-04T18:00:00Z"}, "cloud"),
    ({"cloud": "aws", "instance_id": "i-1", "state": "paused", "at": "2026-12-04T18:00:00Z"}, "state"),
    ({"cloud": "aws", "instance_id": "i-1", "state": "running", "at": "2026-12-04T18:00:00"}, "at"),
    ({"cloud": "aws", "instance_id": "", "state": "running", "at": "2026-12-04T18:00:00Z"}, "instance_id"),
    ({"cloud": "aws", "state": "running", "at": "2026-12-04T18:00:00Z"}, "instance_id"),
])
def test_a_malformed_payload_names_its_field(payload: dict[str, str], field: str) -> None:
    message = Message({**encode_state_change(CHANGE).attributes}, json.dumps(payload).encode())
    with pytest.raises(InputError) as caught:
        decode_state_change(message)
    assert caught.value.field == field


def test_not_json_and_wrong_schema_are_refused() -> None:
    good = encode_state_change(CHANGE)
    with pytest.raises(InputError):
        decode_state_change(Message(good.attributes, b"\x00not json"))
    with pytest.raises(InputError, match="schema"):
        decode_state_change(Message({**good.attributes, "schema": "0"}, good.data))
    with pytest.raises(InputError, match="message_id"):
        decode_state_change(Message({k: v for k, v in good.attributes.items() if k != "message_id"}, good.data))
