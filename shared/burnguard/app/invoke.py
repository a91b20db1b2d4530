"""``burnguard invoke CLOUD FUNCTION EVENT.json``: run a cloud function's handler on this
machine on a sample event (``events/``), and print what it published or decided as JSON.

Each cloud's composition root (``burnguard.app.aws``, ``burnguard.app.gcp``,
``burnguard.app.azure``) registers its functions in :data:`INVOKERS` through
:func:`invoker`; this module only dispatches. With nothing configured (no cloud environment
variables) a function runs on the embedded queue and ledger of ``--home``, so it works on a
fresh clone; with the cloud's variables set (an emulator's or a real account's) it uses those.
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burnguard.core.clouds import CLOUDS
from burnguard.core.errors import InputError
from burnguard.core.messages import LINE_ITEMS, Message
from burnguard.ports.objects import Publish


@dataclass(frozen=True)
class InvokeContext:
    """What the CLI hands an invoker: the embedded state directory (when no cloud is
    configured) and the environment to read settings from."""

    home: Path
    env: Mapping[str, str]


#: (cloud, function) -> invoker: event in, a JSON-able report out.
Invoker = Callable[[Any, InvokeContext], Mapping[str, Any]]
INVOKERS: dict[tuple[str, str], Invoker] = {}


def invoker(cloud: str, function: str) -> Callable[[Invoker], Invoker]:
    """Register ``fn`` as ``burnguard invoke <cloud> <function>``."""

    def register(fn: Invoker) -> Invoker:
        INVOKERS[(cloud, function)] = fn
        return fn

    return register


def functions_of(cloud: str) -> list[str]:
    _load(cloud)
    return sorted(f for c, f in INVOKERS if c == cloud)


def _load(cloud: str) -> None:
    if cloud not in CLOUDS:
        raise InputError(f"unknown cloud {cloud!r}; one of {', '.join(CLOUDS)}", field="cloud")
    try:
        importlib.import_module(f"burnguard.app.{cloud}")
    except ModuleNotFoundError as exc:
        if exc.name == f"burnguard.app.{cloud}":
            return  # that cloud's functions are not part of this build
        raise InputError(f"the {cloud} functions need their extra: pip install 'burnguard[{cloud}]' "
                         f"({exc.name} is missing)") from None


def invoke(cloud: str, function: str, event_path: Path, ctx: InvokeContext) -> Mapping[str, Any]:
    _load(cloud)
    fn = INVOKERS.get((cloud, function))
    if fn is None:
        known = ", ".join(functions_of(cloud)) or "none yet"
        raise InputError(f"no {cloud} function {function!r} (known: {known})", field="function")
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{event_path}: no such file") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{event_path}: not a JSON event ({exc})") from None
    return fn(event, ctx)


def describe_published(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The one shape of a published message in what ``burnguard invoke`` prints (and in the
    functions' own reports, the three clouds alike): the message's attributes (``kind``,
    ``message_id``, ``delivery_id``…) at the top, ``bytes`` (the payload's size) and ``data``
    (the payload, decoded, for the JSON kinds: delivery summary, budget alert; a line-items
    chunk is Arrow IPC and has no ``data``)."""
    out = []
    for m in messages:
        entry: dict[str, Any] = {**m.attributes, "bytes": len(m.data)}
        if m.kind != LINE_ITEMS:
            with contextlib.suppress(ValueError):
                entry["data"] = json.loads(m.data)
        out.append(entry)
    return out


class RecordingPublish:
    """A :data:`~burnguard.ports.objects.Publish` that passes messages on and remembers them
    (what an invoked function published; a function's log line)."""

    def __init__(self, publish: Publish):
        self.publish = publish
        self.messages: list[Message] = []

    def __call__(self, messages: Sequence[Message]) -> None:
        self.publish(messages)
        self.messages.extend(messages)

    def report(self) -> list[dict[str, Any]]:
        """What was published, in :func:`describe_published`'s shape."""
        return describe_published(self.messages)
