"""Billing export normalizers: any cloud's export in, canonical FOCUS-named line items out."""

from burnguard.normalize.base import Header, ReadContext
from burnguard.normalize.reader import CHUNK_ROWS, FileStats, Normalizer, detect, registry

__all__ = ["CHUNK_ROWS", "FileStats", "Header", "Normalizer", "ReadContext", "detect", "registry"]
