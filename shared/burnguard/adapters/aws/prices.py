"""The AWS Price List Query API (``pricing:GetProducts``): public on-demand prices of EC2
instance types, read with boto3's paginator. Read by ``burnguard prices refresh``; it needs AWS
credentials with ``pricing:GetProducts`` (the API is served from us-east-1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from burnguard.core.prices import AWS_LOCATIONS, PriceEntry, aws_price_list_items

PERMISSIONS: tuple[str, ...] = ("pricing:GetProducts",)


def default_client() -> Any:
    import boto3

    return boto3.client("pricing", region_name="us-east-1")


class AwsPriceList:
    def __init__(self, client: Any = None):
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_client()
        return self._client

    def prices(self, instance_types: Iterable[str], region: str = "us-east-1") -> list[PriceEntry]:
        """Linux, shared tenancy, no pre-installed software, on-demand: one query per type."""
        location = AWS_LOCATIONS.get(region, region)
        out: list[PriceEntry] = []
        for itype in instance_types:
            filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in (
                ("instanceType", itype), ("location", location), ("operatingSystem", "Linux"),
                ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"))]
            for page in self.client.get_paginator("get_products").paginate(
                    ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1"):
                out += aws_price_list_items(page.get("PriceList", []), region)
        return out
