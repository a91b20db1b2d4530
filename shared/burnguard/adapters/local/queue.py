"""The embedded queue: SQLite, at-least-once, with a dead-letter table.

It carries exactly the messages Pub/Sub carries (string attributes and bytes, see
:mod:`burnguard.core.messages`). Like Pub/Sub it does not deduplicate: a message published twice is
delivered twice, and a message whose handling failed is delivered again after its lease, up
to ``max_attempts``; then it goes to the dead-letter table with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from burnguard.adapters.local.sqlite import SqliteStore
from burnguard.core.messages import Message

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, attributes TEXT NOT NULL, data BLOB NOT NULL,
    published_at TEXT NOT NULL, visible_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_ready ON messages(state, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, attributes TEXT NOT NULL, data BLOB NOT NULL,
    reason TEXT NOT NULL, attempts INTEGER NOT NULL, dead_at TEXT NOT NULL);
"""
READY, LEASED, DONE = 0, 1, 2


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Received:
    seq: int
    message: Message
    attempt: int


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    message: Message
    reason: str
    attempts: int
    dead_at: str


class SqliteQueue(SqliteStore):
    """Publisher and subscriber of the local queue (one file, ``":memory:"`` for tests)."""

    def __init__(self, path: str | Path, *, lease: timedelta = timedelta(minutes=5), max_attempts: int = 5,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        super().__init__(path, SCHEMA)
        self.lease = lease
        self.max_attempts = max_attempts
        self.clock = clock

    # -- publisher -----------------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        now = _ts(self.clock())
        with self._tx() as db:
            db.executemany(
                "INSERT INTO messages (message_id, attributes, data, published_at, visible_at) VALUES (?, ?, ?, ?, ?)",
                [(m.message_id, json.dumps(m.attributes, sort_keys=True), m.data, now, now) for m in messages])

    # -- subscriber ----------------------------------------------------------------------
    def pull(self, max_messages: int = 10) -> list[Received]:
        """Lease up to ``max_messages`` ready messages (oldest first)."""
        now = self.clock()
        with self._tx() as db:
            # Leases that ran out make their messages ready again (a crashed consumer).
            db.execute("UPDATE messages SET state = ? WHERE state = ? AND visible_at <= ?", (READY, LEASED, _ts(now)))
            rows = db.execute("SELECT seq, attributes, data, attempts FROM messages WHERE state = ?"
                              " ORDER BY seq LIMIT ?", (READY, max_messages)).fetchall()
            if not rows:
                return []
            until = _ts(now + self.lease)
            db.executemany("UPDATE messages SET state = ?, visible_at = ?, attempts = attempts + 1 WHERE seq = ?",
                           [(LEASED, until, seq) for seq, *_ in rows])
        return [Received(seq, Message(json.loads(attrs), bytes(data)), attempts + 1)
                for seq, attrs, data, attempts in rows]

    def ack(self, received: Received) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE seq = ?", (received.seq,))

    def nack(self, received: Received, reason: str) -> bool:
        """Give a message back after a failure; dead-letter it past ``max_attempts``.
        Returns True when it was dead-lettered."""
        if received.attempt >= self.max_attempts:
            self.dead_letter(received, f"{reason} (after {received.attempt} attempts)")
            return True
        with self._tx() as db:
            db.execute("UPDATE messages SET state = ?, visible_at = ? WHERE seq = ?",
                       (READY, _ts(self.clock()), received.seq))
        return False

    def dead_letter(self, received: Received, reason: str) -> None:
        """Move a message to the dead-letter table at once, with the reason (bad input)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (received.seq, received.message.message_id,
                        json.dumps(received.message.attributes, sort_keys=True), received.message.data, reason,
                        received.attempt, _ts(self.clock())))
            db.execute("DELETE FROM messages WHERE seq = ?", (received.seq,))

    def dead_letters(self) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute("SELECT seq, attributes, data, reason, attempts, dead_at FROM dead_letters"
                                    " ORDER BY seq").fetchall()
        return [DeadLetter(seq, Message(json.loads(a), bytes(d)), r, n, at) for seq, a, d, r, n, at in rows]

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
