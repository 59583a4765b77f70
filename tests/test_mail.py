"""Mail is queued with the caller's change and delivered by SMTP (a real aiosmtpd) or outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.engine import make_engine, make_sessionmaker
from server.db.migrate import upgrade
from server.db.models import Mail, utcnow
from server.mail import (
    Attachment,
    Mailer,
    MailSender,
    SenderOptions,
    build_message,
    list_mail,
    list_outbox,
    retry_mail,
)
from server.settings import Settings
from tests.smtpserver import SmtpServer, wait_until

# backoff in tens of milliseconds, so a retry test takes well under a second
FAST = SenderOptions(backoff_first=0.05, backoff_max=0.2, poll_interval=0.1, smtp_timeout=2)
ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//\r\nEND:VCALENDAR\r\n"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'mail.sqlite3'}"
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def smtp_settings(port: int) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        mail_from="madoguchi@city.example",
    )


async def queue_one(
    sessions: async_sessionmaker[AsyncSession], mailer: Mailer | None = None, to: str = "a@x.jp"
) -> int:
    async with sessions.begin() as session:
        mail = (mailer or Mailer()).queue(
            session,
            to=to,
            subject="ご案内 / Invitation",
            body="日本語の本文\n\nEnglish body\n",
            attachments=[Attachment("invitation.ics", "text/calendar; method=PUBLISH", ICS)],
            kind="invitation",
        )
        await session.flush()
        return mail.id


async def mail_row(sessions: async_sessionmaker[AsyncSession], mail_id: int) -> Mail:
    async with sessions() as session:
        mail = await session.get(Mail, mail_id)
        assert mail is not None
        return mail


async def test_mail_is_queued_only_if_the_callers_transaction_commits(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            Mailer().queue(session, to="a@x.jp", subject="s", body="b")
            raise RuntimeError("the caller's change failed")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Mail)) == 0
    mail_id = await queue_one(sessions)
    assert (await mail_row(sessions, mail_id)).status == "queued"


async def test_queued_mail_arrives_over_smtp_with_its_calendar_attachment(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer
) -> None:
    mail_id = await queue_one(sessions)
    sender = MailSender(sessions, smtp_settings(smtp.port), options=FAST)
    sender.start()
    try:
        await wait_until(lambda: _status_is(sessions, mail_id, "sent"), what="the mail sent")
    finally:
        await sender.close()
    [message] = smtp.received()
    assert message["Subject"] == "ご案内 / Invitation"
    assert message["From"] == "madoguchi@city.example"
    assert message["To"] == "a@x.jp"
    body = message.get_body(("plain",))
    assert body is not None and "日本語の本文" in body.get_content()
    [ics] = [part for part in message.iter_attachments()]
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_param("method") == "PUBLISH"
    assert ics.get_filename() == "invitation.ics"
    assert icalendar.Calendar.from_ical(ics.get_content())["PRODID"] == "-//test//"
    row = await mail_row(sessions, mail_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    assert row.sent_at is not None


async def test_committing_wakes_the_sender_without_waiting_for_its_poll(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer
) -> None:
    slow_poll = SenderOptions(poll_interval=60)
    sender = MailSender(sessions, smtp_settings(smtp.port), options=slow_poll)
    sender.start()
    try:
        await asyncio.sleep(0)  # let the first, empty round start its long wait
        await queue_one(sessions, Mailer(wake=sender.wake))
        await wait_until(lambda: len(smtp.received()) == 1, within=5, what="the woken sender")
    finally:
        await sender.close()


async def test_smtp_down_is_retried_with_backoff_and_delivered_when_it_comes_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    smtp = SmtpServer()  # nothing listens on its port yet
    options = SenderOptions(backoff_first=0.3, backoff_max=1.2, poll_interval=0.1, max_attempts=50)
    mail_id = await queue_one(sessions)
    sender = MailSender(sessions, smtp_settings(smtp.port), options=options)
    sender.start()
    try:
        # when each failed attempt scheduled the next one; a row seen mid-attempt carries the
        # sending lease (minutes ahead) instead, and says nothing about the backoff
        retry_at: dict[int, dt.datetime] = {}
        last: list[Mail] = []

        async def failed_twice() -> bool:
            row = await mail_row(sessions, mail_id)
            last[:] = [row]
            if row.attempts and row.next_attempt_at < utcnow() + dt.timedelta(seconds=60):
                retry_at[row.attempts] = row.next_attempt_at
            return {1, 2} <= retry_at.keys()

        await wait_until(failed_twice, within=20, what="two failed attempts")
        assert last[0].status == "queued" and last[0].last_error  # staff see why it waits
        # each retry waits longer than the one before
        assert retry_at[2] - retry_at[1] > dt.timedelta(0)
        await asyncio.to_thread(smtp.start)
        await wait_until(lambda: len(smtp.received()) == 1, what="delivery after the outage")
        await wait_until(
            lambda: _status_is(sessions, mail_id, "sent"), what="the mail to be marked sent"
        )
    finally:
        await sender.close()
        smtp.stop()
    assert len(smtp.received()) == 1
    assert (await mail_row(sessions, mail_id)).last_error == ""


async def _status_is(sessions: async_sessionmaker[AsyncSession], mail_id: int, status: str) -> bool:
    return (await mail_row(sessions, mail_id)).status == status


async def test_mail_is_marked_failed_after_the_last_attempt_and_staff_can_retry_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    smtp = SmtpServer()
    options = SenderOptions(
        backoff_first=0.01, backoff_max=0.01, poll_interval=0.05, max_attempts=3
    )
    mail_id = await queue_one(sessions)
    sender = MailSender(sessions, smtp_settings(smtp.port), options=options)
    sender.start()
    try:
        await wait_until(lambda: _status_is(sessions, mail_id, "failed"), what="give-up")
        row = await mail_row(sessions, mail_id)
        assert row.attempts == 3 and "Connect" in row.last_error
        async with sessions() as session:
            assert [m.id for m in await list_mail(session, status="failed")] == [mail_id]
        await asyncio.to_thread(smtp.start)
        async with sessions.begin() as session:
            assert await retry_mail(session, mail_id)
            assert not await retry_mail(session, mail_id)  # no longer failed
        sender.wake()
        await wait_until(lambda: _status_is(sessions, mail_id, "sent"), what="the retried mail")
    finally:
        await sender.close()
        smtp.stop()


async def test_a_permanent_refusal_fails_at_once(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer
) -> None:
    smtp.refuse.add("nobody@x.jp")
    mail_id = await queue_one(sessions, to="nobody@x.jp")
    sender = MailSender(sessions, smtp_settings(smtp.port), options=FAST)
    assert await sender.run_once() == 1
    row = await mail_row(sessions, mail_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error


async def test_without_smtp_settings_mail_goes_to_the_outbox(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings(smtp_host="", mail_from="madoguchi@city.example")
    assert settings.outbox_enabled
    mail_id = await queue_one(sessions)
    sender = MailSender(sessions, settings, options=FAST)
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0
    async with sessions() as session:
        [kept] = await list_outbox(session)
    assert kept.id == mail_id and kept.status == "outbox" and kept.sent_at is not None
    message = build_message(kept, settings.mail_from)
    assert message["Subject"] == "ご案内 / Invitation"
    assert "Message-ID" in message


async def test_two_senders_on_one_database_send_each_mail_once(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer
) -> None:
    for n in range(6):
        await queue_one(sessions, to=f"p{n}@x.jp")
    settings = smtp_settings(smtp.port)
    first, second = MailSender(sessions, settings), MailSender(sessions, settings)
    counts = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(counts) == 6
    assert sorted(m["To"] for m in smtp.received()) == [f"p{n}@x.jp" for n in range(6)]


async def test_close_is_idempotent_and_a_closed_sender_does_not_restart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender = MailSender(sessions, Settings(), options=FAST)
    sender.start()
    sender.start()
    await sender.close()
    await sender.close()
    sender.start()
    await sender.close()


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (30, 3600)]
)
def test_backoff_doubles_after_each_failure_up_to_the_maximum(attempts: int, seconds: int) -> None:
    assert SenderOptions().backoff(attempts) == dt.timedelta(seconds=seconds)


async def test_a_mail_cancelled_while_its_send_fails_stays_cancelled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    mail_id = await queue_one(sessions)

    class CancelledMidSend(MailSender):
        async def _send_smtp(self, message: EmailMessage) -> None:
            async with sessions.begin() as session:
                await session.execute(update(Mail).values(status="cancelled"))
            raise ConnectionRefusedError("the server went away")

    sender = CancelledMidSend(sessions, smtp_settings(1), options=FAST)
    assert await sender.run_once() == 1
    assert (await mail_row(sessions, mail_id)).status == "cancelled"
    assert await sender.run_once() == 0
