"""Invitations: the mail people receive (through a real SMTP server), and the checks at the door."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.engine import make_engine, make_sessionmaker
from server.db.migrate import upgrade
from server.db.models import Consultation, Identity, Invitation, Mail, Participant, Reminder
from server.invitations import (
    FAILURE_REASON,
    InvitationError,
    IssuedSecrets,
    compose_invitation_mail,
    create_invitation,
    queue_due_reminders,
    reminder_hook,
    reschedule,
    resend,
    revoke,
    verify_link,
    verify_passcode,
)
from server.mail import Mailer, MailSender, SenderOptions
from server.ratelimit import RateLimiter
from server.settings import Settings
from server.templates import load_template
from tests.smtpserver import SmtpServer, wait_until

NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
# 2026-12-01 10:00 in Tokyo
START = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
FAST = SenderOptions(backoff_first=0.05, backoff_max=0.2, poll_interval=0.1, smtp_timeout=2)


@dataclass(frozen=True)
class Label:
    ja: str
    en: str


@dataclass(frozen=True)
class Role:
    label: Label
    join: frozenset[str] = frozenset({"link", "passcode"})


@dataclass(frozen=True)
class Template:
    """A stand-in for server.templates.Template: only what invitations read."""

    label: Label = Label("おくやみ相談", "Bereavement consultation")
    checklist: tuple[Label, ...] = (
        Label("死亡診断書の写し", "Copy of the death certificate"),
        Label("印鑑（認印で可）", "Personal seal (an ordinary seal is fine)"),
    )
    roles: dict[str, Role] = field(default_factory=lambda: {"heir": Role(Label("ご遺族", "Heir"))})

    def role(self, name: str) -> Role:
        return self.roles[name]


TEMPLATE = Template()


@pytest.fixture
def hasher() -> PasswordHasher:
    """argon2 with small costs: the tests check behaviour, not the work factor."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'invitations.sqlite3'}"
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def make_settings(smtp_port: int = 2525) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        mail_from="madoguchi@city.example",
        public_url="https://madoguchi.city.example",
    )


@dataclass
class Invited:
    consultation_id: int
    participant_id: int
    secrets: IssuedSecrets


async def invite(
    sessions: async_sessionmaker[AsyncSession],
    hasher: PasswordHasher,
    settings: Settings,
    *,
    email: str = "hanako@example.jp",
    public_id: str = "31415926",
    reminders: tuple[dt.timedelta, ...] = (),
    now: dt.datetime = NOW,
) -> Invited:
    """One consultation with one invited heir; the invitation committed."""
    async with sessions.begin() as session:
        consultation = Consultation(
            public_id=public_id,
            template="bereavement",
            title="山田家 おくやみ相談",
            starts_at=START,
            duration_minutes=60,
        )
        participant = Participant(role="heir", display_name="山田 花子")
        participant.identity = Identity(name="山田 花子", email=email)
        consultation.participants.append(participant)
        session.add(consultation)
        await session.flush()
        issued = await create_invitation(
            session,
            participant,
            consultation,
            TEMPLATE,
            settings,
            mailer=Mailer(),
            hasher=hasher,
            now=now,
            reminders=reminders,
        )
    return Invited(consultation.id, participant.id, issued)


async def load(
    session: AsyncSession, invited: Invited
) -> tuple[Consultation, Participant, Invitation]:
    consultation = await session.get(Consultation, invited.consultation_id)
    participant = await session.get(Participant, invited.participant_id)
    invitation = (
        await session.scalars(
            select(Invitation).where(Invitation.participant_id == invited.participant_id)
        )
    ).one()
    assert consultation is not None and participant is not None
    return consultation, participant, invitation


async def deliver(sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, count: int) -> None:
    sender = MailSender(sessions, make_settings(smtp.port), options=FAST)
    sender.start()
    try:
        await wait_until(lambda: len(smtp.received()) >= count, what=f"{count} mails")
    finally:
        await sender.close()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_invitation_mail_arrives_with_link_id_passcode_checklist_and_a_calendar_event(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, hasher: PasswordHasher
) -> None:
    settings = make_settings(smtp.port)
    invited = await invite(sessions, hasher, settings)
    await deliver(sessions, smtp, 1)

    [message] = smtp.received()
    assert message["To"] == "hanako@example.jp"
    assert "山田家 おくやみ相談" in message["Subject"]
    text = text_of(message)
    link = re.search(r"https://madoguchi\.city\.example/j/(\S+)", text)
    assert link is not None
    typed_id = re.search(r"ID：(\d{4} \d{4})", text)
    passcode = re.search(r"パスコード：(\d{6})", text)
    assert typed_id is not None and passcode is not None
    assert "2026年12月1日（火）10:00〜11:00" in text
    assert "Tuesday, 1 December 2026, 10:00–11:00" in text
    for item in TEMPLATE.checklist:
        assert item.ja in text and item.en in text
    assert "https://madoguchi.city.example/check" in text
    # Japanese first, English below
    assert text.index("パスコード") < text.index("(English)") < text.index("Passcode")

    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == START
    assert event.decoded("dtend") == START + dt.timedelta(minutes=60)
    assert str(event["url"]) == invited.secrets.link
    assert "山田家 おくやみ相談" in str(event["summary"])
    # the passcode stays in the mail, out of calendars that sync to the cloud
    assert passcode.group(1) not in str(event["description"])

    # what the mail says is what opens the door
    async with sessions() as session:
        by_link = await verify_link(session, link.group(1), now=NOW)
        assert by_link is not None and by_link.id == invited.participant_id
        result = await verify_passcode(
            session, typed_id.group(1), passcode.group(1), NOW, hasher=hasher
        )
    assert result.ok and result.participant is not None
    assert result.participant.id == invited.participant_id


async def test_secrets_are_random_and_stored_only_as_hashes(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    first = await invite(sessions, hasher, make_settings(), public_id="1")
    second = await invite(sessions, hasher, make_settings(), public_id="2", email="b@x.jp")
    issued = first.secrets
    assert len(base64.urlsafe_b64decode(issued.token + "==")) * 8 >= 128
    assert re.fullmatch(r"[1-9]\d{7}", issued.join_id)
    assert re.fullmatch(r"\d{6}", issued.passcode)
    assert issued.token != second.secrets.token and issued.join_id != second.secrets.join_id
    assert issued.passcode not in repr(issued) and issued.token not in repr(issued)
    async with sessions() as session:
        _, _, invitation = await load(session, first)
    assert invitation.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert invitation.passcode_hash.startswith("$argon2id$")
    assert issued.passcode not in invitation.passcode_hash
    assert invitation.expires_at == START + dt.timedelta(minutes=60 + 30)


async def test_the_sixth_attempt_is_refused_even_with_the_right_passcode(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    join_id, right = invited.secrets.join_id, invited.secrets.passcode
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    async with sessions() as session:
        for _ in range(5):
            result = await verify_passcode(session, join_id, wrong, NOW, hasher=hasher)
            assert (result.ok, result.reason) == (False, FAILURE_REASON)
        sixth = await verify_passcode(session, join_id, right, NOW, hasher=hasher)
        assert (sixth.ok, sixth.reason, sixth.participant) == (False, FAILURE_REASON, None)
        still = await verify_passcode(session, join_id, right, NOW + dt.timedelta(minutes=14))
        assert not still.ok
        later = NOW + dt.timedelta(minutes=15, seconds=1)
        assert (await verify_passcode(session, join_id, right, later, hasher=hasher)).ok


async def test_a_right_passcode_resets_the_count_of_wrong_ones(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    join_id, right = invited.secrets.join_id, invited.secrets.passcode
    async with sessions() as session:
        for _ in range(4):
            assert not (await verify_passcode(session, join_id, "000000x", NOW, hasher=hasher)).ok
        assert (await verify_passcode(session, join_id, right, NOW, hasher=hasher)).ok
        for _ in range(4):
            assert not (await verify_passcode(session, join_id, "000000x", NOW, hasher=hasher)).ok
        assert (await verify_passcode(session, join_id, right, NOW, hasher=hasher)).ok


async def test_lockout_survives_a_caller_that_rolls_back(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    join_id, right = invited.secrets.join_id, invited.secrets.passcode
    for _ in range(5):
        async with sessions() as session:
            await verify_passcode(session, join_id, "999999x", NOW, hasher=hasher)
            await session.rollback()
    async with sessions() as session:
        assert not (await verify_passcode(session, join_id, right, NOW, hasher=hasher)).ok


async def test_parallel_guesses_cannot_exceed_the_limit(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    join_id, right = invited.secrets.join_id, invited.secrets.passcode

    async def guess(code: str) -> bool:
        async with sessions() as session:
            return (await verify_passcode(session, join_id, code, NOW, hasher=hasher)).ok

    guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right]
    await asyncio.gather(*(guess(code) for code in guesses))
    assert not await guess(right)
    async with sessions() as session:
        _, _, invitation = await load(session, invited)
    # five guesses were counted and set the lock; the others were refused uncounted
    assert invitation.locked_until == NOW + dt.timedelta(minutes=15)
    assert invitation.failed_attempts == 0


class CountingHasher(PasswordHasher):
    """Counts argon2 computations, to see that failures cost as much as successes."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.calls = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.calls += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls += 1
        return super().verify(hash, password)


async def test_every_failure_gives_the_same_reason_and_costs_one_hash(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    revoked = await invite(sessions, hasher, make_settings(), public_id="1")
    live = await invite(sessions, hasher, make_settings(), public_id="2", email="b@x.jp")
    async with sessions.begin() as session:
        _, participant, _ = await load(session, revoked)
        assert await revoke(session, participant, now=NOW)
    unknown = "11111111" if live.secrets.join_id != "11111111" else "22222222"
    after_end = START + dt.timedelta(hours=2)
    cases = [
        (unknown, live.secrets.passcode, NOW),
        (live.secrets.join_id, "000000" if live.secrets.passcode != "000000" else "1", NOW),
        (revoked.secrets.join_id, revoked.secrets.passcode, NOW),
        (live.secrets.join_id, live.secrets.passcode, after_end),
        ("", "", NOW),
        ("not an id", "x" * 10_000, NOW),
    ]
    for join_id, passcode, now in cases:
        counting = CountingHasher()
        async with sessions() as session:
            result = await verify_passcode(session, join_id, passcode, now, hasher=counting)
        assert (result.ok, result.reason, result.participant) == (False, FAILURE_REASON, None)
        assert counting.calls == 1, (join_id, passcode)


async def test_full_width_digits_and_spaces_as_typed_in_japanese_are_accepted(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    join_id = f"{invited.secrets.join_id[:4]}　{invited.secrets.join_id[4:]}".translate(wide)
    passcode = invited.secrets.passcode.translate(wide)
    async with sessions() as session:
        assert (await verify_passcode(session, join_id, passcode, NOW, hasher=hasher)).ok


async def test_a_link_works_until_the_consultation_ends_plus_grace(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    token = invited.secrets.token
    async with sessions() as session:
        assert await verify_link(session, token, now=NOW) is not None
        assert await verify_link(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert await verify_link(session, "", now=NOW) is None
        grace_end = START + dt.timedelta(minutes=90)
        assert await verify_link(session, token, now=grace_end - dt.timedelta(seconds=1))
        assert await verify_link(session, token, now=grace_end) is None


async def test_an_ended_consultation_closes_link_and_passcode(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings())
    async with sessions.begin() as session:
        consultation, _, _ = await load(session, invited)
        consultation.state = "ended"
    async with sessions() as session:
        assert await verify_link(session, invited.secrets.token, now=NOW) is None
        result = await verify_passcode(
            session, invited.secrets.join_id, invited.secrets.passcode, NOW, hasher=hasher
        )
        assert not result.ok


async def test_resend_mails_new_secrets_and_the_old_ones_stop_working(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, hasher: PasswordHasher
) -> None:
    settings = make_settings(smtp.port)
    invited = await invite(sessions, hasher, settings)
    old = invited.secrets
    async with sessions() as session:
        for _ in range(5):
            await verify_passcode(session, old.join_id, "wrong", NOW, hasher=hasher)
    async with sessions.begin() as session:
        consultation, participant, _ = await load(session, invited)
        new = await resend(
            session, participant, consultation, TEMPLATE, settings, mailer=Mailer(), hasher=hasher
        )
    assert new.join_id == old.join_id
    assert (new.token, new.passcode) != (old.token, old.passcode)
    await deliver(sessions, smtp, 1)
    # the first mail had not gone out yet: only the one with the new secrets is sent
    [message] = smtp.received()
    assert new.link in text_of(message) and old.link not in text_of(message)
    async with sessions() as session:
        assert await verify_link(session, old.token, now=NOW) is None
        assert await verify_link(session, new.token, now=NOW) is not None
        # staff resending also lifts the lockout
        assert (await verify_passcode(session, new.join_id, new.passcode, NOW, hasher=hasher)).ok
        assert not (await verify_passcode(session, old.join_id, old.passcode, NOW)).ok
        statuses = sorted((await session.scalars(select(Mail.status))).all())
    assert statuses == ["cancelled", "sent"]


async def test_revoke_stops_the_link_the_passcode_and_the_reminders(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings(), reminders=(dt.timedelta(hours=1),))
    async with sessions.begin() as session:
        _, participant, _ = await load(session, invited)
        assert await revoke(session, participant, now=NOW)
        assert not await revoke(session, participant, now=NOW)
    async with sessions() as session:
        assert await verify_link(session, invited.secrets.token, now=NOW) is None
        result = await verify_passcode(
            session, invited.secrets.join_id, invited.secrets.passcode, NOW, hasher=hasher
        )
        assert not result.ok
        assert (await session.scalars(select(Reminder.status))).all() == ["cancelled"]
        assert (await session.scalars(select(Mail.status))).all() == ["cancelled"]


async def test_inviting_twice_is_refused_and_resend_is_the_way(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    settings = make_settings()
    invited = await invite(sessions, hasher, settings)
    async with sessions() as session:
        consultation, participant, _ = await load(session, invited)
        with pytest.raises(InvitationError):
            await create_invitation(session, participant, consultation, TEMPLATE, settings)


async def test_without_an_email_address_the_secrets_are_issued_but_no_mail_is_queued(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings(), email="")
    assert not invited.secrets.mailed
    async with sessions() as session:
        assert (await session.scalars(select(Mail))).all() == []


class Clock:
    """A settable clock, shared by the senders of one test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def test_a_reminder_fires_once_across_a_restart(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, hasher: PasswordHasher
) -> None:
    settings = make_settings(smtp.port)
    await invite(sessions, hasher, settings, reminders=(dt.timedelta(hours=1),))
    clock = Clock(NOW)

    def new_sender() -> MailSender:
        hook = reminder_hook(settings, templates=lambda _name: TEMPLATE)
        return MailSender(sessions, settings, options=FAST, hooks=[hook], clock=clock)

    # before the restart: the invitation goes, the reminder is not due yet
    first = new_sender()
    assert await first.run_once() == 1
    await first.close()

    # a crash mid-round: the reminder was claimed, but the transaction never committed
    clock.now = START - dt.timedelta(minutes=59)
    async with sessions() as session:
        assert await queue_due_reminders(session, clock.now, settings=settings) == 1
        await session.rollback()

    # after the restart: due now, sent once, and never again by this or the next sender
    second = new_sender()
    assert await second.run_once() == 1
    assert await second.run_once() == 0
    await second.close()
    third = new_sender()
    assert await third.run_once() == 0
    await third.close()

    subjects = [m["Subject"] for m in smtp.received()]
    assert len(subjects) == 2 and "リマインダー" in subjects[1]
    reminder = text_of(smtp.received()[1])
    assert "2026年12月1日（火）10:00〜11:00" in reminder
    assert TEMPLATE.checklist[0].ja in reminder
    async with sessions() as session:
        assert (await session.scalars(select(Reminder.status))).all() == ["queued"]


async def test_two_senders_at_once_send_a_due_reminder_once(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, hasher: PasswordHasher
) -> None:
    settings = make_settings(smtp.port)
    await invite(sessions, hasher, settings, reminders=(dt.timedelta(hours=1),))
    clock = Clock(START - dt.timedelta(minutes=30))
    senders = [
        MailSender(sessions, settings, hooks=[reminder_hook(settings)], clock=clock)
        for _ in range(2)
    ]
    await asyncio.gather(*(sender.run_once() for sender in senders))
    await asyncio.gather(*(sender.run_once() for sender in senders))
    subjects = [m["Subject"] for m in smtp.received()]
    assert sorted("リマインダー" in s for s in subjects) == [False, True]


async def test_no_reminder_for_a_cancelled_consultation_or_after_the_start(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    settings = make_settings()
    cancelled = await invite(
        sessions, hasher, settings, public_id="1", reminders=(dt.timedelta(hours=1),)
    )
    await invite(
        sessions,
        hasher,
        settings,
        public_id="2",
        email="b@x.jp",
        reminders=(dt.timedelta(hours=1),),
    )
    async with sessions.begin() as session:
        consultation, _, _ = await load(session, cancelled)
        consultation.state = "cancelled"
    async with sessions.begin() as session:
        # the sender was down until after the start: a late reminder helps nobody
        assert (
            await queue_due_reminders(session, START + dt.timedelta(minutes=1), settings=settings)
            == 0
        )
        statuses = (await session.scalars(select(Reminder.status))).all()
    assert statuses == ["cancelled", "cancelled"]


async def test_moving_a_consultation_moves_expiry_and_reminders(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    invited = await invite(sessions, hasher, make_settings(), reminders=(dt.timedelta(hours=1),))
    later = START + dt.timedelta(days=7)
    async with sessions.begin() as session:
        consultation, _, _ = await load(session, invited)
        consultation.starts_at = later
        assert (
            await reschedule(session, consultation, now=NOW, reminders=(dt.timedelta(hours=1),))
            == 1
        )
    async with sessions() as session:
        _, _, invitation = await load(session, invited)
        reminders = (await session.scalars(select(Reminder))).all()
        assert invitation.expires_at == later + dt.timedelta(minutes=90)
        assert [(r.due_at, r.status) for r in reminders] == [
            (later - dt.timedelta(hours=1), "pending")
        ]
        assert await verify_link(session, invited.secrets.token, now=START + dt.timedelta(days=1))


async def test_reminders_are_only_scheduled_in_the_future(
    sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher
) -> None:
    lead_times = (dt.timedelta(days=3), dt.timedelta(hours=12), dt.timedelta(hours=1))
    await invite(sessions, hasher, make_settings(), reminders=lead_times)
    async with sessions() as session:
        due = (await session.scalars(select(Reminder.due_at).order_by(Reminder.due_at))).all()
    # NOW is 22 hours before START: the three-day reminder would already be late
    assert due == [START - dt.timedelta(hours=12), START - dt.timedelta(hours=1)]


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_counts_attempts_per_client_address_in_a_sliding_window() -> None:
    time = FakeTime()
    limiter = RateLimiter(3, window=60, clock=time)
    assert [limiter.allow("192.0.2.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("192.0.2.2")
    assert 0 < limiter.retry_after("192.0.2.1") <= 60
    time.now += 61
    assert limiter.allow("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 0


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("2001:db8::1", "2001:db8::2", True),
        ("2001:db8:0:0:ffff::1", "2001:db8::1", True),
        ("2001:db8:0:1::1", "2001:db8::1", False),
        ("192.0.2.1", "192.0.2.2", False),
    ],
)
def test_rate_limiter_treats_an_ipv6_slash_64_as_one_client(
    first: str, second: str, shared: bool
) -> None:
    limiter = RateLimiter(1, clock=FakeTime())
    assert limiter.allow(first)
    assert limiter.allow(second) is not shared


def test_the_shipped_bereavement_template_gives_a_complete_mail() -> None:
    template = load_template(
        Path(__file__).resolve().parent.parent / "consult_templates" / "bereavement.toml"
    )
    consultation = Consultation(
        public_id="31415926",
        template="bereavement",
        title="相談",
        starts_at=START,
        duration_minutes=60,
    )
    issued = IssuedSecrets(
        participant_id=7,
        join_id="12345678",
        expires_at=START,
        mailed=True,
        passcode="246802",
        token="t0ken",
        link="https://madoguchi.city.example/j/t0ken",
    )
    composed = compose_invitation_mail(
        consultation=consultation,
        template=template,
        role="heir",
        name="山田 花子",
        secrets=issued,
        settings=make_settings(),
        now=NOW,
    )
    assert "ご遺族" in composed.body and "Heir" in composed.body
    assert "ID：1234 5678" in composed.body and "Passcode: 246802" in composed.body
    for item in template.checklist:
        assert f"・{item.ja}" in composed.body and f"- {item.en}" in composed.body
    [ics] = composed.attachments
    assert icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
