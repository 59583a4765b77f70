"""Outgoing mail: queued in the caller's transaction, delivered by a background sender.

`Mailer.queue` adds a `Mail` row to the caller's session, so the mail exists if and only if the
change that caused it is committed. `MailSender` delivers queued rows through SMTP
(aiosmtplib), retrying with exponential backoff, or, without SMTP settings, keeps them in the
local outbox that staff read at /outbox. Each attempt is claimed with a conditional UPDATE, so
two senders on one database never send the same mail at the same time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Mail, utcnow
from server.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
# runs at the start of every sender round, in a transaction of its own (e.g. due reminders)
SenderHook = Callable[[AsyncSession, dt.datetime], Awaitable[Any]]

QUEUED, SENT, OUTBOX, FAILED, CANCELLED = "queued", "sent", "outbox", "failed", "cancelled"


@dataclass(frozen=True)
class Attachment:
    """A file attached to a mail; text content (non-text types carry base64)."""

    filename: str
    # a MIME type, with parameters if any: "text/calendar; method=PUBLISH"
    content_type: str
    content: str

    def as_json(self) -> dict[str, str]:
        """The form stored in `Mail.attachments`."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "content": self.content,
        }


@dataclass(frozen=True)
class SenderOptions:
    """How the sender retries; times in seconds. Tests shrink them to stay fast."""

    # attempts before a mail is marked failed
    max_attempts: int = 8
    # wait after the first failure; doubles after each further one, up to backoff_max
    backoff_first: float = 30.0
    backoff_max: float = 3600.0
    # longest sleep between rounds when nothing wakes the sender
    poll_interval: float = 10.0
    # how long a claimed mail is hidden from other senders (a crash mid-send retries after it)
    lease: float = 300.0
    # mails sent per round
    batch_size: int = 50
    smtp_timeout: float = 30.0

    def backoff(self, attempts: int) -> dt.timedelta:
        """The wait after the `attempts`-th failed attempt."""
        seconds = self.backoff_first * 2 ** max(attempts - 1, 0)
        return dt.timedelta(seconds=min(seconds, self.backoff_max))


class Mailer:
    """Queues mail in the caller's transaction and wakes the sender once it is committed."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self._wake = wake

    def queue(
        self,
        session: AsyncSession,
        *,
        to: str,
        subject: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        kind: str = "",
        participant_id: int | None = None,
        now: dt.datetime | None = None,
    ) -> Mail:
        """Add a mail to `session`; it is sent only if the caller commits."""
        now = now or utcnow()
        mail = Mail(
            to_address=to,
            subject=subject,
            body=body,
            attachments=[a.as_json() for a in attachments],
            status=QUEUED,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
            kind=kind,
            participant_id=participant_id,
        )
        session.add(mail)
        if self._wake is not None:
            wake = self._wake
            # after commit, not now: the sender would not see an uncommitted row
            event.listen(session.sync_session, "after_commit", lambda _s: wake(), once=True)
        return mail


def build_message(mail: Mail, mail_from: str) -> EmailMessage:
    """The MIME message of a queued mail: UTF-8 text, then its attachments."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)
    # stable across retries, so a receiver can drop a duplicate after a crash mid-send
    domain = mail_from.rpartition("@")[2].strip(">") or "localhost"
    message["Message-ID"] = f"<madoguchi.{mail.id}.{int(mail.created_at.timestamp())}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body)
    for item in mail.attachments:
        _attach(message, item)
    return message


def _attach(message: EmailMessage, item: dict[str, str]) -> None:
    mime, *raw_params = (part.strip() for part in item["content_type"].split(";"))
    maintype, _, subtype = mime.partition("/")
    params = dict(p.split("=", 1) for p in raw_params if "=" in p)
    if maintype == "text":
        message.add_attachment(
            item["content"], subtype=subtype, filename=item["filename"], params=params
        )
    else:
        message.add_attachment(
            base64.b64decode(item["content"]),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
            params=params,
        )


class MailSender:
    """Delivers queued mail in the background: SMTP with backoff, or the local outbox."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        options: SenderOptions | None = None,
        hooks: Sequence[SenderHook] = (),
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._options = options or SenderOptions()
        self._hooks = tuple(hooks)
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the background loop; a second call does nothing."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="madoguchi-mail-sender")

    async def close(self) -> None:
        """Stop after the mail being sent, if any; idempotent. The rest stays queued."""
        self._closed = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        # a mail cut off between SMTP and the DB update would be sent twice later
        done, _ = await asyncio.wait({task}, timeout=self._options.smtp_timeout + 5)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def wake(self) -> None:
        """Run a round now (new mail was committed) instead of at the next poll."""
        self._wakeup.set()

    async def run_once(self) -> int:
        """One round: the hooks, then every due mail; returns how many mails were handled."""
        now = self._clock()
        for hook in self._hooks:
            try:
                async with self._sessions.begin() as session:
                    await hook(session, now)
            except Exception:
                log.exception("mail sender hook %r failed", hook)
        handled = 0
        for mail_id in await self._due_ids(now):
            if self._closed:
                break
            mail = await self._claim(mail_id, now)
            if mail is not None:
                await self._deliver(mail)
                handled += 1
        return handled

    async def _run(self) -> None:
        while not self._closed:
            self._wakeup.clear()
            try:
                await self.run_once()
                wait = await self._seconds_to_next()
            except Exception:
                # a database hiccup must not end delivery for good
                log.exception("mail sender round failed")
                wait = self._options.poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    async def _seconds_to_next(self) -> float:
        async with self._sessions() as session:
            next_at = await session.scalar(
                select(Mail.next_attempt_at)
                .where(Mail.status == QUEUED)
                .order_by(Mail.next_attempt_at)
                .limit(1)
            )
        if next_at is None:
            return self._options.poll_interval
        seconds = (next_at - self._clock()).total_seconds()
        return min(max(seconds, 0.0), self._options.poll_interval)

    async def _due_ids(self, now: dt.datetime) -> list[int]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Mail.id)
                .where(Mail.status == QUEUED, Mail.next_attempt_at <= now)
                .order_by(Mail.next_attempt_at, Mail.id)
                .limit(self._options.batch_size)
            )
            return list(rows)

    async def _claim(self, mail_id: int, now: dt.datetime) -> Mail | None:
        # conditional UPDATE: only one sender wins a mail; the lease hides it from the others
        lease_end = now + dt.timedelta(seconds=self._options.lease)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Mail)
                .where(Mail.id == mail_id, Mail.status == QUEUED, Mail.next_attempt_at <= now)
                .values(attempts=Mail.attempts + 1, next_attempt_at=lease_end)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            mail = await session.get(Mail, mail_id)
            if mail is not None:
                # detached before commit, so it stays readable whatever the session options
                session.expunge(mail)
            return mail

    async def _deliver(self, mail: Mail) -> None:
        if self._settings.outbox_enabled:
            await self._finish(mail.id, status=OUTBOX, sent_at=self._clock(), last_error="")
            return
        try:
            await self._send_smtp(build_message(mail, self._settings.mail_from))
        except Exception as exc:
            await self._failed(mail, exc)
        else:
            await self._finish(mail.id, status=SENT, sent_at=self._clock(), last_error="")

    async def _send_smtp(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=self._options.smtp_timeout,
        )

    async def _failed(self, mail: Mail, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        gave_up = mail.attempts >= self._options.max_attempts or _permanent(exc)
        # the id, not the address: logs should not collect residents' addresses
        log.warning("mail %s, attempt %s: %s", mail.id, mail.attempts, error)
        values: dict[str, Any] = {"status": FAILED, "last_error": error}
        if not gave_up:
            retry_at = self._clock() + self._options.backoff(mail.attempts)
            values = {"status": QUEUED, "last_error": error, "next_attempt_at": retry_at}
        # only while still queued: staff may have cancelled it (revoke, resend) meanwhile
        await self._finish(mail.id, only_if_queued=True, **values)

    async def _finish(self, mail_id: int, *, only_if_queued: bool = False, **values: Any) -> None:
        query = update(Mail).where(Mail.id == mail_id)
        if only_if_queued:
            query = query.where(Mail.status == QUEUED)
        async with self._sessions.begin() as session:
            await session.execute(
                query.values(**values).execution_options(synchronize_session=False)
            )


def _permanent(exc: Exception) -> bool:
    # a 5xx reply about the message or the recipient will not change on retry; a login
    # failure is a configuration problem that staff can fix, so it is retried
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return False
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500


async def run_sender(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    options: SenderOptions | None = None,
    hooks: Sequence[SenderHook] = (),
) -> None:
    """Deliver mail until cancelled; for a background task that owns no MailSender."""
    sender = MailSender(sessions, settings, options=options, hooks=hooks)
    sender.start()
    try:
        await asyncio.Event().wait()
    finally:
        await sender.close()


async def list_mail(
    session: AsyncSession,
    *,
    status: str | None = None,
    participant_id: int | None = None,
    limit: int = 100,
) -> list[Mail]:
    """Mail for staff to see, newest first: what was sent, what waits, what failed and why."""
    query = select(Mail).order_by(Mail.created_at.desc(), Mail.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Mail.status == status)
    if participant_id is not None:
        query = query.where(Mail.participant_id == participant_id)
    return list(await session.scalars(query))


async def list_outbox(session: AsyncSession, limit: int = 100) -> list[Mail]:
    """The local outbox shown at /outbox, newest first."""
    return await list_mail(session, status=OUTBOX, limit=limit)


async def retry_mail(session: AsyncSession, mail_id: int, now: dt.datetime | None = None) -> bool:
    """Queue a failed mail again with a fresh count of attempts; False if it had not failed."""
    result = await session.execute(
        update(Mail)
        .where(Mail.id == mail_id, Mail.status == FAILED)
        .values(status=QUEUED, attempts=0, next_attempt_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1
