"""Object stores (S3, GCS, Blob, a local directory) and the publisher of queue messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, Protocol

from burnguard.core.messages import Message

Publish = Callable[[Sequence[Message]], None]


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

