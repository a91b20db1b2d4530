"""Billing exports on Google Cloud Storage: :class:`~burnguard.ports.objects.ObjectStore` on a
``google.cloud.storage.Client``.

Objects are streamed (``Blob.open("rb")``: ranged reads of ``chunk_size`` bytes), never
downloaded whole, so a multi-GB export part is read in bounded memory. A read pins the object
generation the event named when the caller gives it (``generation=``), so a later overwrite of
the same name is never mixed into this delivery.
"""

from __future__ import annotations

from typing import IO, Any

from burnguard.core.errors import InputError

#: Actions the ingest function calls (``roles/storage.objectViewer`` on the export bucket).
PERMISSIONS = ("storage.objects.get",)
#: bytes per ranged read while streaming an object
CHUNK_BYTES = 8 * 1024 * 1024


class GcsStore:
    """:class:`~burnguard.ports.objects.ObjectStore` on GCS; ``client`` is a
    ``google.cloud.storage.Client`` (built by the caller: the function's, or the emulator's)."""

    def __init__(self, client: Any, *, chunk_size: int = CHUNK_BYTES):
        self.client = client
        self.chunk_size = chunk_size

    def _blob(self, bucket: str, key: str) -> Any:
        return self.client.bucket(bucket).blob(key)

    def open(self, bucket: str, key: str) -> IO[bytes]:
        from google.api_core.exceptions import NotFound

        blob = self._blob(bucket, key)
        try:
            blob.reload()  # size and generation: the reader then pins that generation
        except NotFound:
            raise InputError(f"gs://{bucket}/{key}: no such object", file=key) from None
        reader: IO[bytes] = blob.open("rb", chunk_size=self.chunk_size)
        return reader

    def read(self, bucket: str, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            data: bytes = self._blob(bucket, key).download_as_bytes()
        except NotFound:
            raise InputError(f"gs://{bucket}/{key}: no such object", file=key) from None
        return data

    def local_path(self, bucket: str, key: str) -> str | None:
        return None
