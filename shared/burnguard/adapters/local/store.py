"""A local directory as an object store: ``bucket`` is a directory, ``key`` a relative path."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from burnguard.core.errors import InputError


class DirectoryStore:
    def _path(self, bucket: str, key: str) -> Path:
        root = Path(bucket).resolve()
        path = (root / key).resolve()
        if root not in path.parents and path != root:
            raise InputError("key points outside its bucket", file=key)
        return path

    def open(self, bucket: str, key: str) -> IO[bytes]:
        path = self._path(bucket, key)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot open ({exc.strerror})", file=str(path)) from None

    def read(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as fh:
            return fh.read()

    def local_path(self, bucket: str, key: str) -> str | None:
        return str(self._path(bucket, key))
