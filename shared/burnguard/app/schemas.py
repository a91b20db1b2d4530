"""JSON Schemas of the read commands' ``--json`` output (``burnguard schema COMMAND``).

These keys are the stable interface for scripts: a key is added, never renamed or removed,
without a new major version. Amounts are decimal strings rounded to cents (exact, never
floats); times are ISO 8601 UTC with a ``Z``; ``null`` where a value does not apply.
"""

from __future__ import annotations

from typing import Any

_AMOUNT: dict[str, Any] = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal, in currency"}
_AMOUNT_OR_NULL: dict[str, Any] = {"anyOf": [_AMOUNT, {"type": "null"}]}
_TIME: dict[str, Any] = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"}
_TIME_OR_NULL: dict[str, Any] = {"anyOf": [_TIME, {"type": "null"}]}
_STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_CURRENCY: dict[str, Any] = {"type": "string", "pattern": "^[A-Z]{3}$"}


def _obj(props: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": sorted(props), "properties": props,
                           "additionalProperties": False}
    if title:
        out = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **out}
    return out


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


_VALUE = _obj({"value": _STR_OR_NULL, "currency": _CURRENCY, "amount": _AMOUNT, "gpu_amount": _AMOUNT})
_RESOURCE = _obj({"resource_id": {"type": "string"}, "name": _STR_OR_NULL, "cloud": {"type": "string"},
                  "instance_type": _STR_OR_NULL, "gpu": {"type": "boolean"}, "currency": _CURRENCY,
                  "amount": _AMOUNT})

SCHEMAS: dict[str, dict[str, Any]] = {
    "spend": _obj({
        "scope": {"type": "string", "description": "key=value or key=*"},
        "period": {"type": "string"},
        "basis": {"enum": ["effective", "billed"]},
        "as_of": _TIME,
        "totals": _array(_obj({"currency": _CURRENCY, "amount": _AMOUNT, "gpu_amount": _AMOUNT})),
        "values": _array(_VALUE),
        "per_cloud": _array(_obj({"cloud": {"type": "string"}, "currency": _CURRENCY, "amount": _AMOUNT})),
        "services": _array(_obj({"cloud": {"type": "string"}, "service": {"type": "string"},
                                 "currency": _CURRENCY, "amount": _AMOUNT})),
        "top_resources": _array(_RESOURCE),
    }, "burnguard spend --json"),
    "top": _obj({
        "period": {"type": "string"}, "as_of": _TIME, "scope": _STR_OR_NULL, "by": _STR_OR_NULL,
        "resources": _array(_RESOURCE), "values": _array(_VALUE),
    }, "burnguard top --json"),
    "guardrails": _obj({
        "as_of": _TIME,
        "guardrails": _array(_obj({
            "guardrail": {"type": "string"}, "scope": {"type": "string"}, "period": {"type": "string"},
            "currency": {"anyOf": [_CURRENCY, {"type": "null"}]}, "spend": _AMOUNT_OR_NULL,
            "budget": _AMOUNT_OR_NULL, "percent": _AMOUNT_OR_NULL, "forecast": _AMOUNT_OR_NULL,
            "gpu_per_hour": _AMOUNT_OR_NULL, "state": {"type": "string"},
            "estimated": {**_AMOUNT_OR_NULL, "description": "the part of spend that is the live estimate"},
            "projection": {**_STR_OR_NULL, "description": "when the next threshold is crossed at the current rate"},
        })),
    }, "burnguard guardrails --json"),
    "estimates": _obj({
        "coverage": {"type": "object", "additionalProperties": _TIME,
                     "description": "per cloud, the end of the hours counted deliveries cover"},
        "estimates": _array(_obj({
            "cloud": {"enum": ["aws", "gcp", "azure"]}, "instance_id": {"type": "string"},
            "instance_type": {"type": "string"},
            "rate_source": {"enum": ["billing:instance", "billing:type@region", "billing:type", "price-table"]},
            "currency": _CURRENCY, "amount": _AMOUNT, "hours": _AMOUNT, "from": _TIME,
            "accrued_until": _TIME_OR_NULL})),
        "accuracy": _array(_obj({
            "instance_type": {"type": "string"}, "rate_source": {"type": "string"},
            "instances": {"type": "integer", "minimum": 0}, "hours": _AMOUNT, "estimated": _AMOUNT,
            "billed": _AMOUNT, "currency": _CURRENCY, "error_percent": _AMOUNT_OR_NULL})),
        "projections": _array(_obj({
            "guardrail": {"type": "string"}, "scope": {"type": "string"}, "rate_per_hour": _AMOUNT,
            "currency": _CURRENCY, "threshold": {"type": "string"}, "at": _TIME_OR_NULL})),
    }, "burnguard estimates --json"),
    "deliveries": _obj({
        "deliveries": _array(_obj({
            "delivery_id": {"type": "string"}, "provider": {"enum": ["aws", "gcp", "azure"]},
            "source": {"type": "string"}, "billing_period": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
            "version": {"type": "string"}, "produced_at": _TIME_OR_NULL,
            "status": {"enum": ["waiting", "complete", "rejected", "superseded"]}, "counted": {"type": "boolean"},
            "rows": {"type": "integer", "minimum": 0}, "reason": {"type": "string"},
            "received_at": _TIME_OR_NULL, "completed_at": _TIME_OR_NULL})),
    }, "burnguard deliveries --json"),
    "stopped": _obj({
        "stops": _array(_obj({
            "guardrail": {"type": "string"}, "scope": {"type": "string"}, "cloud": {"enum": ["aws", "gcp", "azure"]},
            "instance_id": {"type": "string"}, "name": _STR_OR_NULL, "location": {"type": "string"},
            "instance_type": {"type": "string"}, "stopped_at": _TIME, "dry_run": {"type": "boolean"},
            "resumed_at": _TIME_OR_NULL, "hourly_cost": _AMOUNT_OR_NULL,
            "currency": {"anyOf": [_CURRENCY, {"type": "null"}]},
            "state": {"enum": ["stopped", "resumed", "dry-run"]}})),
    }, "burnguard stopped --json"),
    "audit": _obj({
        "total": {"type": "integer", "minimum": 0, "description": "events matching the filters"},
        "shown": {"type": "integer", "minimum": 0},
        "events": _array(_obj({
            "at": _TIME, "kind": {"type": "string"}, "actor": {"type": "string"},
            "outcome": {"type": "string"}, "guardrail": _STR_OR_NULL, "scope": _STR_OR_NULL,
            "details": {"type": "object"}})),
    }, "burnguard audit --json"),
}
