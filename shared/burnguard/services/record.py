"""Apply queue messages to the ledger (the data half of the guardrail function)."""

from __future__ import annotations

from datetime import datetime

from burnguard.core.facts import chunk_facts
from burnguard.core.ledger import Completion
from burnguard.core.messages import DELIVERY_SUMMARY, LINE_ITEMS, Message, decode_chunk, decode_summary
from burnguard.ports.ledger import Ledger


def record_message(ledger: Ledger, message: Message, now: datetime) -> Completion | None:
    """Store a ``line-items`` or ``delivery-summary`` message (idempotently) and try to
    complete its delivery. Returns the completion state, or ``None`` for other kinds.

    Raises :class:`~burnguard.core.errors.InputError` for a malformed message (the caller
    dead-letters it with the reason).
    """
    if message.kind == LINE_ITEMS:
        chunk = decode_chunk(message)
        ledger.add_chunk(chunk.chunk_id, chunk.delivery, chunk.declared, chunk_facts(chunk.table), now)
        return ledger.complete(chunk.delivery.delivery_id, now)
    if message.kind == DELIVERY_SUMMARY:
        summary = decode_summary(message)
        ledger.add_summary(summary, now)
        return ledger.complete(summary.delivery.delivery_id, now)
    return None
