"""S3 as an :class:`~burnguard.ports.objects.ObjectStore`, and the marker objects that make a
repeated delivery event harmless.

``open`` returns a *streaming* reader: a ``GetObject`` body read in pieces, never the whole
object in memory. The reader is seekable: a seek starts a new ranged ``GetObject``
(``Range: bytes=N-``) from that offset, so the normalizer can re-read a file from the start
(to name a malformed row) without holding it. Every ``GetObject`` of one reader pins the
object's ETag (``IfMatch``): a file replaced while it is being read fails clearly instead of
mixing two versions.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import IO, Any

from burnguard.core.errors import InputError

#: Actions the store calls (least privilege: read the export bucket; write only the marker prefix).
PERMISSIONS: tuple[str, ...] = ("s3:GetObject", "s3:PutObject", "s3:ListBucket")

READ_BUFFER = 1 << 20


class TransientStoreError(Exception):
    """S3 could not be read now (throttling, a part not written yet): try the event again."""


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only stream over one S3 object, one ``GetObject`` per (re)positioning."""

    def __init__(self, client: Any, bucket: str, key: str):
        super().__init__()
        self._client = client
        self.bucket = bucket
        self.key = key
        self._pos = 0
        self._body: Any = None
        self._etag: str | None = None
        self.size: int | None = None
        self.requests = 0
        self._get(0)

    def _get(self, offset: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._body is not None:
            self._body.close()
            self._body = None
        if self.size is not None and offset >= self.size:
            self._pos = offset
            return
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        if self._etag:
            kwargs["IfMatch"] = self._etag
        try:
            response = self._client.get_object(**kwargs)
        except ClientError as exc:
            code = _client_error_code(exc)
            where = f"s3://{self.bucket}/{self.key}"
            if code in ("NoSuchKey", "404", "NotFound"):
                raise TransientStoreError(f"{where}: no such object (not written yet?)") from None
            if code in ("PreconditionFailed", "412"):
                raise InputError("object was replaced while it was read (its ETag changed)", file=where) from None
            if code in ("AccessDenied", "403"):
                raise InputError("access denied (the role needs s3:GetObject on it)", file=where) from None
            raise TransientStoreError(f"{where}: GetObject failed ({code or exc})") from None
        except BotoCoreError as exc:
            raise TransientStoreError(f"s3://{self.bucket}/{self.key}: GetObject failed ({exc})") from None
        self.requests += 1
        self._etag = self._etag or response.get("ETag")
        if self.size is None:
            self.size = offset + int(response.get("ContentLength", 0))
        self._body = response["Body"]
        self._pos = offset

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            offset += self.size or 0
        if offset < 0:
            raise ValueError("negative seek position")
        if offset != self._pos or self._body is None:
            self._get(offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            return 0
        data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()


class S3Store:
    """:class:`~burnguard.ports.objects.ObjectStore` on S3. ``client`` is a boto3 S3 client
    (built lazily, with the default chain, when none is given)."""

    def __init__(self, client: Any = None):
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def open(self, bucket: str, key: str) -> IO[bytes]:
        return io.BufferedReader(S3RangeReader(self.client, bucket, key), buffer_size=READ_BUFFER)

    def read(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as fh:
            return fh.read()

    def local_path(self, bucket: str, key: str) -> str | None:
        return None

    def head(self, bucket: str, key: str) -> Mapping[str, Any] | None:
        """The object's metadata (``ETag``, ``ContentLength``...), ``None`` when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            response: Mapping[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return response


class S3Markers:
    """Small JSON records under ``s3://bucket/prefix``: which deliveries were published, and
    the per-part summaries of a delivery ingested part by part (see ``services/parts``)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "burnguard-state/"):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/"

    def _key(self, name: str) -> str:
        return self.prefix + name

    def get(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except ClientError as exc:
            if _client_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        value: dict[str, Any] = json.loads(body)
        return value

    def put(self, name: str, value: Mapping[str, Any]) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=json.dumps(value).encode(),
                               ContentType="application/json")

    def list(self, folder: str) -> list[str]:
        """Names (relative to the prefix) of the records under ``folder``, every page."""
        paginator = self.client.get_paginator("list_objects_v2")
        names: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(folder.rstrip("/") + "/")):
            names.extend(o["Key"][len(self.prefix):] for o in page.get("Contents", []))
        return names
