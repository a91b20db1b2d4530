"""Billing export normalizers: any cloud's export in, canonical FOCUS-named line items out."""

from .base import Header, ReadContext
from .reader import CHUNK_ROWS, FileStats, Normalizer, detect, registry

__all__ = ["CHUNK_ROWS", "FileStats", "Header", "Normalizer", "ReadContext", "detect", "registry"]
