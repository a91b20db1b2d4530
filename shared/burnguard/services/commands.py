"""``/burnguard``: the slash commands, parsed and answered from the ledger and the policy.

Pure given its ports (a :class:`~burnguard.core.ledger.Ledger`, a :class:`~burnguard.core.policy.Policy`
and, for ``resume``, a function that resumes a guardrail): no HTTP, no Slack SDK, no clock of
its own (the request carries the time it was received). :mod:`burnguard.services.slack_endpoint` puts
it behind a verified HTTP endpoint and keeps the 3-second budget.

Commands (``help`` lists them with the command's own name)::

    spend <tag>=<value> [period]        spend of a tag (key=* for each value), per cloud, service, resource
    top [N] [<tag>=<value>] [by <key>] [period]
                                        top resources (of a tag, or of every key the policy guards),
                                        or, with "by", the top values of a tag key
    guardrails                          spend, budget, % used, forecast and state of each guardrail
    stopped [guardrail]                 what the guardrails stopped, and when (dry-run ones apart)
    snooze <guardrail> <30m|2h|1d|1w|off>   silence a guardrail (at most a week)
    resume <guardrail>                  start again what the guardrail stopped
    help

A period is ``YYYY-MM``, ``YYYY-MM-DD`` or ``Nd`` (the last N days); the default is the month
of the request. ``snooze`` and ``resume`` are for the Slack users the policy authorizes for that
guardrail (:meth:`~burnguard.core.policy.Policy.authorized_users_for`); every attempt, allowed or
refused, is written to the audit log with the Slack user id as the actor. Each is carried out
at most once per Slack request (its ``trigger_id`` is claimed with ``Ledger.announce``), so a
retried delivery or a deferred re-run never acts twice.

Queries answer ``ephemeral`` (only the asker sees them); ``snooze`` and ``resume`` answer
``in_channel`` so the team sees who did it. A bad command or argument gets what was wrong and
the usage, never a stack trace.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from burnguard.core.clouds import cloud_name
from burnguard.core.errors import InputError
from burnguard.core.ledger import AuditEvent, ResourceRow, Scope, StopRecord
from burnguard.core.money import cents
from burnguard.core.policy import Guardrail, Policy
from burnguard.notify.blocks import (
    Block,
    code,
    escape,
    message_blocks,
    resume_blocks,
    spend_blocks,
    status_blocks,
    stopped_blocks,
    top_resources_blocks,
    top_values_blocks,
    utc,
    who,
)
from burnguard.ports.ledger import Ledger
from burnguard.ports.slack import DEFAULT_COMMAND, CommandRequest

if TYPE_CHECKING:
    from burnguard.services.guardrail import ResumeReport

ResponseType = Literal["ephemeral", "in_channel"]
Resume = Callable[[str, str], "ResumeReport"]

MAX_TOP = 25
DEFAULT_TOP = 10
MAX_SNOOZE = timedelta(days=7)

USAGE: dict[str, tuple[str, str]] = {
    "spend": ("spend <tag>=<value> [period]", "spend of a tag (key=* for each value) per cloud, service, resource"),
    "top": ("top [N] [<tag>=<value>] [by <tag key>] [period]", "top resources, or the top values of a tag key"),
    "guardrails": ("guardrails", "spend, budget, % used, forecast and state of each guardrail"),
    "stopped": ("stopped [guardrail]", "what the guardrails stopped, and when"),
    "snooze": ("snooze <guardrail> <30m|2h|1d|1w|off>", "silence a guardrail, at most a week (authorized users)"),
    "resume": ("resume <guardrail>", "start again what a guardrail stopped (authorized users)"),
    "help": ("help", "this list"),
}
#: commands that call the clouds: acknowledged at once and completed through response_url
SLOW = frozenset({"resume"})
#: commands that change something (claimed once per Slack request, audited)
WRITES = frozenset({"snooze", "resume"})
PERIOD_HELP = "A period is YYYY-MM, YYYY-MM-DD or Nd (the last N days); default: this month."

_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|mins|h|hr|hrs|d|day|days|w|wk|week|weeks)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CommandError(InputError):
    """A command or argument that cannot be carried out: the message says what was wrong;
    ``usage`` is the command's usage line (or ``None`` for the whole list)."""

    def __init__(self, message: str, usage: str | None = None):
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class SlashAnswer:
    """What Slack shows: ``text`` (the notification and fallback) and Block Kit ``blocks``."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    response_type: ResponseType = "ephemeral"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"response_type": self.response_type, "text": self.text}
        if self.blocks:
            out["blocks"] = self.blocks
        return out


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def unescape(text: str) -> str:
    """Slack escapes ``& < >`` in the text it sends; undo it (``&amp;`` last)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str) -> Command:
    """The command word (case-insensitive) and its arguments; empty text is ``help``."""
    words = unescape(text).split()
    if not words:
        return Command("help", ())
    name = words[0].lower()
    if name not in USAGE:
        close = difflib.get_close_matches(name, list(USAGE), n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise CommandError(f"Unknown command `{words[0][:40]}`.{hint}")
    return Command(name, tuple(words[1:]))


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``1w`` (at most a week, at least a minute)."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise CommandError(f"`{text[:20]}` is not a duration: write 30m, 2h, 1d or 1w (or `off`).",
                           USAGE["snooze"][0])
    length = timedelta(**{_UNITS[m.group(2)[0]]: int(m.group(1))})
    if length <= timedelta(0):
        raise CommandError("A snooze lasts at least a minute (use `off` to end one).", USAGE["snooze"][0])
    if length > MAX_SNOOZE:
        raise CommandError(f"A snooze lasts at most a week; `{text}` is longer.", USAGE["snooze"][0])
    return length


def help_answer(command: str = DEFAULT_COMMAND, problem: str = "") -> SlashAnswer:
    lines = [f"`{command} {usage}` — {what}" for usage, what in USAGE.values()]
    title = problem or "burnguard: GPU spend per tag across AWS, Google Cloud and Azure"
    text = "\n".join([escape(title), *(escape(line) for line in lines), PERIOD_HELP])
    return SlashAnswer(text, message_blocks(title, "\n".join(escape(line) for line in lines), PERIOD_HELP))


def error_answer(error: CommandError, command: str = DEFAULT_COMMAND) -> SlashAnswer:
    if error.usage is None:
        return help_answer(command, error.reason)
    usage = f"Usage: `{command} {error.usage}`"
    return SlashAnswer(f"{escape(error.reason)}\n{escape(usage)}",
                       message_blocks(error.reason, escape(usage), PERIOD_HELP))


class SlashCommands:
    """Answers slash commands from a ledger and a policy.

    ``resume`` starts again what a guardrail stopped (``GuardrailService.resume``); it is only
    needed where ``resume`` is completed (:meth:`complete`), and built lazily by the caller.
    """

    def __init__(self, ledger: Ledger, policy: Policy, resume: Resume | None = None):
        self.ledger = ledger
        self.policy = policy
        self.resume = resume

    # -- entry points ---------------------------------------------------------------------
    def is_slow(self, request: CommandRequest) -> bool:
        """True when the command calls the clouds and is completed later (``resume``)."""
        try:
            return parse_command(request.text).name in SLOW
        except CommandError:
            return False

    def precheck(self, request: CommandRequest) -> SlashAnswer | None:
        """For a slow command: the answer that settles it now (a bad argument, a refusal,
        audited), or ``None`` when it may go on to :meth:`complete`."""
        try:
            cmd = parse_command(request.text)
            if cmd.name not in SLOW:
                return None
            guardrail = self._guardrail_arg(cmd, request)
            return self._authorize(cmd.name, guardrail, request)
        except CommandError as exc:
            return error_answer(exc, request.command)

    def complete(self, request: CommandRequest) -> SlashAnswer:
        """The answer to ``request`` (slow commands included: this is what a deferred
        completion runs). Bad input gives an answer saying what was wrong, not an exception."""
        try:
            cmd = parse_command(request.text)
            handler: Callable[[Command, CommandRequest], SlashAnswer] = getattr(self, f"_{cmd.name}")
            return handler(cmd, request)
        except CommandError as exc:
            return error_answer(exc, request.command)

    # -- queries --------------------------------------------------------------------------
    def _help(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        return help_answer(request.command)

    def _spend(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        from burnguard.services.queries import spend_report

        usage = USAGE["spend"][0]
        if not 1 <= len(cmd.args) <= 2 or "=" not in cmd.args[0]:
            raise CommandError("`spend` takes a tag like `team=ml-research` (or `team=*`), then a period.", usage)
        try:
            report = spend_report(self.ledger, cmd.args[0], cmd.args[1] if len(cmd.args) > 1 else None,
                                  now=request.judged_at, top=5)
        except InputError as exc:
            raise CommandError(_sentence(exc.reason), usage) from None
        return SlashAnswer(escape(report.text()), spend_blocks(report))

    def _top(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        from burnguard.services.queries import parse_period

        usage = USAGE["top"][0]
        limit, key, scope, period = _top_args(list(cmd.args), usage)
        try:
            window, label = parse_period(period, request.judged_at)
        except InputError as exc:
            raise CommandError(_sentence(exc.reason), usage) from None
        note = "burnguard · effective cost · billing data lags 8–48 h"
        if key is not None:
            values = self.ledger.top_tag_values(key, window, limit=limit)
            title = f"Top {key} values · {label}"
            text = "\n".join([title, *(f"{n}. {key}={r.scope_value}: {cents(r.amount):,} {r.currency}"
                                       for n, r in enumerate(values, 1))])
            return SlashAnswer(escape(text), top_values_blocks(values, key, title, note))
        if scope is not None:
            rows = self.ledger.top_resources(scope, window, limit=limit)
            title = f"Top resources of {scope} · {label}"
        else:
            keys = sorted({g.scope.key.casefold() for g in self.policy.guardrails})
            rows = self._top_resources(keys, window, limit)
            title = f"Top resources · {label}"
            note = f"Among resources tagged {', '.join(keys)} (the keys the policy guards) · " + note
        text = "\n".join([title, *(f"{n}. {r.resource_id} {r.instance_type} ({cloud_name(r.cloud)}): "
                                   f"{cents(r.amount):,} {r.currency}" for n, r in enumerate(rows, 1))])
        return SlashAnswer(escape(text), top_resources_blocks(rows, title, note))

    def _top_resources(self, keys: Sequence[str], window: Any, limit: int) -> list[ResourceRow]:
        """Top resources carrying any of ``keys``: each key's top ``limit`` holds every
        resource of the overall top ``limit`` that carries it, so the merge is exact (a
        resource under two keys is counted once)."""
        best: dict[tuple[str, str, str, str], ResourceRow] = {}
        for key in keys:
            for r in self.ledger.top_resources(Scope(key), window, limit=limit):
                ident = (r.resource_id, r.cloud, r.instance_type, r.currency)
                if ident not in best or best[ident].amount < r.amount:
                    best[ident] = r
        return sorted(best.values(), key=lambda r: (-r.amount, r.resource_id))[:limit]

    def _guardrails(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        from burnguard.ports.ledger import EstimateLog
        from burnguard.services.status import guardrail_status

        # Figures as of the data's time; snoozes against the real time the request came in; a
        # ledger that keeps the live estimate (the SQLite one) shows it: estimated part, projection
        estimates = self.ledger if isinstance(self.ledger, EstimateLog) else None
        statuses = guardrail_status(self.policy, self.ledger, request.judged_at, wall=request.at, estimates=estimates)
        data = self.ledger.latest_data()
        note = f"billing data until {utc(data)}" if data is not None else "no billing data yet"
        lines = []
        for s in statuses:
            figures = (f"{s.spend} of {s.budget} ({s.percent}%)" if s.budget is not None and s.spend is not None
                       else f"GPU {s.gpu_rate}/h" if s.gpu_rate is not None else "")
            forecast = f", forecast {s.forecast}" if s.forecast is not None else ""
            lines.append(f"{s.guardrail} {s.scope} {s.period}: {figures}{forecast} [{s.state}]")
        return SlashAnswer(escape("\n".join(["Guardrails", *lines, note])), status_blocks(statuses, note))

    def _stopped(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        if len(cmd.args) > 1:
            raise CommandError("`stopped` takes at most one guardrail name.", USAGE["stopped"][0])
        name = self._known(cmd.args[0], "stopped").name if cmd.args else None
        active = self.ledger.stops(name, active_only=True)
        since = request.at - timedelta(days=7)
        dry = [s for s in self.ledger.stops(name, active_only=False)
               if s.dry_run and s.resumed_at is None and s.stopped_at >= since][-10:]
        note = ("Dry-run records are of the last 7 days. " if dry else "") + \
            "Resume with `/burnguard resume <guardrail>` (authorized users)."
        text = "\n".join(["Stopped by burnguard", *(_stop_line(s) for s in active)] +
                         (["Dry-run only:", *(_stop_line(s) for s in dry)] if dry else []))
        if not active and not dry:
            text = "Nothing is stopped right now."
        return SlashAnswer(escape(text), stopped_blocks(active, dry, note))

    # -- writes ---------------------------------------------------------------------------
    def _snooze(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        usage = USAGE["snooze"][0]
        guardrail = self._guardrail_arg(cmd, request, extra=1)
        refused = self._authorize("snooze", guardrail, request)
        if refused is not None:
            return refused
        if len(cmd.args) != 2:
            self._audit(request, "snooze", "failed", guardrail.name, reason="no duration")
            raise CommandError("`snooze` needs a guardrail and a duration.", usage)
        off = cmd.args[1].lower() == "off"
        try:
            length = timedelta(0) if off else parse_duration(cmd.args[1])
        except CommandError as exc:
            self._audit(request, "snooze", "failed", guardrail.name, reason=exc.reason)
            raise
        if not self._claim(request, "snooze"):
            return _already(request)
        until = request.at + length
        self.ledger.snooze(guardrail.name, until, request.user_id, request.at)
        self._audit(request, "snooze", "ok", guardrail.name, details={"until": until.isoformat()})
        if off:
            text = f"{who(request.user_id)} ended the snooze of {code(guardrail.name)}: it alerts and acts again."
        else:
            text = (f"{who(request.user_id)} snoozed {code(guardrail.name)} for {cmd.args[1]}, until {utc(until)}: "
                    "no alert and no stop from it until then.")
        return SlashAnswer(_plain(text), message_blocks("Guardrail snoozed" if not off else "Snooze ended", text,
                                                        f"Undo with `{request.command} snooze {guardrail.name} off`"
                                                        if not off else ""), "in_channel")

    def _resume(self, cmd: Command, request: CommandRequest) -> SlashAnswer:
        guardrail = self._guardrail_arg(cmd, request)
        refused = self._authorize("resume", guardrail, request)
        if refused is not None:
            return refused
        if self.resume is None:
            self._audit(request, "resume", "failed", guardrail.name, reason="resume is not available here")
            return SlashAnswer("Resume is not available on this deployment; use `burnguard resume` from the CLI.",
                               message_blocks("Resume is not available here",
                                              "Use `burnguard resume " + escape(guardrail.name) + "` from the CLI."))
        if not self._claim(request, "resume"):
            return _already(request)
        stops = self.ledger.stops(guardrail.name, active_only=True)
        if not stops:
            self._audit(request, "resume", "ok", guardrail.name, details={"started": 0, "failed": 0})
            text = f"{guardrail.name}: nothing to resume (no instance it stopped is still stopped)."
            return SlashAnswer(text, message_blocks(text, ""))
        report = self.resume(guardrail.name, request.user_id)
        outcome = "ok" if not report.failed else "failed"
        self._audit(request, "resume", outcome, guardrail.name,
                    details={"started": len(report.started), "failed": len(report.failed)})
        lines = [f"{who(request.user_id)} resumed {len(report.started)} instance(s) of {guardrail.name}"]
        lines += [f"- {cloud_name(r.cloud)} {r.name or r.instance_id}" for r in report.started]
        lines += [f"- FAILED {cloud_name(r.cloud)} {r.name or r.instance_id}: {why}" for r, why in report.failed]
        return SlashAnswer(_plain("\n".join(lines)), resume_blocks(report, request.user_id), "in_channel")

    # -- helpers --------------------------------------------------------------------------
    def _known(self, name: str, command: str) -> Guardrail:
        try:
            return self.policy.guardrail(name)
        except KeyError:
            names = [g.name for g in self.policy.guardrails]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else f" Guardrails: {', '.join(names)}."
            raise CommandError(f"No guardrail is named `{name[:60]}`.{hint}", USAGE[command][0]) from None

    def _guardrail_arg(self, cmd: Command, request: CommandRequest, *, extra: int = 0) -> Guardrail:
        """The guardrail named by a write command (bad input audited as a failed attempt)."""
        if not cmd.args or len(cmd.args) > 1 + extra:
            self._audit(request, cmd.name, "failed", None, reason="bad arguments")
            raise CommandError(f"`{cmd.name}` needs a guardrail name" + (" and a duration." if extra else "."),
                               USAGE[cmd.name][0])
        try:
            return self._known(cmd.args[0], cmd.name)
        except CommandError as exc:
            self._audit(request, cmd.name, "failed", None, reason=exc.reason)
            raise

    def _authorize(self, command: str, guardrail: Guardrail, request: CommandRequest) -> SlashAnswer | None:
        allowed = self.policy.authorized_users_for(guardrail)
        if request.user_id in allowed:
            return None
        self._audit(request, command, "refused", guardrail.name, reason="not an authorized user")
        who_may = (", ".join(who(u) for u in allowed) if allowed
                   else "nobody: the policy lists no authorized_users")
        text = f"You are not allowed to {command} {code(guardrail.name)}. Who may: {who_may}."
        return SlashAnswer(_plain(text), message_blocks(f"Not allowed to {command} {guardrail.name}",
                                                        f"Who may: {who_may}.",
                                                        "Authorized users are set in the policy "
                                                        "(slack.authorized_users, or the guardrail's own list)."))

    def _claim(self, request: CommandRequest, command: str) -> bool:
        return self.ledger.announce(f"slash|{command}|{request.request_id}", request.at,
                                    {"user": request.user_id, "text": request.text[:200]})

    def _audit(self, request: CommandRequest, command: str, outcome: str, guardrail: str | None, *,
               reason: str | None = None, details: Mapping[str, object] | None = None) -> None:
        info: dict[str, object] = {"command": command, "text": request.text[:200], "channel": request.channel_id,
                                   "request_id": request.request_id, **(details or {})}
        if reason:
            info["reason"] = reason
        self.ledger.audit(AuditEvent(request.at, "command", request.user_id, outcome, guardrail, None, info))


def _sentence(reason: str) -> str:
    reason = reason.strip()
    return (reason[:1].upper() + reason[1:]).rstrip(".") + "."


def _plain(markdown: str) -> str:
    """The text fallback of a mrkdwn line (mentions stay: notifications render them)."""
    return markdown.replace("`", "")


def _already(request: CommandRequest) -> SlashAnswer:
    text = "This command was already carried out (Slack retried it); see `/burnguard guardrails`."
    return SlashAnswer(text, message_blocks("Already done", escape(text)))


def _stop_line(s: StopRecord) -> str:
    cost = f", {cents(s.hourly_cost):,} {s.currency}/h" if s.hourly_cost is not None and s.currency else ""
    name = s.name or s.instance_id
    return f"{s.guardrail}: {cloud_name(s.cloud)} {name} ({s.instance_type}) at {utc(s.stopped_at)}{cost}"


__all__ = [
    "MAX_SNOOZE",
    "SLOW",
    "USAGE",
    "WRITES",
    "Command",
    "CommandError",
    "CommandRequest",
    "SlashAnswer",
    "SlashCommands",
    "help_answer",
    "parse_command",
    "parse_duration",
]


def _top_args(args: list[str], usage: str) -> tuple[int, str | None, Scope | None, str | None]:
    """``/burnguard top [N] [key=value | by <key>] [period]``: (limit, key, scope, period)."""
    from burnguard.services.queries import parse_scope

    limit, key, scope, period = DEFAULT_TOP, None, None, None
    while args:
        word = args.pop(0)
        if word.isdigit():
            limit = int(word)
            if not 1 <= limit <= MAX_TOP:
                raise CommandError(f"N is between 1 and {MAX_TOP}, not {word}.", usage)
        elif word.lower() == "by":
            if not args or "=" in args[0]:
                raise CommandError("`by` needs a tag key, like `by team`.", usage)
            key = args.pop(0)
        elif "=" in word:
            try:
                scope = parse_scope(word)
            except InputError as exc:
                raise CommandError(_sentence(exc.reason), usage) from None
        elif period is None:
            period = word
        else:
            raise CommandError(f"`{word[:40]}`: one period only (or did you mean `by {word[:40]}`?).", usage)
    if key is not None and scope is not None:
        raise CommandError("Give a tag or `by <key>`, not both.", usage)
    return limit, key, scope, period
