"""Slack Block Kit for the messages people act on, and for the slash-command answers.

Pure: data in, JSON-ready ``dict`` blocks out; no Slack SDK. Every message is built to read on
a phone: a short header (what happened, to which guardrail), one fields section (two columns
of label/value), at most a few short sections (instances, top resources), and a context line
(where the figures come from, what to do next). The plain ``text`` of a
:class:`~burnguard.ports.instances.Notification` stays the fallback (notifications, screen readers,
clients without blocks): Slack requires it next to ``blocks``.

Block Kit limits are enforced here rather than discovered as ``invalid_blocks`` at 3 a.m.:
header text 150 characters, section text 3000, 10 fields of 2000, 10 context elements, 50
blocks per message (:func:`problems` checks a payload against them, for the tests).
Values that come from tags, instance names or Slack users are escaped for ``mrkdwn``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from burnguard.core.clouds import cloud_name
from burnguard.core.money import Money, cents
from burnguard.notify.saving import Saving, estimate
from burnguard.rules.actions import SkipCode

if TYPE_CHECKING:
    from burnguard.core.instances import Instance
    from burnguard.core.ledger import ResourceRow, SpendRow, StopRecord
    from burnguard.core.reports import GuardrailStatus, SpendReport
    from burnguard.rules.decisions import Decision
    from burnguard.rules.registry import Outcome, ResumeOutcome

Block = dict[str, Any]

MAX_HEADER = 150
MAX_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_CONTEXT = 10
MAX_BLOCKS = 50
#: lines listed in one section before "… and N more"
MAX_LINES = 10

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


# --------------------------------------------------------------------------- primitives


def escape(text: object) -> str:
    """``text`` safe inside ``mrkdwn`` (Slack's three control characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True}}


def section(markdown: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(markdown, MAX_TEXT)}}


def fields(pairs: Iterable[tuple[str, str]]) -> Block:
    """One section of label/value fields (two columns on every client), at most 10."""
    items = [{"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", MAX_FIELD)} for label, value in pairs]
    return {"type": "section", "fields": items[:MAX_FIELDS]}


def context(*markdown: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(t, MAX_TEXT)}
                                            for t in markdown if t][:MAX_CONTEXT]}


def divider() -> Block:
    return {"type": "divider"}


def bullets(title: str, lines: Sequence[str], *, limit: int = MAX_LINES) -> Block:
    """A titled list of at most ``limit`` lines, ending "… and N more" when some do not fit
    (in the count or in the section's 3000 characters)."""
    shown = [f"*{title}*"]
    size = len(shown[0])
    for line in lines[:limit]:
        entry = "• " + clip(line, 400)
        if size + 1 + len(entry) > MAX_TEXT - 30:
            break
        shown.append(entry)
        size += 1 + len(entry)
    rest = len(lines) - (len(shown) - 1)
    if rest:
        shown.append(f"… and {rest} more")
    return section("\n".join(shown))


def finish(blocks: list[Block]) -> list[Block]:
    """Drop empty pieces and keep within the 50-block limit (the last block is the context)."""
    kept = [b for b in blocks if b.get("fields") != [] and b.get("elements") != []]
    if len(kept) > MAX_BLOCKS:
        kept = [*kept[: MAX_BLOCKS - 1], kept[-1]]
    return kept


def amount(m: Money | None) -> str:
    return f"{cents(m.amount):,} {m.currency}" if m is not None else "n/a"


def dec_amount(value: Decimal, currency: str) -> str:
    return f"{cents(value):,} {currency}"


def who(actor: str) -> str:
    """A Slack user id as a mention (Slack renders the name), anything else as text."""
    return f"<@{actor}>" if _USER_ID.match(actor) else escape(actor)


def code(text: object) -> str:
    return "`" + escape(text).replace("`", "'") + "`"


def utc(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "n/a"


def problems(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Block Kit limits ``blocks`` break (empty when none): what Slack would refuse as
    ``invalid_blocks``. Used by the tests on every message built here."""
    out: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        out.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
    for i, b in enumerate(blocks):
        kind = b.get("type")
        if kind == "header":
            text = b["text"]
            if text.get("type") != "plain_text" or not 0 < len(text["text"]) <= MAX_HEADER:
                out.append(f"block {i}: header must be plain_text of 1..{MAX_HEADER} characters")
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                out.append(f"block {i}: section without text or fields")
            if "text" in b and not 0 < len(b["text"]["text"]) <= MAX_TEXT:
                out.append(f"block {i}: section text must be 1..{MAX_TEXT} characters")
            if "fields" in b and not 0 < len(b["fields"]) <= MAX_FIELDS:
                out.append(f"block {i}: 1..{MAX_FIELDS} fields")
            out += [f"block {i}: field over {MAX_FIELD} characters" for f in b.get("fields", ())
                    if len(f["text"]) > MAX_FIELD]
        elif kind == "context":
            if not 0 < len(b["elements"]) <= MAX_CONTEXT:
                out.append(f"block {i}: context needs 1..{MAX_CONTEXT} elements")
        elif kind != "divider":
            out.append(f"block {i}: unexpected block type {kind!r}")
    return out


# --------------------------------------------------------------------------- alerts


def _resource_line(r: ResourceRow) -> str:
    kind = f"{r.instance_type}{' GPU' if r.gpu else ''}".strip() or cloud_name(r.cloud)
    return f"{code(r.resource_id[-60:])} {escape(kind)} ({cloud_name(r.cloud)}) — {dec_amount(r.amount, r.currency)}"


def _instance_line(i: Instance) -> str:
    cost = f" — {dec_amount(i.hourly_cost, i.currency)}/h" if i.hourly_cost is not None and i.currency else ""
    where = f" {escape(i.location)}" if i.location else ""
    return f"{cloud_name(i.cloud)} {code(i.name or i.instance_id)} {escape(i.instance_type)}{where}{cost}"


def _headline(d: Decision) -> tuple[str, str]:
    """(emoji, words) of a decision's header."""
    if d.kind == "threshold":
        icon = ":rotating_light:" if d.percent_used is not None and d.percent_used >= 100 else ":warning:"
        return icon, f"{d.guardrail}: {d.label} of budget"
    if d.kind == "forecast":
        return ":crystal_ball:", f"{d.guardrail}: forecast over {d.label.removeprefix('forecast ')}"
    if d.kind == "burn-rate":
        return ":fire:", f"{d.guardrail}: GPU burn {amount(d.rate)}/h"
    if d.kind == "currency":
        return ":currency_exchange:", f"{d.guardrail}: {d.label}, not compared"
    provider = d.alert.provider.upper() if d.alert is not None else "native"
    return ":bell:", f"{d.guardrail}: {provider} budget alert ({d.label})"


def _reason(d: Decision) -> str:
    """Why the guardrail acted, in a line (the header of a stop says what it did)."""
    if d.kind == "threshold":
        return f"{code(d.scope)} crossed {escape(d.label)} of its budget"
    if d.kind == "forecast":
        return f"{code(d.scope)} is forecast to cross {escape(d.label.removeprefix('forecast '))} of its budget"
    if d.kind == "burn-rate":
        return f"{code(d.scope)} burns {amount(d.rate)}/h of GPU, over the limit of {amount(d.limit)}/h"
    if d.kind == "currency":
        return (f"{code(d.scope)} has {amount(d.spend)} of spend that its budget of {amount(d.budget)} cannot"
                " count: burnguard converts no currency")
    source = f"{d.alert.provider.upper()} budget {escape(d.alert.budget_name)}" if d.alert is not None else "a budget"
    return f"the native alert of {source} ({escape(d.label)}) for {code(d.scope)}"


def _decision_fields(d: Decision) -> list[tuple[str, str]]:
    pairs = [("Scope", code(d.scope))]
    if d.kind == "burn-rate":
        pairs += [("GPU burn", f"{amount(d.rate)}/h"), ("Limit", f"{amount(d.limit)}/h")]
        if d.window_start is not None and d.window_end is not None:
            hours = int((d.window_end - d.window_start).total_seconds() // 3600)
            pairs += [("GPU spend", f"{amount(d.spend)} in the last {hours} h of data"),
                      ("Data until", utc(d.window_end))]
        return pairs
    pairs += [("Period", escape(d.period)), ("Spend", amount(d.spend)), ("Budget", amount(d.budget))]
    if d.percent_used is not None:
        pairs.append(("Used", f"{d.percent_used}%"))
    if d.estimated is not None:
        pairs.append(("Estimated", f"{amount(d.estimated)} ({d.estimated_share}%)"))
    if d.projection is not None:
        pairs.append(("Projection", escape(d.projection)))
    if d.forecast is not None:
        pairs.append(("Forecast", amount(d.forecast)))
    if d.alert is not None:
        pairs.append(("Budget name", escape(d.alert.budget_name)))
        if d.alert.account:
            pairs.append(("Account", code(d.alert.account)))
        if d.alert.threshold_amount is not None and d.budget is None:
            pairs.append(("Threshold", amount(d.alert.threshold_amount)))
    return pairs


def decision_blocks(report: Outcome, top: Sequence[ResourceRow] = (),
                    per_cloud: Mapping[str, Decimal] | None = None, saving: Saving | None = None) -> list[Block]:
    """A crossing (threshold, forecast, burn rate, native budget alert) and, when the
    guardrail acted on it, the stop: which instances on which cloud, dry-run or done, the
    estimated hourly saving and how to resume."""
    d = report.decision
    blocks: list[Block] = []
    if report.stopped:
        verb = "would stop" if report.dry_run else "stopped"
        blocks.append(header(f":octagonal_sign: {d.guardrail}: {verb} {len(report.stopped)} GPU instance(s)"))
        blocks.append(section(f"*Because* {_reason(d)}"))
    else:
        blocks.append(header(" ".join(_headline(d))))
    blocks.append(fields(_decision_fields(d)))
    currency = d.spend.currency if d.spend is not None else None
    if per_cloud:
        blocks.append(section("*Per cloud* " + " · ".join(
            f"{cloud_name(c)} {dec_amount(a, currency) if currency else cents(a)}"
            for c, a in sorted(per_cloud.items(), key=lambda kv: -kv[1]))))
    if top:
        blocks.append(bullets("Top resources", [_resource_line(r) for r in top]))
    blocks += stop_blocks(report, saving)
    notes = []
    if len(d.crossed) > 1:
        notes.append(f"Crossed at once: {', '.join(d.crossed)}")
    if d.data_until is not None and d.kind != "burn-rate":
        notes.append(f"billing data until {utc(d.data_until)}")
    if d.alert is not None:
        notes.append(f"from the {d.alert.provider.upper()} budget notification")
    blocks.append(context(" · ".join(["burnguard", *notes])))
    return finish(blocks)


def stop_blocks(report: Outcome, saving: Saving | None = None) -> list[Block]:
    """The stop part of a decision's message (empty when nothing was, or would be, stopped).
    ``saving``: priced from the billing data where known (:mod:`burnguard.notify.saving`);
    without it, at the instances' on-demand prices."""
    d = report.decision
    out: list[Block] = []
    if report.stopped:
        title = ("Would stop (dry-run: nothing was called)" if report.dry_run
                 else f"Stopped {len(report.stopped)} GPU instance(s)")
        out.append(divider())
        out.append(bullets(title, [_instance_line(i) for i in report.stopped]))
        saving = saving or estimate(report, None)
        figure = saving.amount
        pairs = [("Estimated saving", f"{amount(figure)}/h" if figure is not None else "unknown (no hourly cost)")]
        if not report.dry_run:
            slash, cli = code(f"/burnguard resume {d.guardrail}"), code(f"burnguard resume {d.guardrail}")
            pairs.append(("Resume", f"{slash}\nor {cli}"))
        else:
            pairs.append(("Mode", "dry-run (set safety.dry_run: false to act)"))
        out.append(fields(pairs))
        note = _saving_note(saving)
        if note:
            out.append(context(note))
    elif "stop" in d.actions:
        out.append(section("No instance to stop in scope"
                           + (f" ({len(report.skipped)} skipped)" if report.skipped else "") + "."))
    protected = [s.instance for s in report.skipped if s.code is SkipCode.PROTECTED]
    if protected:
        out.append(context("Protected, left running: " + ", ".join(code(i.name or i.instance_id) for i in protected)))
    return out


def _saving_note(saving: Saving) -> str:
    """How the saving was priced, when it says more than its figure."""
    notes = []
    if saving.amount is not None and saving.measured:
        notes.append("Saving: the effective cost from the billing data" + (
            f"; {len(saving.listed)} instance(s) at the on-demand price (not in the billing data)"
            if saving.listed else ""))
    elif saving.amount is not None and saving.listed:
        notes.append("Saving at on-demand prices")
    if saving.outside:
        notes.append("No GPU spend in the window (not part of the burn, not in the saving): " + ", ".join(
            code(name) for name, _ in saving.outside))
    return " · ".join(notes)


def failure_blocks(report: Outcome) -> list[Block]:
    """What could not be stopped, and why (one line per instance, the cloud's own words)."""
    d = report.decision
    return finish([
        header(f":x: {d.guardrail}: could not stop {len(report.failed)} instance(s)"),
        fields([("Scope", code(d.scope)), ("Stopped", str(len(report.stopped)))]),
        bullets("Not stopped", [f"{cloud_name(i.cloud)} {code(i.name or i.instance_id)}: {escape(reason)}"
                                for i, reason in report.failed]),
        context("The other instances were handled; check the role's permissions and the instances' state."),
    ])


def resume_blocks(report: ResumeOutcome, actor: str) -> list[Block]:
    lines = [f"{cloud_name(r.cloud)} {code(r.name or r.instance_id)} {escape(r.instance_type)}" for r in report.started]
    failed = [f"{cloud_name(r.cloud)} {code(r.name or r.instance_id)}: {escape(reason)}" for r, reason in report.failed]
    blocks = [
        header(f":arrow_forward: {report.guardrail}: resumed {len(report.started)} instance(s)"),
        fields([("By", who(actor)), ("Started", str(len(report.started))), ("Failed", str(len(report.failed)))]),
    ]
    if lines:
        blocks.append(bullets("Started", lines))
    if failed:
        blocks.append(bullets("Could not start", failed))
    blocks.append(context("The guardrail can stop them again at its next crossing; "
                          f"snooze it with {code(f'/burnguard snooze {report.guardrail} 1d')}"))
    return finish(blocks)


# --------------------------------------------------------------------------- slash-command answers


def message_blocks(title: str, body: str, note: str = "") -> list[Block]:
    """A short answer: a bold title line, a body, an optional context line."""
    blocks = [section(f"*{escape(title)}*" + (f"\n{body}" if body else ""))]
    if note:
        blocks.append(context(note))
    return finish(blocks)


def spend_blocks(report: SpendReport) -> list[Block]:
    totals = report.totals()
    title = f"Spend of {report.scope} · {report.period}"
    if not report.rows:
        return message_blocks(title, "No spend recorded for this tag in this period.",
                              "Tag keys match case-insensitively, values exactly.")
    pairs = [(f"Total {cur}", dec_amount(a, cur)) for cur, (a, _g) in sorted(totals.items())]
    pairs += [(f"GPU {cur}", dec_amount(g, cur)) for cur, (_a, g) in sorted(totals.items())]
    blocks: list[Block] = [header(clip(title, MAX_HEADER)), fields(pairs)]
    clouds = report.per_cloud()
    if clouds:
        blocks.append(section("*Per cloud* " + " · ".join(
            f"{cloud_name(c)} {dec_amount(a, cur)}" for (c, cur), a in sorted(clouds.items(), key=lambda kv: -kv[1]))))
    if report.scope.value is None:
        blocks.append(bullets(f"Per {escape(report.scope.key)}", [
            f"{code(r.scope_value)} {dec_amount(r.amount, r.currency)}"
            for r in sorted(report.rows, key=lambda r: -r.amount)]))
    if report.services:
        blocks.append(bullets("Top services", [
            f"{cloud_name(s.cloud)} {escape(s.service[:60])} — {dec_amount(s.amount, s.currency)}"
            for s in report.services[:5]], limit=5))
    if report.top:
        blocks.append(bullets("Top resources", [_resource_line(r) for r in report.top]))
    blocks.append(context("burnguard · effective cost (amortized, after discounts) · billing data lags 8–48 h"))
    return finish(blocks)


def top_resources_blocks(rows: Sequence[ResourceRow], title: str, note: str) -> list[Block]:
    if not rows:
        return message_blocks(title, "No tagged spend recorded in this period.", note)
    return finish([header(title), bullets("Resources", [f"{n}. {_resource_line(r)}" for n, r in enumerate(rows, 1)],
                                          limit=25), context(note)])


def top_values_blocks(rows: Sequence[SpendRow], key: str, title: str, note: str) -> list[Block]:
    if not rows:
        return message_blocks(title, f"No spend tagged {code(key)} in this period.", note)
    return finish([header(title), bullets(f"By {escape(key)}", [
        f"{n}. {code(r.scope_value)} {dec_amount(r.amount, r.currency)} (GPU {dec_amount(r.gpu_amount, r.currency)})"
        for n, r in enumerate(rows, 1)], limit=25), context(note)])


def status_blocks(statuses: Sequence[GuardrailStatus], note: str) -> list[Block]:
    if not statuses:
        return message_blocks("Guardrails", "The policy defines no guardrail.")
    blocks: list[Block] = [header(f"Guardrails ({len(statuses)} scope(s))")]
    for s in statuses[:MAX_BLOCKS // 2 - 2]:
        if s.budget is not None:
            figures = (f"{amount(s.spend)} of {amount(s.budget)}"
                       + (f" ({s.percent}%)" if s.percent is not None else "")
                       + (f" · forecast {amount(s.forecast)}" if s.forecast is not None else ""))
        else:
            figures = f"GPU {amount(s.gpu_rate)}/h" if s.gpu_rate is not None else ""
        blocks.append(section(f"{_status_icon(s)} *{escape(s.guardrail)}* {code(s.scope)} · {escape(s.period)}\n"
                              f"{figures}\n_{escape(s.state)}_"))
    if len(statuses) > MAX_BLOCKS // 2 - 2:
        blocks.append(section(f"… and {len(statuses) - (MAX_BLOCKS // 2 - 2)} more"))
    blocks.append(context(note))
    return finish(blocks)


def _status_icon(s: GuardrailStatus) -> str:
    """Red: over budget, burning over the limit, or instances stopped; yellow: a threshold
    crossed below the budget, or snoozed; green: fine."""
    if (s.percent is not None and s.percent >= 100) or " stopped" in s.state or (
            s.state.startswith("burn") and " > " in s.state):
        return ":red_circle:"
    if "crossed" in s.state or "snoozed" in s.state:
        return ":large_yellow_circle:"
    return ":large_green_circle:"


def stopped_blocks(active: Sequence[StopRecord], dry_runs: Sequence[StopRecord], note: str) -> list[Block]:
    def line(s: StopRecord) -> str:
        cost = f" — {dec_amount(s.hourly_cost, s.currency)}/h" if s.hourly_cost is not None and s.currency else ""
        return (f"{cloud_name(s.cloud)} {code(s.name or s.instance_id)} {escape(s.instance_type)} · "
                f"{escape(s.guardrail)} · {utc(s.stopped_at)}{cost}")

    if not active and not dry_runs:
        return message_blocks("Stopped by burnguard", "Nothing is stopped right now.", note)
    blocks: list[Block] = [header(f"Stopped by burnguard: {len(active)} instance(s)")]
    if active:
        blocks.append(bullets("Stopped (resume with /burnguard resume <guardrail>)", [line(s) for s in active]))
    if dry_runs:
        blocks.append(bullets("Dry-run only (would have stopped, nothing was called)", [line(s) for s in dry_runs]))
    blocks.append(context(note))
    return finish(blocks)


__all__ = [
    "Block",
    "bullets",
    "context",
    "decision_blocks",
    "escape",
    "failure_blocks",
    "fields",
    "header",
    "message_blocks",
    "problems",
    "resume_blocks",
    "section",
    "spend_blocks",
    "status_blocks",
    "stop_blocks",
    "stopped_blocks",
    "top_resources_blocks",
    "top_values_blocks",
]
