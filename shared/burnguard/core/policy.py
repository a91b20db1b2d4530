"""The guardrail policy: a YAML file validated into frozen pydantic models.

A policy says, per tag scope, how much may be spent and what happens when it is::

    version: 1
    safety:                         # also accepted under the name "defaults"
      dry_run: true                 # default true: decide and log, never call the cloud
      protect_tag: burnguard:protect=true
      max_stops_per_run: 10
      gpu_only: true
    slack:
      channel: "#gpu-spend"
      authorized_users: [U012ABCDEF]          # may snooze / resume
    guardrails:
      - name: ml-research-monthly             # kebab-case, unique
        scope: team=ml-research                # or project=* : every value is its own budget
        clouds: [aws, gcp, azure]              # default: all three
        period: month                          # month | day (UTC calendar) | rolling:7d | rolling:36h
        budget: 5000 USD                       # or {amount: 5000, currency: USD}
        cost: effective                        # or billed
        basis: billed+estimated                # default: the bill plus the live estimate of the
                                               # hours no bill covers yet; billed: the bill only
        thresholds:
          - {at: 80%, actions: [notify]}       # a bare number is a share: 0.8 = 80%
          - {at: 100%, actions: [notify, stop]}
        forecast_thresholds:                   # month periods only
          - {at: 100%, actions: [notify]}
        burn_rate:                             # GPU spend per hour over the last window_hours of data
          gpu_per_hour: {limit: 120, currency: USD}
          window_hours: 6
          actions: [notify]
        notify_channel: "#ml-research"         # overrides slack.channel
        budget_notifications:                  # native budget alerts that speak for this scope
          aws: ["Test Budget"]                 # budget names ({name, account} to pin an account)
          gcp: ["name-of-budget"]              # budget ids or display names
          azure: ["test-budgetName"]           # budget names or resource ids
          actions: [notify]                    # on an actual crossing (default [notify])
          forecast_actions: [notify]           # on a forecasted one (default [notify])

Safety rules that no policy can switch off (``ARCHITECTURE.md`` rule 5):

* **never terminate**: a stop is EC2 stop, GCE stop, Azure VM deallocate. ``never_terminate`` is
  implicit; writing ``never_terminate: false`` is an error.
* the protect tag wins over every scope. Its key matches case-insensitively, and also with its
  ``:`` written ``-`` or ``_`` (Google Cloud label keys cannot hold ``:``, so on GCE the default
  tag is the label ``burnguard-protect=true``); its value matches case-insensitively too
  (``True`` protects as well as ``true``: the comparison errs on the side of not stopping).
* ``stop`` acts on GPU instances only, unless ``gpu_only: false`` *and* ``allow_non_gpu: true``.

This module is validated data and small pure helpers (period windows, threshold amounts,
native-alert mapping); deciding what to do is the guardrail evaluation's job.

:func:`load_policy` reports every error at once, each with the YAML line and the field path::

    policy.yaml, line 12, field guardrails[1].thresholds[0].at: must be a percentage like "80%" ...
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from burnguard.core.actions import ACTIONS
from burnguard.core.budget import plain_decimal
from burnguard.core.clouds import AZURE, CLOUDS, Cloud
from burnguard.core.errors import InputError
from burnguard.core.money import ISO_4217, Money, NumberError, parse_amount
from burnguard.core.periods import Period, PeriodField, parse_period
from burnguard.core.tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH, tag_value
from burnguard.core.timeparse import require_utc

if TYPE_CHECKING:
    from burnguard.core.budget import BudgetAlert



def _known_action(value: object) -> str:
    if isinstance(value, str) and value in ACTIONS:
        return value
    raise PydanticCustomError("action", "must be {choices}, got {got}",
                              {"choices": ACTIONS.choices(), "got": repr(value)})


#: An action name of :data:`burnguard.core.actions.ACTIONS` (``notify``, ``stop``, ...).
Action = Annotated[
    str,
    PlainValidator(_known_action),
    WithJsonSchema({"type": "string", "enum": list(ACTIONS.names())}),
]
CostBasis = Literal["effective", "billed"]
#: What a guardrail counts: the bill plus the live estimate (``burnguard meter``), or the bill only.
SpendBasis = Literal["billed+estimated", "billed"]

DEFAULT_PROTECT_TAG = "burnguard:protect=true"
#: ``at`` must be above 0 % and at most this many percent.
MAX_PERCENT = Decimal(1000)
MAX_WINDOW_HOURS = 168

_KEBAB = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_CHANNEL = r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$"
_USER = r"^[UW][A-Z0-9]{2,}$"
_CURRENCY = r"^[A-Z]{3}$"
_PERCENT_TEXT = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%\s*$")
_MONEY_TEXT = re.compile(
    r"^\s*(?:(?P<a>[0-9][0-9_,]*(?:\.[0-9]+)?)\s*(?P<c>[A-Za-z]{3})|(?P<c2>[A-Za-z]{3})\s*(?P<a2>[0-9][0-9_,]*(?:\.[0-9]+)?))\s*$"
)
_MONEY_PATTERN = r"^\s*([0-9][0-9_,]*(\.[0-9]+)?\s*[A-Za-z]{3}|[A-Za-z]{3}\s*[0-9][0-9_,]*(\.[0-9]+)?)\s*$"
_SCOPE_PATTERN = r"^[^=]+=[^=]*[^=\s][^=]*$"


_plain = plain_decimal


# --------------------------------------------------------------------------- percentages


def parse_percent(value: object) -> Decimal:
    """A threshold as a Decimal number of percent: ``"80%"`` → 80, ``0.8`` → 80, ``"12.5%"`` → 12.5.

    Text must end with ``%``, or be a bare number; a bare number is a *share* of the budget
    (``0.8`` = 80 %, ``1.2`` = 120 %). The result is in ``(0, 1000]``; anything else raises a
    ``PydanticCustomError`` whose message says what to write.
    """
    if isinstance(value, bool):
        raise PydanticCustomError("percentage", 'must be a percentage like "80%", not a yes/no value')
    bare = True
    if isinstance(value, str):
        m = _PERCENT_TEXT.match(value)
        if m:
            percent, bare = Decimal(m.group(1)), False
        else:
            try:
                share = parse_amount(value) if re.fullmatch(r"\s*[+-]?[\d.]+\s*", value) else None
            except NumberError:
                share = None
            if share is None:
                raise PydanticCustomError(
                    "percentage", 'must be a percentage like "80%" (or a share of the budget like 0.8), got {got}',
                    {"got": _shown(value)},
                )
            percent = share * 100
    elif isinstance(value, (int, Decimal)):
        percent = Decimal(value) * 100
    elif isinstance(value, float):
        percent = Decimal(repr(value)) * 100
    else:
        raise PydanticCustomError("percentage", 'must be a percentage like "80%", got {got}', {"got": _shown(value)})
    if not percent.is_finite() or percent <= 0 or percent > MAX_PERCENT:
        hint = " (a bare number is a share of the budget: 0.8 means 80%)" if bare else ""
        raise PydanticCustomError(
            "percentage_range",
            "must be above 0% and at most {max}%, got {got}{hint}",
            {"max": str(MAX_PERCENT), "got": format_percent(percent) if percent.is_finite() else _shown(value),
             "hint": hint},
        )
    return _plain(percent)


def format_percent(percent: Decimal) -> str:
    """``Decimal(80)`` → ``"80%"``; :func:`parse_percent` reads it back to the same value."""
    return f"{_plain(percent)}%"


Percent = Annotated[
    Decimal,
    BeforeValidator(
        parse_percent,
        json_schema_input_type=Annotated[str, StringConstraints(pattern=r"^\s*[0-9.]+\s*%?\s*$")] | float,
    ),
    PlainSerializer(format_percent, return_type=str),
]


# --------------------------------------------------------------------------- tag selectors, periods


@dataclass(frozen=True, slots=True)
class TagSelector:
    """``key=value`` (``value`` compared exactly) or ``key=*`` (``value is None``: any value,
    each its own budget). Keys compare case-insensitively (:mod:`burnguard.core.tags` rule 6)."""

    key: str
    value: str | None

    def __str__(self) -> str:
        return f"{self.key}={'*' if self.value is None else self.value}"

    @property
    def is_wildcard(self) -> bool:
        return self.value is None

    def budget_key(self, tags: Mapping[str, str]) -> str | None:
        """The scope value these tags fall under, or ``None`` when they are out of scope.

        For ``project=*`` it is the tag's own value (one budget per value); an empty value is
        out of scope (an empty ``project`` tag is not a project).
        """
        found = tag_value(tags, self.key)
        if found is None or not found.strip():
            return None
        if self.value is None or found == self.value:
            return found
        return None

    def matches(self, tags: Mapping[str, str]) -> bool:
        return self.budget_key(tags) is not None


def parse_selector(text: object, *, wildcard: bool = True) -> TagSelector:
    if isinstance(text, TagSelector):
        return text
    example = '"team=ml-research", or "project=*" for every value of the key' if wildcard else '"key=value"'
    if not isinstance(text, str):
        raise PydanticCustomError("selector", "must be a tag selector like {example}", {"example": example})
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise PydanticCustomError(
            "selector", "must be a tag selector like {example}, got {got}", {"example": example, "got": repr(text)}
        )
    if "=" in value:
        raise PydanticCustomError("selector", "has more than one '=': {got}", {"got": repr(text)})
    if key.casefold().startswith("user:"):
        raise PydanticCustomError(
            "selector", 'write the tag key without the AWS "user:" prefix (burnguard removes it from CUR columns)'
        )
    if len(key) > MAX_KEY_LENGTH or len(value) > MAX_VALUE_LENGTH:
        raise PydanticCustomError("selector", "tag key or value is too long")
    if value == "*":
        if not wildcard:
            raise PydanticCustomError("selector", "needs one value here, not '*'")
        return TagSelector(key, None)
    if "*" in value:
        raise PydanticCustomError("selector", "'*' stands for a whole value only (\"project=*\"), got {got}",
                                  {"got": repr(text)})
    return TagSelector(key, value)


Scope = Annotated[
    TagSelector,
    PlainValidator(parse_selector),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _SCOPE_PATTERN,
                    "description": "tag selector: key=value, or key=* for one budget per value"}),
]
ProtectTag = Annotated[
    TagSelector,
    PlainValidator(lambda v: parse_selector(v, wildcard=False)),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _SCOPE_PATTERN, "description": "tag key=value"}),
]




# --------------------------------------------------------------------------- small value types


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise PydanticCustomError("unique", "lists {value!r} twice", {"value": v})
        seen.add(v)
    return values


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _pattern(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise PydanticCustomError("pattern", "must be {what}, got {got}", {"what": what, "got": repr(value)})
        return value

    return AfterValidator(check)


def _iso_currency(value: str) -> str:
    if value not in ISO_4217:
        raise PydanticCustomError("currency", "must be an ISO 4217 currency code like \"USD\", got {got}",
                                  {"got": repr(value)})
    return value


Currency = Annotated[
    str,
    BeforeValidator(_upper),
    _pattern(_CURRENCY, 'a three-letter currency code like "USD"'),
    AfterValidator(_iso_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{3}$"}),
]
Actions = Annotated[tuple[Action, ...], Field(min_length=1), AfterValidator(_unique)]
GuardrailName = Annotated[
    str,
    _pattern(_KEBAB, 'kebab-case (lower-case letters, digits, single dashes), like "ml-research-monthly"'),
    WithJsonSchema({"type": "string", "pattern": _KEBAB, "maxLength": 63}),
    StringConstraints(max_length=63),
]
SlackChannel = Annotated[
    str,
    _pattern(_CHANNEL, 'a Slack channel: "#name" (lower case) or a channel id like "C0123ABCD"'),
    WithJsonSchema({"type": "string", "pattern": _CHANNEL}),
]
SlackUserId = Annotated[
    str,
    _pattern(_USER, 'a Slack user id like "U012ABCDEF" (not a name)'),
    WithJsonSchema({"type": "string", "pattern": _USER}),
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _money_text(amount_key: str) -> Any:
    """Read ``"5000 USD"`` (or ``"USD 5000"``, ``"5,000 USD"``) as ``{amount_key: ..., currency: ...}``."""

    def convert(value: object) -> object:
        if not isinstance(value, str) and not isinstance(value, (int, float, Decimal)):
            return value
        m = _MONEY_TEXT.match(value) if isinstance(value, str) else None
        if not m:
            raise PydanticCustomError(
                "money", 'must be an amount and a currency, like "5000 USD" or {example}, got {got}',
                {"example": f"{{{amount_key}: 5000, currency: USD}}", "got": _shown(value)},
            )
        number = (m.group("a") or m.group("a2")).replace("_", "")
        try:
            amount = parse_amount(number)
        except NumberError as exc:
            raise PydanticCustomError("money", "{reason}", {"reason": str(exc)}) from None
        return {amount_key: amount, "currency": m.group("c") or m.group("c2")}

    return convert


class Budget(_Model):
    """The budget of a scope for one period."""

    amount: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    currency: Currency

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class BurnLimit(_Model):
    """A spend rate: ``limit`` per hour."""

    limit: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    currency: Currency

    @property
    def money(self) -> Money:
        return Money(self.limit, self.currency)


BudgetField = Annotated[
    Budget,
    BeforeValidator(_money_text("amount"),
                    json_schema_input_type=Annotated[str, StringConstraints(pattern=_MONEY_PATTERN)] | Budget),
]
BurnLimitField = Annotated[
    BurnLimit,
    BeforeValidator(_money_text("limit"),
                    json_schema_input_type=Annotated[str, StringConstraints(pattern=_MONEY_PATTERN)] | BurnLimit),
]


class Threshold(_Model):
    """A share of the budget (``at``, in percent) and what happens when spend reaches it."""

    at: Percent
    actions: Actions

    @property
    def ratio(self) -> Decimal:
        """``at`` as a share of the budget: 80 % → ``Decimal("0.8")``."""
        return _plain(self.at / 100)

    @property
    def label(self) -> str:
        return format_percent(self.at)

    def amount(self, budget: Budget | Money) -> Money:
        """The spend at which this threshold is reached for ``budget``."""
        money = budget.money if isinstance(budget, Budget) else budget
        return Money(_plain(money.amount * self.at / 100), money.currency)

    def reached_by(self, spent: Decimal, budget: Budget | Money) -> bool:
        """``spent >= amount(budget)`` (reaching the threshold counts, as in "at 100 %")."""
        return spent >= self.amount(budget).amount


class BurnRate(_Model):
    """GPU spend per hour of the scope, over the last ``window_hours`` hours of billing data."""

    gpu_per_hour: BurnLimitField
    window_hours: Annotated[int, Field(ge=1, le=MAX_WINDOW_HOURS)] = 6
    actions: Actions


class NativeBudgetRef(_Model):
    """One native budget: its name (or id) and, optionally, the account that owns it
    (AWS account id, GCP billing account id, Azure subscription id)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    account: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None


def _ref_from_text(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


NativeRef = Annotated[NativeBudgetRef, BeforeValidator(_ref_from_text, json_schema_input_type=str | NativeBudgetRef)]


class BudgetNotifications(_Model):
    """Native budget alerts that stand for this guardrail's scope, and what they trigger."""

    aws: tuple[NativeRef, ...] = ()
    gcp: tuple[NativeRef, ...] = ()
    azure: tuple[NativeRef, ...] = ()
    actions: Actions = ("notify",)
    forecast_actions: Actions = ("notify",)

    @model_validator(mode="after")
    def _some(self) -> BudgetNotifications:
        if not (self.aws or self.gcp or self.azure):
            raise PydanticCustomError("empty", "maps no budget: list names under aws, gcp or azure")
        return self

    def refs(self, provider: str) -> tuple[NativeBudgetRef, ...]:
        refs: tuple[NativeBudgetRef, ...] = getattr(self, provider, ())
        return refs

    def matches(self, alert: BudgetAlert) -> bool:
        """True when ``alert`` comes from one of the listed budgets.

        AWS: the budget name, exactly. GCP: the budget id or the display name, exactly. Azure:
        the budget name or resource id, case-insensitively (Azure resource names are). A ref
        with an ``account`` also requires the alert's account (case-insensitively for Azure ids).
        """
        for ref in self.refs(alert.provider):
            if alert.provider == AZURE:
                names = {alert.budget_name.casefold(), (alert.budget_id or "").casefold()}
                hit = ref.name.casefold() in names
                same_account = ref.account is None or ref.account.casefold() == (alert.account or "").casefold()
            else:
                hit = ref.name in (alert.budget_name, alert.budget_id)
                same_account = ref.account is None or ref.account == alert.account
            if hit and same_account:
                return True
        return False

    def actions_for(self, alert: BudgetAlert) -> tuple[Action, ...]:
        """The actions a crossing of ``alert``'s kind calls for (none for a GCP state update)."""
        if alert.kind == "actual":
            return self.actions
        if alert.kind == "forecasted":
            return self.forecast_actions
        return ()


def _duplicate_names(names: list[object]) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in first:
            out.append((("guardrails", i, "name"), f"duplicate guardrail name {name!r} (guardrails[{first[name]}])"))
        first.setdefault(name, i)
    return out


def _non_gpu_stops(
    gpu_only: object, allow_non_gpu: object, stops: list[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    if gpu_only is not False or allow_non_gpu is True or not stops:
        return []
    return [((
        "safety", "gpu_only"),
        "gpu_only: false would let stop hit non-GPU instances; confirm with allow_non_gpu: true"
        f" (stop is used at {', '.join(stops)})",
    )]


def _touches_instances(raw: object) -> bool:
    """Whether a raw ``actions`` list names an action on instances (``stop``)."""
    return isinstance(raw, list) and any(a in ACTIONS and ACTIONS[a].touches_instances
                                         for a in raw if isinstance(a, str))


def _raw_cross_issues(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """The policy-wide rules, checked on the raw data when the models did not validate (the
    model checks them only once every guardrail is valid), so that all errors come at once."""
    guardrails = data.get("guardrails")
    if not isinstance(guardrails, list):
        return []
    items = [g if isinstance(g, dict) else {} for g in guardrails]
    out = _duplicate_names([g.get("name") for g in items])
    safety = data.get("safety", data.get("defaults"))
    if isinstance(safety, dict):
        stops: list[str] = []
        for i, g in enumerate(items):
            for field in ("thresholds", "forecast_thresholds"):
                entries = g.get(field)
                for j, t in enumerate(entries if isinstance(entries, list) else []):
                    if isinstance(t, dict) and _touches_instances(t.get("actions")):
                        stops.append(f"guardrails[{i}].{field}[{j}]")
            for field, keys in (("burn_rate", ("actions",)), ("budget_notifications", ("actions", "forecast_actions"))):
                part = g.get(field)
                if isinstance(part, dict) and any(_touches_instances(part.get(k)) for k in keys):
                    stops.append(f"guardrails[{i}].{field}")
        out += _non_gpu_stops(safety.get("gpu_only", True), safety.get("allow_non_gpu", False), stops)
    return out


def _issues_error(kind: str, issues: list[tuple[tuple[str | int, ...], str]]) -> PydanticCustomError:
    """An error carrying several (relative location, message) issues; :func:`load_policy`
    spreads them to their own lines, direct construction shows them joined."""
    summary = "; ".join(f"{_dotted(loc) or '(here)'}: {msg}" for loc, msg in issues)
    return PydanticCustomError(kind, "{summary}", {"summary": summary, "issues": tuple(issues)})


class Guardrail(_Model):
    """One scope, its period and what is watched in it."""

    name: GuardrailName
    description: str | None = None
    scope: Scope
    clouds: Annotated[tuple[Cloud, ...], Field(min_length=1), AfterValidator(_unique)] = CLOUDS
    period: PeriodField = Field(default=Period("month"), json_schema_extra={"default": "month"})
    budget: BudgetField | None = None
    cost: CostBasis = "effective"
    basis: SpendBasis = "billed+estimated"
    thresholds: tuple[Threshold, ...] = ()
    forecast_thresholds: tuple[Threshold, ...] = ()
    burn_rate: BurnRate | None = None
    notify_channel: SlackChannel | None = None
    authorized_users: Annotated[tuple[SlackUserId, ...], AfterValidator(_unique)] | None = None
    budget_notifications: BudgetNotifications | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Guardrail:
        issues = self.issues()
        if issues:
            raise _issues_error("guardrail", issues)
        return self

    def issues(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Rules that tie fields together, as (location relative to the guardrail, message)."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        if not (self.budget or self.burn_rate or self.budget_notifications or self.thresholds
                or self.forecast_thresholds):
            out.append(((), "watches nothing: give it a budget with thresholds, a burn_rate or budget_notifications"))
        if self.budget is None:
            if self.thresholds:
                out.append((("thresholds",), "thresholds are shares of a budget: add budget (like 5000 USD)"))
            if self.forecast_thresholds:
                out.append((("forecast_thresholds",), "forecast thresholds are shares of a budget: add budget"))
        elif not (self.thresholds or self.forecast_thresholds):
            out.append((("budget",), "a budget needs thresholds (or forecast_thresholds) saying what to do"))
        if self.forecast_thresholds and self.period.kind != "month":
            out.append((
                ("forecast_thresholds",),
                f"forecast thresholds project month-end spend and need period: month (this period is {self.period})",
            ))
        out += self._duplicate_thresholds()
        if self.budget_notifications:
            for cloud in CLOUDS:
                if self.budget_notifications.refs(cloud) and cloud not in self.clouds:
                    out.append(((
                        "budget_notifications", cloud),
                        f"maps {cloud} budgets but clouds is [{', '.join(self.clouds)}]",
                    ))
        return out

    def _duplicate_thresholds(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        for field in ("thresholds", "forecast_thresholds"):
            seen: dict[Decimal, int] = {}
            for i, threshold in enumerate(getattr(self, field)):
                if threshold.at in seen:
                    out.append(((field, i, "at"), f"{threshold.label} is already {field}[{seen[threshold.at]}]"))
                seen.setdefault(threshold.at, i)
        return out

    # ----- helpers for the evaluation

    def period_window(self, now: datetime) -> tuple[datetime, datetime]:
        """``(start, end)`` UTC of the period holding ``now`` (see :meth:`Period.window`)."""
        return self.period.window(now)

    def applies_to(self, cloud: str) -> bool:
        return cloud in self.clouds

    def budget_key(self, tags: Mapping[str, str]) -> str | None:
        """Which budget of this guardrail spend with ``tags`` counts against (``None``: none)."""
        return self.scope.budget_key(tags)

    def all_actions(self) -> set[Action]:
        acts: set[Action] = set()
        for t in (*self.thresholds, *self.forecast_thresholds):
            acts.update(t.actions)
        if self.burn_rate:
            acts.update(self.burn_rate.actions)
        if self.budget_notifications:
            acts.update(self.budget_notifications.actions)
            acts.update(self.budget_notifications.forecast_actions)
        return acts

    def stop_fields(self) -> list[str]:
        """Where this guardrail asks for an action on instances (``stop``): field paths
        relative to the guardrail."""
        def acts(actions: tuple[Action, ...]) -> bool:
            return any(ACTIONS[a].touches_instances for a in actions)
        where = [f"thresholds[{i}]" for i, t in enumerate(self.thresholds) if acts(t.actions)]
        where += [f"forecast_thresholds[{i}]" for i, t in enumerate(self.forecast_thresholds) if acts(t.actions)]
        if self.burn_rate and acts(self.burn_rate.actions):
            where.append("burn_rate")
        bn = self.budget_notifications
        if bn and (acts(bn.actions) or acts(bn.forecast_actions)):
            where.append("budget_notifications")
        return where

    def threshold_amounts(self) -> list[tuple[Threshold, Money]]:
        """Each threshold with its amount for this guardrail's budget (empty without one)."""
        if self.budget is None:
            return []
        return [(t, t.amount(self.budget)) for t in self.thresholds]


class Safety(_Model):
    """What keeps the guardrail from doing harm; defaults are the safe ones."""

    dry_run: StrictBool = True
    protect_tag: ProtectTag = Field(
        default=TagSelector("burnguard:protect", "true"), json_schema_extra={"default": DEFAULT_PROTECT_TAG}
    )
    max_stops_per_run: Annotated[int, Field(ge=1, le=1000)] = 10
    gpu_only: StrictBool = True
    allow_non_gpu: StrictBool = False
    never_terminate: Annotated[
        Literal[True],
        Field(description="Implicit and fixed: burnguard stops (Azure: deallocates), it never terminates."),
    ] = True

    def protect_keys(self) -> tuple[str, ...]:
        """The protect tag's key and its spellings without ``:`` (for Google Cloud labels)."""
        key = self.protect_tag.key
        spellings = [key, key.replace(":", "-"), key.replace(":", "_")]
        return tuple(dict.fromkeys(spellings))

    def is_protected(self, tags: Mapping[str, str]) -> bool:
        """True when ``tags`` carry the protect tag (see the module docstring for the rule)."""
        want = (self.protect_tag.value or "").casefold()
        keys = {k.casefold() for k in self.protect_keys()}
        # Every key equal to a protect key without regard to case is looked at (AWS tag keys
        # are case-sensitive, so ``burnguard:protect`` and ``Burnguard:Protect`` may both be
        # there): one of them saying "true" protects, whatever the others say.
        return any(k.casefold() in keys and str(v).strip().casefold() == want for k, v in tags.items())


class Slack(_Model):
    channel: SlackChannel | None = None
    authorized_users: Annotated[tuple[SlackUserId, ...], AfterValidator(_unique)] = ()


class Policy(_Model):
    """A whole policy file."""

    version: Literal[1]
    safety: Safety = Safety()
    slack: Slack = Slack()
    guardrails: tuple[Guardrail, ...]

    @model_validator(mode="before")
    @classmethod
    def _defaults_is_safety(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "defaults" in data and "safety" not in data:
            data = dict(data)
            data["safety"] = data.pop("defaults")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        issues = self.issues()
        if issues:
            raise _issues_error("policy", issues)
        return self

    def issues(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = []
        if not self.guardrails:
            out.append((("guardrails",), "lists no guardrail"))
        out += _duplicate_names([g.name for g in self.guardrails])
        stops = [f"guardrails[{i}].{f}" for i, g in enumerate(self.guardrails) for f in g.stop_fields()]
        out += _non_gpu_stops(self.safety.gpu_only, self.safety.allow_non_gpu, stops)
        for i, g in enumerate(self.guardrails):
            for name in sorted(a for a in g.all_actions() if ACTIONS[a].needs_channel):
                if not (g.notify_channel or self.slack.channel):
                    out.append((
                        ("guardrails", i, "notify_channel"), f"{name} needs a Slack channel: set slack.channel or this"
                    ))
        return out

    # ----- helpers

    def guardrail(self, name: str) -> Guardrail:
        for g in self.guardrails:
            if g.name == name:
                return g
        raise KeyError(name)

    def guardrails_for_budget_alert(self, alert: BudgetAlert) -> tuple[Guardrail, ...]:
        """The guardrails whose ``budget_notifications`` list the budget ``alert`` comes from."""
        return tuple(
            g for g in self.guardrails
            if g.budget_notifications and g.applies_to(alert.provider) and g.budget_notifications.matches(alert)
        )

    def channel_for(self, guardrail: Guardrail) -> str | None:
        return guardrail.notify_channel or self.slack.channel

    def authorized_users_for(self, guardrail: Guardrail) -> tuple[str, ...]:
        """Who may snooze or resume what ``guardrail`` did (its own list replaces the default)."""
        return guardrail.authorized_users if guardrail.authorized_users is not None else self.slack.authorized_users


def project_period_end(spent: Decimal, start: datetime, end: datetime, data_until: datetime) -> Decimal:
    """Spend at ``end`` if the rate of ``[start, data_until)`` goes on (for forecast thresholds).

    ``data_until`` is how far the billing data reaches (it lags 8–48 h behind the clock), not
    the current time. With no elapsed time the projection is ``spent``.
    """
    start, end, data_until = require_utc(start), require_utc(end), require_utc(data_until)
    elapsed = int((min(data_until, end) - start).total_seconds())
    total = int((end - start).total_seconds())
    if elapsed <= 0 or total <= 0:
        return spent
    return spent * total / elapsed


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem of a policy file: 1-based line and column (when known), field path, message."""

    line: int | None
    column: int | None
    field: str
    message: str


class PolicyError(InputError):
    """A policy file that does not validate; :attr:`issues` holds every problem found."""

    def __init__(self, issues: Iterable[PolicyIssue], *, file: str):
        self.issues = tuple(sorted(issues, key=lambda i: (i.line or 0, i.column or 0, i.field)))
        first = self.issues[0]
        super().__init__(first.message, file=file, row=first.line, field=first.field)

    def describe(self) -> str:
        lines = []
        for issue in self.issues:
            where = [self.file or "<policy>"]
            if issue.line is not None:
                where.append(f"line {issue.line}")
            where.append(f"field {issue.field}")
            lines.append(f"{', '.join(where)}: {issue.message}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        out = super().as_dict()
        out["issues"] = [
            {"line": i.line, "column": i.column, "field": i.field, "message": i.message} for i in self.issues
        ]
        return out


Path_ = tuple[str | int, ...]


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Builder:
    """Python data from YAML nodes, remembering where each value and key starts.

    Floats become ``Decimal`` from their text (money never passes through float); dates and
    times stay text; duplicate keys, merge keys, unknown tags and recursive aliases are issues.
    """

    _STR = "tag:yaml.org,2002:str"

    def __init__(self) -> None:
        self.values: dict[Path_, Mark] = {}
        self.keys: dict[Path_, Mark] = {}
        self.issues: list[tuple[Mark, Path_, str]] = []
        self._constructor = SafeConstructor()
        self._active: set[int] = set()

    def build(self, node: Node, path: Path_) -> Any:
        self.values[path] = node.start_mark
        if id(node) in self._active:
            self.issues.append((node.start_mark, path, "recursive YAML alias"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, ScalarNode)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.issues.append(
                    (key_node.start_mark, path, "YAML merge keys (<<) are not supported: write the keys out")
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.issues.append((key_node.start_mark, path, "a key must be plain text"))
                continue
            key = str(key_node.value)
            if key in first:
                self.issues.append((
                    key_node.start_mark, (*path, key), f"duplicate key {key!r} (first on line {first[key].line + 1})"
                ))
            else:
                first[key] = key_node.start_mark
            self.keys[(*path, key)] = key_node.start_mark
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: ScalarNode, path: Path_) -> Any:
        tag = node.tag
        text = str(node.value)
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:bool":
            return self._constructor.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:int":
            try:
                return self._constructor.construct_yaml_int(node)
            except (ValueError, ConstructorError):
                return text
        if tag == "tag:yaml.org,2002:float":
            try:
                value = Decimal(text.replace("_", ""))
            except InvalidOperation:
                return text
            return value if value.is_finite() else text
        if tag in (self._STR, "tag:yaml.org,2002:timestamp"):
            return text
        self.issues.append((node.start_mark, path, f"unsupported YAML tag {tag}"))
        return text


def _unwrap(annotation: Any) -> Any:
    """The model class an annotation leads to (through Annotated, Optional and tuple)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            models = [a for a in get_args(annotation) if a is not type(None)]
            annotation = models[0] if len(models) == 1 else annotation
            if len(models) != 1:
                return None
        elif origin is tuple:
            annotation = get_args(annotation)[0]
        else:
            return annotation


def _allowed_keys(path: Path_) -> list[str]:
    model: Any = Policy
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _unwrap(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        keys = list(model.model_fields)
        return [*keys, "defaults"] if model is Policy else keys
    return []


def _resolve(loc: tuple[Any, ...], data: Any) -> Path_:
    """The path of ``loc`` in the data, dropping pydantic's own loc parts (function names)."""
    if loc and loc[0] == "safety" and isinstance(data, dict) and "safety" not in data and "defaults" in data:
        loc = ("defaults", *loc[1:])
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_dict or in_list:
            path.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 and isinstance(cur, dict) and isinstance(part, (str, int)):
            path.append(part)
    return tuple(path)


def _shown(value: object) -> str:
    """A short rendering of a bad value for a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: Mapping[str, Any], path: Path_) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"unknown key {key!r} (did you mean {close[0]!r}?)"
        return f"unknown key {key!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "missing (required)"
    ctx = error.get("ctx") or {}
    if kind in ("too_short", "string_too_short"):
        return "must not be empty" if kind == "string_too_short" else "must list at least one"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than") and ctx:
        words = {"greater_than": "above", "greater_than_equal": "at least", "less_than_equal": "at most",
                 "less_than": "below"}[kind]
        return f"must be {words} {next(iter(ctx.values()))}, got {_shown(error.get('input'))}"
    friendly = {
        "decimal_type": "must be a number",
        "decimal_parsing": "must be a number",
        "literal_error": str(error["msg"]).replace("Input should be", "must be"),
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "model_type": "must be a mapping (key: value)",
        "model_attributes_type": "must be a mapping (key: value)",
        "dict_type": "must be a mapping (key: value)",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "string_type": "must be text",
    }
    if kind in friendly:
        return f"{friendly[kind]}, got {_shown(error.get('input'))}"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg


def _mark_for(path: Path_, builder: _Builder) -> Mark | None:
    """Where ``path`` is written: its key (``at: ...``, ``thresholds:`` above a block), the
    item of a list, or the closest enclosing mapping for a key that is missing."""
    if path in builder.keys:
        return builder.keys[path]
    for n in range(len(path), -1, -1):
        if path[:n] in builder.values:
            return builder.values[path[:n]]
    return None


def _issue(mark: Mark | None, path: Path_, message: str) -> PolicyIssue:
    return PolicyIssue(
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        field=_dotted(path) or "(top level)",
        message=message,
    )


def _read(path_or_text: str | Path | bytes, source_name: str | None) -> tuple[str, str]:
    if isinstance(path_or_text, bytes):
        return path_or_text.decode("utf-8-sig"), source_name or "<policy>"
    if isinstance(path_or_text, str) and ("\n" in path_or_text or not path_or_text.rstrip().endswith(
            (".yaml", ".yml", ".json"))):
        return path_or_text, source_name or "<policy>"
    path = Path(path_or_text)
    name = source_name or path.name
    try:
        return path.read_text(encoding="utf-8-sig"), name
    except OSError as exc:
        raise InputError(f"cannot read the policy: {exc.strerror or exc}", file=str(path)) from None


def load_policy(path_or_text: str | Path | bytes, source_name: str | None = None) -> Policy:
    """Read and validate a policy, or raise :class:`PolicyError` listing every problem.

    ``path_or_text`` is a :class:`~pathlib.Path`, a ``str`` path ending in ``.yaml``/``.yml``
    (a single line), or the YAML text itself. ``source_name`` names it in the errors (default:
    the file's name, or ``<policy>``).
    """
    text, name = _read(path_or_text, source_name)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise PolicyError([_issue(mark, (), f"not valid YAML: {reason}")], file=name) from None
    except yaml.YAMLError as exc:
        raise PolicyError([_issue(None, (), f"not valid YAML: {exc}")], file=name) from None
    if node is None:
        raise PolicyError([_issue(None, (), "the policy is empty")], file=name)

    builder = _Builder()
    data = builder.build(node, ())
    issues = [_issue(mark, path, msg) for mark, path, msg in builder.issues]
    if not isinstance(data, dict):
        issues.append(_issue(node.start_mark, (), "the policy must be a mapping (version: 1, guardrails: [...])"))
        raise PolicyError(issues, file=name)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        if not any(e["type"] == "policy" for e in errors):  # the model's policy-wide checks did not run
            for rel, msg in _raw_cross_issues(data):
                path = _resolve(rel, data)
                issues.append(_issue(_mark_for(path, builder), path, msg))
        for error in errors:
            ctx = error.get("ctx") or {}
            if error["type"] in ("policy", "guardrail") and "issues" in ctx:
                for rel, msg in ctx["issues"]:
                    path = _resolve((*error["loc"], *rel), data)
                    issues.append(_issue(_mark_for(path, builder), path, msg))
                continue
            path = _resolve(tuple(error["loc"]), data)
            issues.append(_issue(_mark_for(path, builder), path, _message(error, path)))
        raise PolicyError(issues, file=name) from None
    if issues:
        raise PolicyError(issues, file=name)
    return policy


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a policy file, from the pydantic models (``burnguard policy schema``)."""
    schema = Policy.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "burnguard policy"
    schema["description"] = (__doc__ or "").split("\n\n")[0]
    props = schema["properties"]
    props["defaults"] = {**props["safety"], "description": "Another name of safety (give one of the two)."}
    schema["not"] = {"required": ["safety", "defaults"]}
    return schema


__all__ = [
    "Action",
    "Budget",
    "BudgetNotifications",
    "BurnLimit",
    "BurnRate",
    "Guardrail",
    "NativeBudgetRef",
    "Period",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "Safety",
    "Slack",
    "TagSelector",
    "Threshold",
    "format_percent",
    "load_policy",
    "parse_percent",
    "parse_period",
    "parse_selector",
    "policy_json_schema",
    "project_period_end",
]
