"""Placeholder until the gcp reader lands."""

from __future__ import annotations

from .base import Format, Header, Plan, ReadContext


class GcpBillingFormat(Format):
    name = "gcp"
    description = "gcp (not yet implemented)"

    def score(self, header: Header) -> int:
        return 0

    def plan(self, header: Header, ctx: ReadContext) -> Plan:
        raise NotImplementedError
