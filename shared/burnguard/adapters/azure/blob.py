"""Azure Blob Storage as an :class:`~burnguard.ports.objects.ObjectStore`: ``bucket`` is the
container, ``key`` the blob name. Objects are streamed chunk by chunk
(``StorageStreamDownloader.chunks()``, chunks of the client's ``max_chunk_get_size``, 4 MiB by
default); nothing but a manifest is ever read whole."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, Any

from burnguard.core.errors import InputError

#: Actions the store calls (least privilege: "Storage Blob Data Reader" on the export container).
PERMISSIONS: tuple[str, ...] = (
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
)

#: A manifest larger than this is not a manifest (Cost Management writes a few KiB).
MAX_MANIFEST_BYTES = 16 << 20


class ChunkStream(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (a blob download's ``chunks()``).

    Holds at most one chunk; errors of the download while reading are raised as
    :class:`InputError` naming the blob."""

    def __init__(self, chunks: Iterator[bytes], name: str):
        self._chunks = chunks
        self._held = memoryview(b"")
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._held:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:  # azure.core.exceptions.AzureError, connection errors
                raise InputError(f"blob download failed: {type(exc).__name__}: {exc}", file=self.name) from None
            self._held = memoryview(chunk)
        n = min(len(buffer), len(self._held))
        buffer[:n] = self._held[:n]
        self._held = self._held[n:]
        return n


class BlobStore:
    """``client`` is an ``azure.storage.blob.BlobServiceClient`` (the function's managed
    identity on the export storage account, or a connection string for Azurite)."""

    def __init__(self, client: Any):
        self.client = client

    def _download(self, bucket: str, key: str) -> Any:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return self.client.get_blob_client(bucket, key).download_blob()
        except ResourceNotFoundError:
            raise InputError(f"blob not found in container {bucket!r}", file=key) from None
        except AzureError as exc:
            raise InputError(f"cannot read blob in container {bucket!r}: {type(exc).__name__}: {exc}",
                             file=key) from None

    def open(self, bucket: str, key: str) -> IO[bytes]:
        downloader = self._download(bucket, key)
        return io.BufferedReader(ChunkStream(iter(downloader.chunks()), key), buffer_size=1 << 20)

    def read(self, bucket: str, key: str) -> bytes:
        downloader = self._download(bucket, key)
        size = downloader.size
        if size is not None and size > MAX_MANIFEST_BYTES:
            raise InputError(f"{size:,} bytes is too large for a manifest", file=key)
        return ChunkStream(iter(downloader.chunks()), key).readall() or b""

    def local_path(self, bucket: str, key: str) -> str | None:
        return None
