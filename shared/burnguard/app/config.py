"""What every cloud function's composition root shares: the configuration error that names the
variable, and the ledger named by ``BURNGUARD_LEDGER``.

Adapters are imported when a ledger is opened, never at import (a cold start pays only for
its own store's SDK).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from burnguard.core.errors import BurnguardError

if TYPE_CHECKING:  # the services are not imported at cold start for a type
    from burnguard.services.meter import EstimatingLedger

POLICY = "BURNGUARD_POLICY"
LEDGER = "BURNGUARD_LEDGER"
#: the shared queue, ``projects/<p>/topics/<t>`` (every ingest and budget function)
TOPIC = "BURNGUARD_TOPIC"

_TOPIC_PATH = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")

_FIRESTORE_URL = re.compile(r"^firestore://projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])"
                            r"/databases/(?P<database>\(default\)|[a-z][a-z0-9-]{2,62})$")


class ConfigurationError(BurnguardError):
    """The function's environment is missing something, is malformed, or asks for what does
    not exist (the message names the variable)."""


def open_ledger(url: str, client: Any = None, *, credentials: Any = None) -> EstimatingLedger:
    """The ledger of ``BURNGUARD_LEDGER``: ``sqlite:///<path>`` (development: one file per
    instance) or ``firestore://projects/<p>/databases/<d>[?prefix=<collection prefix>]``. Both
    keep the live estimate too (:class:`~burnguard.ports.ledger.EstimateLog`).
    ``credentials``: Google credentials of the Firestore client built when ``client`` is not
    given (outside Google Cloud: federated ones; ``None``: the default credentials)."""
    if url.startswith("sqlite:///"):
        from burnguard.adapters.local.ledger import SqliteLedger

        return SqliteLedger(url.removeprefix("sqlite:///") or ":memory:")
    if url.startswith("firestore://"):
        return open_firestore_ledger(url, client, credentials=credentials)
    raise ConfigurationError(f"{LEDGER} must be sqlite:///<path> or firestore://projects/<p>/databases/<d>, "
                             f"not {url[:40]!r}")


def open_firestore_ledger(url: str, client: Any = None, *, credentials: Any = None) -> EstimatingLedger:
    """``firestore://projects/<p>/databases/<d>[?prefix=<collection prefix>]``."""
    from burnguard.adapters.gcp.firestore import FirestoreLedger

    parts = urlsplit(url)
    match = _FIRESTORE_URL.match(f"{parts.scheme}://{parts.netloc}{parts.path}")
    if match is None:
        raise ConfigurationError(f"{LEDGER} must be firestore://projects/<project>/databases/<database>, "
                                 f"not {url[:80]!r}")
    prefix = parse_qs(parts.query).get("prefix", ["burnguard_"])[0]
    if client is None:
        from google.cloud import firestore

        client = firestore.Client(project=match["project"], database=match["database"], credentials=credentials)
    return FirestoreLedger(client, prefix=prefix)


def topic_path(env: Mapping[str, str], name: str = TOPIC) -> str:
    """A Pub/Sub topic's full path from the environment variable ``name``."""
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set (projects/<project>/topics/<topic>)")
    if not _TOPIC_PATH.match(value):
        raise ConfigurationError(f"{name} must be projects/<project>/topics/<topic>, not {value[:80]!r}")
    return value
