"""Slash commands finished later in ``burnguard serve``: a background thread of the same process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from burnguard.ports.slack import CommandRequest


class ThreadDeferrer:
    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def defer(self, request: CommandRequest, run: Callable[[CommandRequest], None]) -> None:
        thread = threading.Thread(target=run, args=(request,), daemon=True,
                                  name=f"burnguard-slash-{request.request_id[:12]}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the deferred completions started so far (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

