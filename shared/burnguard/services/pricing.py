"""Instances priced at the public list price when their cloud's API gives none.

EC2, Compute Engine and Azure list instances without a price; the guardrail orders stops by
hourly cost (most expensive first) and tells the saving of a stop. :class:`ListPricedController`
wraps any controller and fills ``hourly_cost`` from the shipped price table (or the one
``burnguard prices refresh`` wrote) for instances that have none; an instance with a price of
its own keeps it. The notifier then says the saving is at list price where the billing data does
not price the instance (``notify/saving.py``).
"""

from __future__ import annotations

from dataclasses import replace

from burnguard.core.instances import Instance
from burnguard.core.prices import PriceTable
from burnguard.ports.instances import InstanceController


class ListPricedController:
    """:class:`InstanceController` ``inner``, with list prices for the instances it finds unpriced."""

    def __init__(self, inner: InstanceController, prices: PriceTable):
        self.inner = inner
        self.prices = prices
        self.cloud = inner.cloud

    def find(self, key: str, value: str | None) -> list[Instance]:
        return [self._priced(i) for i in self.inner.find(key, value)]

    def stop(self, instance: Instance) -> None:
        self.inner.stop(instance)

    def start(self, instance: Instance) -> None:
        self.inner.start(instance)

    def _priced(self, instance: Instance) -> Instance:
        if instance.hourly_cost is not None:
            return instance
        price = self.prices.price(instance.cloud, instance.instance_type, instance.price_location)
        if price is None:
            return instance
        return replace(instance, hourly_cost=price, currency=self.prices.currency)
