"""Notices: a summary to IT when a case closes, a heads-up to a contractor's manager before the end date,
and checklist reminders to task owners (``offboard.checklist._tasks``).

Notifiers are :class:`offboard.Notifier` classes with a ``name``, a pydantic ``Settings`` and
``send(notice)``, registered through the ``register_notifiers`` hook; Slack (chat.postMessage)
and SMTP email are built in. The configuration names instances::

    notifiers:
      it-slack:
        type: slack
        settings: {token: env:SLACK_BOT_TOKEN, channel: "#it-offboarding"}
      mail:
        type: email
        settings: {host: smtp.corp.example, sender: offboard@corp.example, to: [it@corp.example],
                   username: offboard, password: file:/run/secrets/smtp}
        events: [end_date]          # default: all (case_closed, end_date, task_due, task_overdue, owed,
                                    # residual, equipment_missing, approval)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..cases import CaseClosed
from ..config._logging import get_logger
from ..config._secrets import Secret
from ..errors import ConfigError, NotifyError, OffboardError
from ..hookspecs import hookimpl
from ..notifiers import Notice, Notifier

__all__ = [
    "Notice",
    "Notifier",
    "SlackNotifier",
    "EmailNotifier",
    "NotifyError",
    "notifiers_for",
    "notify",
    "send_end_date_notices",
]

log = get_logger("offboard.notifiers")
Event = Literal[
    "case_closed", "end_date", "task_due", "task_overdue", "owed", "residual", "equipment_missing", "approval"
]
EVENTS: tuple[Event, ...] = (
    "case_closed",
    "end_date",
    "task_due",
    "task_overdue",
    "owed",
    "residual",
    "equipment_missing",
    "approval",
)


class SlackNotifier(Notifier):
    """Slack through chat.postMessage: the IT channel, or managers by direct message."""

    name = "slack"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        token: Secret = Field(description="bot token (chat:write, users:read.email)")
        channel: str = Field(description="the IT channel id or #name for case summaries")
        api_url: str = "https://slack.com/api/"
        timeout: int = 15

    settings: Settings

    def _client(self) -> Any:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        url = self.settings.api_url if self.settings.api_url.endswith("/") else self.settings.api_url + "/"
        client = WebClient(token=self.settings.token.reveal(), base_url=url, timeout=self.settings.timeout)
        client.retry_handlers.append(
            RateLimitErrorRetryHandler(max_retry_count=3)
        )  # chat.postMessage: about 1 per second per channel
        return client

    def send(self, notice: Notice) -> list[str]:
        from slack_sdk.errors import SlackApiError, SlackClientError

        client = self._client()
        reached = []
        try:
            if not notice.to:
                client.chat_postMessage(channel=self.settings.channel, text=f"*{notice.subject}*\n{notice.text}")
                return [self.settings.channel]
            for email in notice.to:
                user = client.users_lookupByEmail(email=email)["user"]["id"]
                client.chat_postMessage(channel=user, text=f"*{notice.subject}*\n{notice.text}")
                reached.append(email)
        except SlackApiError as exc:
            raise NotifyError(
                f"{self.instance}: Slack answered {exc.response.get('error') or exc.response.status_code}"
            ) from None
        except SlackClientError as exc:
            raise NotifyError(f"{self.instance}: cannot reach Slack: {type(exc).__name__}") from None
        except OSError as exc:
            raise NotifyError(f"{self.instance}: cannot reach Slack: {exc.strerror or type(exc).__name__}") from None
        return reached


class EmailNotifier(Notifier):
    """Email over SMTP (STARTTLS, implicit TLS, or plain for a local relay)."""

    name = "email"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        host: str
        port: int | None = Field(
            default=None, ge=1, le=65535, description="default 587, 465 with security: ssl, 25 with none"
        )
        security: Literal["starttls", "ssl", "none"] = "starttls"
        sender: str
        to: list[str] = Field(default_factory=list, description="IT addresses for case summaries")
        username: str | None = None
        password: Secret | None = None
        timeout: float = 15.0

    settings: Settings

    def send(self, notice: Notice) -> list[str]:
        import smtplib
        import ssl
        from email.message import EmailMessage

        s = self.settings
        recipients = list(notice.to or s.to)
        if not recipients:
            raise NotifyError(f"{self.instance}: no recipient (set `to:` for case summaries)")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.sender, ", ".join(recipients), notice.subject
        message.set_content(notice.text)
        port = s.port or {"starttls": 587, "ssl": 465, "none": 25}[s.security]
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, port, timeout=s.timeout)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.username and s.password:
                    smtp.login(s.username, s.password.reveal())
                refused = smtp.send_message(message, s.sender, recipients)
        except smtplib.SMTPException as exc:
            raise NotifyError(f"{self.instance}: SMTP server {s.host}:{port} refused: {type(exc).__name__}") from None
        except OSError as exc:
            raise NotifyError(
                f"{self.instance}: cannot reach SMTP server {s.host}:{port}: {exc.strerror or type(exc).__name__}"
            ) from None
        return [r for r in recipients if r not in refused]


class NotifierConfig(BaseModel):
    """One configured notifier instance."""

    model_config = ConfigDict(extra="forbid")
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=lambda: list(EVENTS))


def notifiers_for(config: Any, event: str) -> list[Notifier]:
    """The configured notifiers that want ``event``; configuration errors name the key."""
    from .. import plugins

    where = str(getattr(config, "source", None) or "config")
    classes = plugins.registered("register_notifiers")
    out = []
    for instance, raw in (config.notifiers or {}).items():
        try:
            item = NotifierConfig.model_validate(raw)
        except ValidationError as exc:
            from ..config._config import format_validation_error

            raise ConfigError(format_validation_error(exc, where, f"notifiers.{instance}")) from None
        if event not in item.events:
            continue
        cls = classes.get(item.type)
        if cls is None:
            raise ConfigError(
                f"unknown notifier type {item.type!r} (installed: {', '.join(sorted(classes))})",
                where=f"{where}: notifiers.{instance}",
            )
        try:
            out.append(cls(instance, item.settings))
        except ValidationError as exc:
            from ..config._config import format_validation_error

            raise ConfigError(format_validation_error(exc, where, f"notifiers.{instance}.settings")) from None
    return out


def _deliver(notifiers: list[Notifier], notice: Notice) -> tuple[list[str], list[str]]:
    reached, errors = [], []
    for notifier in notifiers:
        try:
            reached += [f"{notifier.instance}:{r}" for r in notifier.send(notice)]
        except NotifyError as exc:
            from ..config._logging import redact

            errors.append(redact(str(exc)))
            log.warning("notice not delivered", notifier=notifier.instance, kind=notice.kind, error=redact(str(exc)))
    return reached, errors


def notify(config: Any, event: str, notice: Notice) -> list[str]:
    """Send ``notice`` through the notifiers configured for ``event``; who received it (failures are logged)."""
    return _deliver(notifiers_for(config, event), notice)[0]


# -- case summaries ----------------------------------------------------------------


def case_summary(case: CaseClosed) -> Notice:
    """The IT-channel message for a closed case."""
    who = case.person.id or "?"
    lines = [f"Case {case.id} for {who} closed {case.status}."]
    if case.summary:
        lines.append("Not verified:" if case.status == "incomplete" else "Notes:")
        lines += [f"- {r}" for r in case.summary[:50]]
        if len(case.summary) > 50:
            lines.append(f"... and {len(case.summary) - 50} more")
    return Notice("case_closed", f"offboard: case for {who} {case.status}", "\n".join(lines))


@hookimpl
def case_closed(case):
    """Send the IT summary of every closed case, complete or not."""
    case.notify(case_summary(case))


@hookimpl
def register_notifiers(register):
    register(SlackNotifier)
    register(EmailNotifier)


# -- end-date notices ------------------------------------------------------------------


def _end(person: Any) -> datetime:
    end = person.end_date
    if end.tzinfo is None:
        end = end.replace(tzinfo=ZoneInfo(person.timezone or "UTC"))
    return end.astimezone(UTC)


def end_date_notice(person: Any, manager: str, now: datetime, tasks: Sequence[Any] = ()) -> Notice:
    """The heads-up a manager gets before a contractor's end date; ``tasks``: the checklist steps due by then."""
    local = _end(person).astimezone(ZoneInfo(person.timezone or "UTC"))
    days = max(0, (_end(person) - now).days)
    when = f"{local:%Y-%m-%d %H:%M} {person.timezone or 'UTC'}"
    who = f"{person.name} ({person.email or person.id})" if person.name else (person.email or person.id)
    text = (
        f"{who} is a contractor whose end date is {when}, in {days} day(s). After that, offboard revokes their access "
        "in every system automatically.\nIf the engagement is extended, update the end date in the "
        "HR system before then."
    )
    if tasks:
        text += "\nBefore the last day (owner, due date):" + "".join(
            f"\n- {t.title} ({t.owner}, {t.due_date})" for t in tasks
        )
    return Notice("end_date", f"Access of {person.name or person.id} ends on {local:%Y-%m-%d}", text, (manager,))


def _before_end(engine: Any, person: Any, end: datetime) -> list[Any]:
    """The checklist tasks due by the end date: what the manager can start on now."""
    try:
        tasks = engine.checklist(person, engine.policy_for(person), end)
    except OffboardError as exc:  # a bad policy or equipment file must not hold back the notice
        log.warning("checklist not shown in the end-date notice", person=person.id, error=str(exc))
        return []
    return [t for t in tasks if t.due_at <= end]


def send_end_date_notices(engine: Any, days: int | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Tell each contractor's manager ``days`` before the end date (``sweep.notice_days``, default 7), once."""
    days = int(engine.config.sweep.get("notice_days", 7)) if days is None else days
    now = (now or engine.clock()).astimezone(UTC)
    notifiers = notifiers_for(engine.config, "end_date")
    if not notifiers:
        return []
    people = [p for source in engine.people() for p in source.people()]
    emails: dict[str, str] = {}
    for p in people:
        for key in (p.id, p.employee_id, p.email):
            if key and p.email:
                emails.setdefault(key.lower(), p.email)
    done = engine.store.notices.sent("end_date")
    sent = []
    for person in people:
        if person.type != "contractor" or person.end_date is None or not person.manager or not person.active:
            continue
        end = _end(person)
        if not now < end <= now + timedelta(days=days) or (person.id, end) in done:
            continue
        manager = emails.get(person.manager.lower(), person.manager)
        if "@" not in manager:
            log.warning("manager has no email address", person=person.id, manager=person.manager)
            continue
        reached, errors = _deliver(notifiers, end_date_notice(person, manager, now, _before_end(engine, person, end)))
        if not reached:
            continue
        engine.store.notices.add(person.id, "end_date", end, engine.clock(), _json(reached))
        fields = {
            "person": {"id": person.id},
            "kind": "end_date",
            "end_date": end.isoformat(),
            "to": reached,
            "errors": errors,
        }
        engine.record("notice", None, fields)
        sent.append(fields)
        done.add((person.id, end))
    return sent


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
