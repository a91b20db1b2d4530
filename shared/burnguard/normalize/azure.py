"""Placeholder until the azure reader lands."""

from __future__ import annotations

from .base import Format, Header, Plan, ReadContext


class AzureCostFormat(Format):
    name = "azure"
    description = "azure (not yet implemented)"

    def score(self, header: Header) -> int:
        return 0

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        raise NotImplementedError
