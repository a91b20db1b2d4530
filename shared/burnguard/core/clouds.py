"""The clouds burnguard knows: their ids (the ``x_Cloud`` codes, policy ``clouds:``, instance
``cloud``) and the names people read. Every module takes them from here."""

from __future__ import annotations

from typing import Final, Literal

Cloud = Literal["aws", "gcp", "azure"]

AWS: Final = "aws"
GCP: Final = "gcp"
AZURE: Final = "azure"
#: Line items of a FOCUS export whose provider is none of the three.
OTHER: Final = "other"

CLOUDS: Final[tuple[Cloud, ...]] = (AWS, GCP, AZURE)

CLOUD_NAMES: Final[dict[str, str]] = {AWS: "AWS", GCP: "Google Cloud", AZURE: "Azure", OTHER: "other"}


def cloud_name(cloud: str) -> str:
    """The name people read for a cloud id (the id itself when unknown)."""
    return CLOUD_NAMES.get(cloud, cloud)
