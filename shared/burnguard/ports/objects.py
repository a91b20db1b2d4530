"""Object stores (S3, GCS, Blob, a local directory) and the publisher of queue messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, Protocol

from burnguard.core.errors import BurnguardError
from burnguard.core.messages import Message

#: Publish messages on the shared queue (Pub/Sub, the local SQLite queue); raises :class:`PublishError`.
Publish = Callable[[Sequence[Message]], None]
#: Open one object as a stream of bytes.
Opener = Callable[[], IO[bytes]]


class ObjectStore(Protocol):
    """Read access to a bucket / container (S3, GCS, Blob, or a local directory)."""

    def open(self, bucket: str, key: str) -> IO[bytes]:
        """A stream of the object's bytes (not read into memory)."""
        ...

    def read(self, bucket: str, key: str) -> bytes:
        """A small object (a manifest) in full."""
        ...

    def local_path(self, bucket: str, key: str) -> str | None:
        """The object's path on this machine, when it has one (Arrow then reads it natively)."""
        ...


class PublishError(BurnguardError):
    """Messages could not be published (after the client's own retries); publishing them again is
    harmless, consumers deduplicate on ``message_id``."""
