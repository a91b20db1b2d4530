"""Instances the clouds list without a price get the list price of the shipped table; an
instance with a price keeps it; a type the table does not know stays unpriced."""

from __future__ import annotations

from decimal import Decimal

from burnguard.core.instances import Instance
from burnguard.core.prices import PriceEntry, PriceTable
from burnguard.services.pricing import ListPricedController

TABLE = PriceTable("2024-09-01", "USD", (PriceEntry("aws", "p4d.24xlarge", "us-east-1", Decimal("32.7726")),
                                         PriceEntry("aws", "p4d.24xlarge", "eu-west-1", Decimal("35.0")),))


class Listed:
    """An instance controller whose cloud API gives no price (as EC2's does not)."""

    cloud = "aws"

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.stopped: list[str] = []

    def find(self, key: str, value: str | None) -> list[Instance]:
        return list(self.instances)

    def stop(self, instance: Instance) -> None:
        self.stopped.append(instance.instance_id)

    def start(self, instance: Instance) -> None:
        raise AssertionError("not called")


def test_unpriced_instances_get_the_list_price_of_their_region() -> None:
    inner = Listed([
        Instance("aws", "i-1", "a", "us-east-1a", "p4d.24xlarge", "running"),
        Instance("aws", "i-2", "b", "eu-west-1b", "p4d.24xlarge", "running"),
        Instance("aws", "i-3", "c", "us-east-1a", "p4d.24xlarge", "running", hourly_cost=Decimal("19.1"),
                 currency="USD"),
        Instance("aws", "i-4", "d", "us-east-1a", "x9.unknown", "running"),
    ])
    found = {i.instance_id: (i.hourly_cost, i.currency) for i in ListPricedController(inner, TABLE).find("team", "ml")}
    assert found == {"i-1": (Decimal("32.7726"), "USD"), "i-2": (Decimal("35.0"), "USD"),
                     "i-3": (Decimal("19.1"), "USD"), "i-4": (None, None)}
    ListPricedController(inner, TABLE).stop(inner.instances[0])
    assert inner.stopped == ["i-1"]
