"""The embedded notifier: Slack messages printed as text (and kept, for the summary)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from burnguard.ports.notify import Notification


@dataclass
class ConsoleNotifier:
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    sent: list[Notification] = field(default_factory=list)
    quiet: bool = False

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)
        if self.quiet:
            return
        channel = notification.channel or "(no channel)"
        lines = notification.text.splitlines() or [""]
        self.stream.write(f"\n[slack {channel}] {lines[0]}\n")
        for line in lines[1:]:
            self.stream.write(f"    {line}\n")
        self.stream.flush()
