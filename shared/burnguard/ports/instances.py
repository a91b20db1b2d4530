"""Instance controllers: find, stop and start the instances of one cloud (never terminate)."""

from __future__ import annotations

from typing import Protocol

from burnguard.core.errors import BurnguardError
from burnguard.core.instances import Instance


class ActionError(BurnguardError):
    """An instance could not be stopped or started (the reason is the message)."""


class InstanceController(Protocol):
    """Finds, stops and starts instances of one cloud. Never terminates."""

    cloud: str

    def find(self, key: str, value: str | None) -> list[Instance]:
        """Instances carrying tag ``key`` (case-insensitive) with ``value`` (any if ``None``)."""
        ...

    def stop(self, instance: Instance) -> None:
        """Stop (Azure: deallocate) ``instance``; raise :class:`ActionError` on failure."""
        ...

    def start(self, instance: Instance) -> None:
        """Start ``instance`` again; raise :class:`ActionError` on failure."""
        ...

