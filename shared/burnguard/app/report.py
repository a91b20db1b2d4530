"""``burnguard report``: spend over time as a picture (a PNG, or a self-contained HTML page).

Two panels, per tag value of the scope:

* daily spend: billed days as solid bars; the days from the end of the data to the end of the
  period as pale hatched bars at the period's average daily rate (estimated, not billed);
* cumulative spend against the guardrail's budget line and its thresholds: billed as a solid
  line, the forecast to the period's end (the guardrail's own linear projection,
  :func:`burnguard.core.policy.project_period_end`) dashed.

Period-level charges (monthly tax and fees, which have no day) are added to the cumulative
line at the end of the data and named in the subtitle. Drawn with matplotlib (the optional
``report`` extra); the HTML page holds the chart as inline SVG and the numbers as a table, with
no script and nothing fetched.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from burnguard.core.errors import InputError
from burnguard.core.ledger import Scope, Window

MAX_SERIES = 8


@dataclass
class Series:
    value: str
    daily: dict[date, Decimal]  # billed days
    period_charges: Decimal  # tax and fees of the period (no day)
    forecast_end: Decimal | None  # spend at the period's end if the rate goes on

    @property
    def billed_total(self) -> Decimal:
        return sum(self.daily.values(), Decimal(0)) + self.period_charges


@dataclass
class ReportData:
    title: str
    period: str
    currency: str
    start: date
    end: date  # exclusive
    data_end: date  # first day without data (exclusive end of billed days)
    series: list[Series]
    budget: Decimal | None = None
    guardrail: str | None = None
    thresholds: list[tuple[str, Decimal]] = field(default_factory=list)
    basis: str = "effective"
    others: int = 0  # values left out of the picture (beyond MAX_SERIES)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


def _matching_guardrail(policy: Any, scope: Scope) -> Any:
    for g in policy.guardrails:
        if g.budget is None or g.scope.key.lower() != scope.key.lower():
            continue
        if g.scope.value == scope.value or g.scope.value is None:
            return g
    return None


def build_report(ledger: Any, policy: Any, tag: str | None, period: str | None, now: datetime, *,
                 basis: str = "effective", check_tag: Callable[[Scope], None] | None = None) -> ReportData:
    """The report's numbers from a ledger (any :class:`~burnguard.ports.ledger.Ledger`) and a
    policy: what a Slack notifier needs too, to attach the PNG (:func:`png_bytes`)."""
    from burnguard.core.policy import project_period_end
    from burnguard.services.queries import parse_period, parse_scope

    if tag:
        scope = parse_scope(tag)
    else:
        first = next((g for g in policy.guardrails if g.budget is not None), None)
        if first is None:
            raise InputError("the policy has no budget guardrail to take a scope from; pass --tag key=value",
                             field="--tag")
        scope = Scope(first.scope.key, first.scope.value)
    if check_tag is not None:
        check_tag(scope)
    window, label = parse_period(period, now)
    led = ledger
    latest = led.latest_data()
    data_until = min(latest, now) if latest is not None else now
    data_end = min(window.end, max(window.start, data_until.date() + (timedelta(days=1) if data_until.time() != time(0)
                                                                      else timedelta(0))))
    cut = Window(window.start, data_end, window.periods)
    g = _matching_guardrail(policy, scope)
    currency = g.budget.money.currency if g is not None else None
    daily = led.daily(scope, cut, basis=basis)
    totals = led.spend(scope, cut, basis=basis)
    if currency is None:
        counts: dict[str, Decimal] = {}
        for r in totals:
            counts[r.currency] = counts.get(r.currency, Decimal(0)) + r.amount
        currency = max(counts, key=lambda c: counts[c]) if counts else "USD"
    start_dt = datetime.combine(window.start, time(0), tzinfo=UTC)
    end_dt = datetime.combine(window.end, time(0), tzinfo=UTC)
    month = len(window.periods) == 1
    series: list[Series] = []
    for r in sorted((r for r in totals if r.currency == currency), key=lambda r: -r.amount):
        days = {d: a.get(currency, Decimal(0)) for d, a in daily.get(r.scope_value, {}).items()}
        dated = sum(days.values(), Decimal(0))
        forecast = project_period_end(r.amount, start_dt, end_dt, data_until) if month and data_end < window.end \
            else None
        series.append(Series(str(r.scope_value), days, r.amount - dated, forecast))
    others = max(0, len(series) - MAX_SERIES)
    data = ReportData(str(scope), label, currency, window.start, window.end, data_end, series[:MAX_SERIES],
                      basis=basis, others=others)
    if g is not None:
        data.budget = g.budget.money.amount
        data.guardrail = g.name
        data.thresholds = [(t.label, t.amount(g.budget).amount) for t in sorted(g.thresholds, key=lambda t: t.at)]
    return data


def _figure(data: ReportData) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    days = data.days()
    billed_days = [d for d in days if d < data.data_end]
    future = [d for d in days if d >= data.data_end]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[1, 1.3])
    colours = [f"C{i}" for i in range(10)]  # the default colour cycle
    bottom_billed = [0.0] * len(billed_days)
    bottom_future = [0.0] * len(future)
    for i, s in enumerate(data.series):
        c = colours[i % len(colours)]
        heights = [float(s.daily.get(d, Decimal(0))) for d in billed_days]
        ax1.bar(billed_days, heights, bottom=bottom_billed, color=c, width=0.8, label=f"{s.value} (billed)")
        bottom_billed = [b + h for b, h in zip(bottom_billed, heights, strict=True)]
        if s.forecast_end is not None and future:
            rate = float((s.forecast_end - s.billed_total) / len(future))
            ax1.bar(future, [rate] * len(future), bottom=bottom_future, color=c, alpha=0.25, hatch="//",
                    edgecolor=c, width=0.8,
                    label="estimated (hatched): the period's average daily rate" if i == 0 else None)
            bottom_future = [b + rate for b in bottom_future]
        # cumulative: billed solid, forecast dashed
        run, xs, ys = 0.0, [datetime.combine(data.start, time(0))], [0.0]
        for d in billed_days:
            run += float(s.daily.get(d, Decimal(0)))
            xs.append(datetime.combine(d + timedelta(days=1), time(0)))
            ys.append(run)
        ys[-1] += float(s.period_charges)
        ax2.plot(xs, ys, color=c, linewidth=2, label=f"{s.value}: {s.billed_total:,.2f} billed")
        if s.forecast_end is not None:
            ax2.plot([xs[-1], datetime.combine(data.end, time(0))], [ys[-1], float(s.forecast_end)], color=c,
                     linestyle="--", linewidth=1.5, label=f"{s.value}: forecast {s.forecast_end:,.2f}")
    if data.budget is not None:
        ax2.axhline(float(data.budget), color="black", linewidth=1.5, label=f"budget {data.budget:,.2f}")
        for lbl, amount in data.thresholds:
            if amount != data.budget:
                ax2.axhline(float(amount), color="grey", linestyle=":", linewidth=1)
                ax2.annotate(lbl, (datetime.combine(data.start, time(0)), float(amount)), fontsize=8, color="grey",
                             xytext=(2, 2), textcoords="offset points")
    if future:
        for ax in (ax1, ax2):
            ax.axvspan(datetime.combine(data.data_end, time(0)), datetime.combine(data.end, time(0)), color="0.93",
                       zorder=0)
    ax1.set_ylabel(f"per day ({data.currency})")
    ax2.set_ylabel(f"cumulative ({data.currency})")
    ax1.set_title(_title(data), loc="left", fontsize=11)
    ax1.legend(fontsize=7, ncol=2, loc="upper left")
    ax2.legend(fontsize=7, ncol=2, loc="upper left")
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
    ax2.set_xlim(datetime.combine(data.start, time(0)), datetime.combine(data.end, time(0)))
    for ax in (ax1, ax2):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _title(data: ReportData) -> str:
    parts = [f"Daily spend of {data.title}, {data.period} ({data.basis} cost, {data.currency})"]
    if data.guardrail:
        parts.append(f"guardrail {data.guardrail}, budget {data.budget:,.2f}")
    if data.data_end < data.end:
        parts.append(f"billed through {data.data_end - timedelta(days=1):%b %d}, estimated after (shaded)")
    charges = sum((s.period_charges for s in data.series), Decimal(0))
    if charges:
        parts.append(f"{charges:,.2f} of period charges (tax, fees) without a day")
    if data.others:
        parts.append(f"{data.others} smaller value(s) not drawn")
    return "\n".join(parts)


def png_bytes(data: ReportData) -> bytes:
    """The report as PNG bytes (for a Slack file upload)."""
    import matplotlib.pyplot as plt

    fig = _figure(data)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        return buf.getvalue()
    finally:
        plt.close(fig)


def write_report(data: ReportData, out: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("the report needs matplotlib: pip install 'burnguard[report]'", field="--out") from None
    import matplotlib.pyplot as plt

    fig = _figure(data)
    try:
        if out.suffix.lower() == ".png":
            fig.savefig(out, format="png", dpi=110)
            return
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
        out.write_text(_html(data, svg.getvalue()), encoding="utf-8")
    finally:
        plt.close(fig)


def _html(data: ReportData, svg: str) -> str:
    svg = svg[svg.index("<svg"):]  # drop the XML prologue: inline in HTML
    head = "".join(f"<th>{html.escape(s.value)}</th>" for s in data.series)
    rows = []
    for d in data.days():
        billed = d < data.data_end
        cells = []
        for s in data.series:
            if billed:
                cells.append(f"{s.daily.get(d, Decimal(0)):,.2f}")
            elif s.forecast_end is not None:
                n = (data.end - data.data_end).days
                cells.append(f"~{(s.forecast_end - s.billed_total) / n:,.2f}")
            else:
                cells.append("")
        kind = "billed" if billed else "estimated"
        rows.append(f"<tr class='{kind}'><td>{d.isoformat()}</td><td>{kind}</td>"
                    + "".join(f"<td class='num'>{c}</td>" for c in cells) + "</tr>")
    title = html.escape(f"burnguard: spend of {data.title} in {data.period}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.estimated {{ color: #777; font-style: italic; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{html.escape(_title(data)).replace(chr(10), "<br>")}</p>
<figure id="chart">{svg}</figure>
<h2>Per day ({html.escape(data.currency)})</h2>
<table id="days"><thead><tr><th>day</th><th>kind</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
</body></html>
"""
