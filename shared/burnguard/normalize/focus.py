"""Placeholder until the focus reader lands."""

from __future__ import annotations

from .base import Format, Header, Plan, ReadContext


class FocusFormat(Format):
    name = "focus"
    description = "focus (not yet implemented)"

    def score(self, header: Header) -> int:
        return 0

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        raise NotImplementedError
