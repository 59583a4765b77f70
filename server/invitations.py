"""Invitations: personal links and ID + passcode, their mail, their checks, and reminders.

Secrets are shown once: the link token is stored as its sha256, the passcode as an argon2
hash. Both stop working when the consultation ends (plus a short grace), when staff revoke
the invitation, or when staff resend it (new secrets replace the old). Wrong passcodes lock
the ID for 15 minutes after 5 failures; every failure looks the same to the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from argon2 import PasswordHasher
from sqlalchemy import Select, Update, case, delete, exists, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from server.db.models import (
    Consultation,
    Identity,
    Invitation,
    Mail,
    Participant,
    Reminder,
    UTCDateTime,
    utcnow,
)
from server.hashing import PASSCODES, hash_secret, verify_secret
from server.mail import Attachment, Mailer, SenderHook
from server.settings import Settings

# 192 bits in the link; the issue asks for at least 128
TOKEN_BYTES = 24
JOIN_ID_DIGITS = 8
PASSCODE_DIGITS = 6
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
# links and passcodes still work this long after the scheduled end (overruns happen)
EXPIRY_GRACE = dt.timedelta(minutes=30)
DEFAULT_REMINDERS = (dt.timedelta(hours=24),)
# the one reason every failed check gives: it must not say which part was wrong
FAILURE_REASON = "invalid_credentials"
MAX_INPUT_LENGTH = 64

TOKYO = ZoneInfo("Asia/Tokyo")
_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_CLOSED_STATES = ("ended", "cancelled")


class LabelLike(Protocol):
    """A text in Japanese and English (server.templates.Label)."""

    @property
    def ja(self) -> str: ...
    @property
    def en(self) -> str: ...


class RoleLike(Protocol):
    """What invitations need of a role (server.templates.Role)."""

    @property
    def label(self) -> LabelLike: ...
    @property
    def join(self) -> AbstractSet[str]: ...


class TemplateLike(Protocol):
    """What invitations need of a template (server.templates.Template)."""

    @property
    def label(self) -> LabelLike: ...
    @property
    def checklist(self) -> Sequence[LabelLike]: ...
    def role(self, name: str) -> RoleLike: ...


class InvitationError(Exception):
    """An invitation cannot be made as asked (e.g. the participant already has one)."""


@dataclass(frozen=True)
class IssuedSecrets:
    """The cleartext secrets of one invitation; returned once, never stored."""

    participant_id: int
    join_id: str
    expires_at: dt.datetime
    # whether an invitation mail was queued (no mail without an email address)
    mailed: bool
    passcode: str = field(repr=False)
    token: str = field(repr=False)
    link: str = field(repr=False)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of an ID + passcode check; on failure, one generic reason."""

    ok: bool
    participant: Participant | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ComposedMail:
    """A mail ready to queue: subject, bilingual body, attachments."""

    subject: str
    body: str
    attachments: tuple[Attachment, ...] = ()


# ---------------------------------------------------------------------------------------------
# issuing


async def create_invitation(
    session: AsyncSession,
    participant: Participant,
    consultation: Consultation,
    template: TemplateLike,
    settings: Settings,
    *,
    mailer: Mailer | None = None,
    hasher: PasswordHasher | None = None,
    now: dt.datetime | None = None,
    reminders: Sequence[dt.timedelta] = DEFAULT_REMINDERS,
) -> IssuedSecrets:
    """Issue a link and an ID + passcode, queue the mail and the reminders; caller commits."""
    now = now or utcnow()
    # hash before the first write: SQLite's write lock is not held while the hash waits its turn
    token, passcode = _new_token(), _new_passcode()
    passcode_hash = await _hash(hasher, passcode)
    if participant.id is None:
        await session.flush()
    if await _invitation_of(session, participant.id) is not None:
        raise InvitationError("the participant already has an invitation; resend it instead")
    invitation = Invitation(
        participant_id=participant.id,
        token_hash=_token_hash(token),
        join_id=await _new_join_id(session),
        passcode_hash=passcode_hash,
        expires_at=consultation.ends_at + EXPIRY_GRACE,
        failed_attempts=0,
        created_at=now,
    )
    session.add(invitation)
    await _schedule_reminders(session, participant.id, consultation, now, reminders)
    return await _issue(
        session,
        invitation,
        participant,
        consultation,
        template,
        settings,
        mailer,
        token,
        passcode,
        now,
    )


async def resend(
    session: AsyncSession,
    participant: Participant,
    consultation: Consultation,
    template: TemplateLike,
    settings: Settings,
    *,
    mailer: Mailer | None = None,
    hasher: PasswordHasher | None = None,
    now: dt.datetime | None = None,
    reminders: Sequence[dt.timedelta] = DEFAULT_REMINDERS,
) -> IssuedSecrets:
    """New link and passcode (the old stop working), same ID, unlocked; caller commits."""
    now = now or utcnow()
    invitation = await _invitation_of(session, participant.id)
    if invitation is None:
        return await create_invitation(
            session,
            participant,
            consultation,
            template,
            settings,
            mailer=mailer,
            hasher=hasher,
            now=now,
            reminders=reminders,
        )
    token, passcode = _new_token(), _new_passcode()
    invitation.token_hash = _token_hash(token)
    invitation.passcode_hash = await _hash(hasher, passcode)
    invitation.expires_at = consultation.ends_at + EXPIRY_GRACE
    invitation.revoked_at = None
    invitation.failed_attempts = 0
    invitation.locked_until = None
    # an unsent mail with the old secrets would only confuse
    await _cancel_queued_mail(session, participant.id)
    await session.execute(
        delete(Reminder).where(
            Reminder.participant_id == participant.id, Reminder.status == "pending"
        )
    )
    await _schedule_reminders(session, participant.id, consultation, now, reminders)
    return await _issue(
        session,
        invitation,
        participant,
        consultation,
        template,
        settings,
        mailer,
        token,
        passcode,
        now,
    )


async def revoke(
    session: AsyncSession, participant: Participant, now: dt.datetime | None = None
) -> bool:
    """Stop the link and passcode, reminders and unsent mail; False if nothing to revoke."""
    now = now or utcnow()
    invitation = await _invitation_of(session, participant.id)
    if invitation is None or invitation.revoked_at is not None:
        return False
    invitation.revoked_at = now
    await session.execute(
        update(Reminder)
        .where(Reminder.participant_id == participant.id, Reminder.status == "pending")
        .values(status="cancelled")
    )
    await _cancel_queued_mail(session, participant.id)
    return True


async def reschedule(
    session: AsyncSession,
    consultation: Consultation,
    *,
    now: dt.datetime | None = None,
    reminders: Sequence[dt.timedelta] = DEFAULT_REMINDERS,
) -> int:
    """After the time changed: move expiry and pending reminders; returns invitations moved.

    New links are not needed (resend if people must be told by mail); caller commits.
    """
    now = now or utcnow()
    participant_ids = select(Participant.id).where(Participant.consultation_id == consultation.id)
    moved = await session.execute(
        update(Invitation)
        .where(Invitation.participant_id.in_(participant_ids), Invitation.revoked_at.is_(None))
        .values(expires_at=consultation.ends_at + EXPIRY_GRACE)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        delete(Reminder).where(
            Reminder.participant_id.in_(participant_ids), Reminder.status == "pending"
        )
    )
    live = await session.scalars(
        select(Invitation.participant_id).where(
            Invitation.participant_id.in_(participant_ids), Invitation.revoked_at.is_(None)
        )
    )
    for participant_id in list(live):
        await _schedule_reminders(session, participant_id, consultation, now, reminders)
    return int(getattr(moved, "rowcount", 0))


async def _issue(
    session: AsyncSession,
    invitation: Invitation,
    participant: Participant,
    consultation: Consultation,
    template: TemplateLike,
    settings: Settings,
    mailer: Mailer | None,
    token: str,
    passcode: str,
    now: dt.datetime,
) -> IssuedSecrets:
    identity = await session.get(Identity, participant.id)
    issued = IssuedSecrets(
        participant_id=participant.id,
        join_id=invitation.join_id,
        expires_at=invitation.expires_at,
        mailed=bool(mailer is not None and identity is not None and identity.email),
        passcode=passcode,
        token=token,
        link=f"{settings.base_url}/j/{token}",
    )
    if issued.mailed and mailer is not None and identity is not None:
        composed = compose_invitation_mail(
            consultation=consultation,
            template=template,
            role=participant.role,
            name=identity.name or participant.display_name,
            secrets=issued,
            settings=settings,
            now=now,
        )
        mailer.queue(
            session,
            to=identity.email,
            subject=composed.subject,
            body=composed.body,
            attachments=composed.attachments,
            kind="invitation",
            participant_id=participant.id,
            now=now,
        )
    await session.flush()
    return issued


async def _invitation_of(session: AsyncSession, participant_id: int) -> Invitation | None:
    found = await session.scalars(
        select(Invitation).where(Invitation.participant_id == participant_id)
    )
    return found.one_or_none()


async def _new_join_id(session: AsyncSession) -> str:
    # no leading zero: the ID is read out on the phone and typed on keypads
    low = 10 ** (JOIN_ID_DIGITS - 1)
    for _ in range(20):
        candidate = str(low + secrets.randbelow(9 * low))
        taken = await session.scalar(select(exists().where(Invitation.join_id == candidate)))
        if not taken:
            return candidate
    raise InvitationError("could not find a free personal ID")


def _new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _new_passcode() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PASSCODE_DIGITS))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _hash(hasher: PasswordHasher | None, passcode: str) -> str:
    return await hash_secret(hasher or PASSCODES, passcode)


async def _cancel_queued_mail(session: AsyncSession, participant_id: int) -> None:
    await session.execute(
        update(Mail)
        .where(
            Mail.participant_id == participant_id,
            Mail.status == "queued",
            Mail.kind.in_(("invitation", "reminder")),
        )
        .values(status="cancelled")
    )


# ---------------------------------------------------------------------------------------------
# checking


async def verify_link(
    session: AsyncSession, token: str, now: dt.datetime | None = None
) -> Participant | None:
    """The participant whose personal link carries `token`, if it still works."""
    now = now or utcnow()
    if not token or len(token) > MAX_INPUT_LENGTH:
        return None
    wanted = _token_hash(token)
    row = (await session.execute(_lookup().where(Invitation.token_hash == wanted))).one_or_none()
    if row is None:
        return None
    invitation, participant = row
    # the lookup went through an index; compare again without an early exit
    if not hmac.compare_digest(invitation.token_hash, wanted):
        return None
    return participant if _usable(invitation, participant.consultation, now) else None


async def verify_passcode(
    session: AsyncSession,
    join_id: str,
    passcode: str,
    now: dt.datetime | None = None,
    *,
    hasher: PasswordHasher | None = None,
) -> VerifyResult:
    """Check a typed ID + passcode; commits the attempt count so a rollback cannot undo it.

    After MAX_FAILURES wrong passcodes the ID is locked for LOCKOUT, during which even the
    right passcode is refused. Every failure takes an argon2 computation and gives the same
    reason, whether the ID is unknown, locked, expired or the passcode wrong.
    """
    now = now or utcnow()
    hasher = hasher or PASSCODES
    join_id, passcode = _normalise(join_id), _normalise(passcode)
    row = None
    if join_id.isdigit() and len(join_id) <= MAX_INPUT_LENGTH:
        row = (await session.execute(_lookup().where(Invitation.join_id == join_id))).one_or_none()
    # the hash below takes tens of milliseconds on the one hashing thread, and a join storm
    # queues there: hold no pooled connection meanwhile (objects stay loaded: no expiry on commit)
    await session.commit()
    if row is None or len(passcode) > MAX_INPUT_LENGTH:
        await hash_secret(hasher, passcode[:MAX_INPUT_LENGTH])
        return _failed()
    invitation, participant = row
    usable = _usable(invitation, participant.consultation, now)
    # the attempt is counted before the hash is checked, so parallel guesses cannot
    # slip past the limit while the first ones are being verified
    counted = usable and await _write_alone(session, _count_attempt(invitation.id, now)) == 1
    right = await verify_secret(hasher, invitation.passcode_hash, passcode)
    if not (counted and right):
        return _failed()
    reset = (
        update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(failed_attempts=0, locked_until=None)
    )
    await _write_alone(session, reset)
    return VerifyResult(ok=True, participant=participant)


async def _write_alone(session: AsyncSession, statement: Update) -> int:
    """Run one UPDATE as its own transaction, committed by the database as it runs.

    Many joins at once each write here. Inside an ordinary transaction the write lock would be
    held from the UPDATE until the COMMIT, i.e. across a trip through a busy event loop, and
    SQLite's waiters are not served in order: some waited past busy_timeout and failed with
    "database is locked". In autocommit the lock is held only while the statement runs.
    """
    await session.commit()  # ends the read transaction this session may have open
    connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    result = await connection.execute(statement.execution_options(synchronize_session=False))
    await session.commit()  # gives the connection back to the pool
    return int(getattr(result, "rowcount", 0))


def _lookup() -> Select[Invitation, Participant]:
    return (
        select(Invitation, Participant)
        .join(Participant, Participant.id == Invitation.participant_id)
        .options(selectinload(Participant.consultation))
        .execution_options(populate_existing=True)
    )


def _usable(invitation: Invitation, consultation: Consultation, now: dt.datetime) -> bool:
    return (
        invitation.revoked_at is None
        and now < invitation.expires_at
        and consultation.state not in _CLOSED_STATES
    )


def _count_attempt(invitation_id: int, now: dt.datetime) -> Update:
    # one conditional UPDATE: refused while locked; the MAX_FAILURES-th attempt sets the
    # lock and restarts the count (a right passcode then lifts the lock again)
    reaches_limit = Invitation.failed_attempts + 1 >= MAX_FAILURES
    lock_end = literal(now + LOCKOUT, UTCDateTime())
    return (
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            or_(Invitation.locked_until.is_(None), Invitation.locked_until <= now),
        )
        .values(
            failed_attempts=case((reaches_limit, 0), else_=Invitation.failed_attempts + 1),
            locked_until=case((reaches_limit, lock_end), else_=None),
        )
    )


def _normalise(typed: str) -> str:
    # full-width digits (１２３) from Japanese input methods, and the spaces or hyphens
    # people copy from the mail
    folded = unicodedata.normalize("NFKC", typed)
    return "".join(ch for ch in folded if ch not in " -\t\r\n")


def _failed() -> VerifyResult:
    return VerifyResult(ok=False, reason=FAILURE_REASON)


# ---------------------------------------------------------------------------------------------
# mail text


def compose_invitation_mail(
    *,
    consultation: Consultation,
    template: TemplateLike,
    role: str,
    name: str,
    secrets: IssuedSecrets,
    settings: Settings,
    now: dt.datetime | None = None,
) -> ComposedMail:
    """The invitation: Japanese, then English; link, ID + passcode, time, checklist, ICS."""
    now = now or utcnow()
    role_label = template.role(role)
    ways = role_label.join
    when_ja, when_en = format_when_ja(consultation), format_when_en(consultation)
    base = settings.base_url
    ja = [f"{name} 様", "", f"{template.label.ja}「{consultation.title}」のご案内です。"]
    ja += ["ビデオ通話で行います。", "", "■ 日時", f"{when_ja}（日本時間）", ""]
    ja += [f"■ ご参加の方法（{role_label.label.ja}として）"]
    en = [f"Dear {name},", "", f'You are invited to a {template.label.en}, "{consultation.title}",']
    en += ["held by video call.", "", "Date and time", f"{when_en} (Japan time)", ""]
    en += [f"How to join (as {role_label.label.en})"]
    if "link" in ways or "passcode" not in ways:
        ja += ["次のリンクを開いてください。あなた専用のリンクです。転送しないでください。"]
        ja += [secrets.link, ""]
        en += ["Open your personal link (please do not forward it):", secrets.link, ""]
    if "passcode" in ways:
        id_shown, code = _spaced(secrets.join_id), secrets.passcode
        ja += [f"リンクを開けない場合は {base}/join を開き、次のIDとパスコードを入力してください。"]
        ja += [f"　ID：{id_shown}", f"　パスコード：{code}", ""]
        en += [f"If you cannot open the link, go to {base}/join and enter:"]
        en += [f"  ID: {id_shown}", f"  Passcode: {code}", ""]
    if template.checklist:
        ja += ["■ ご用意いただくもの", *(f"・{item.ja}" for item in template.checklist), ""]
        en += ["What to prepare", *(f"- {item.en}" for item in template.checklist), ""]
    ja += ["■ 事前の接続テスト", "当日までに、お使いのスマートフォンやパソコンで"]
    ja += ["カメラとマイクが使えるか、次のページで確認してください。", f"{base}/check", ""]
    en += ["Test your device", "Before the day, check that your camera and microphone work:"]
    en += [f"{base}/check", ""]
    ja += ["リンクとパスコードは相談の終了後に使えなくなります。"]
    ja += ["お心当たりのない場合は、このメールを破棄してください。"]
    en += ["The link and passcode stop working when the consultation ends."]
    en += ["If this mail was not meant for you, please delete it."]
    body = "\n".join([*ja, "", "―" * 20, "(English)", "", *en, ""])
    subject = f"【ご案内】{consultation.title} {when_ja} / Invitation: {template.label.en}"
    ics = invitation_ics(consultation, template, secrets, settings, now)
    attachment = Attachment("invitation.ics", "text/calendar; method=PUBLISH", ics)
    return ComposedMail(subject=subject, body=body, attachments=(attachment,))


def invitation_ics(
    consultation: Consultation,
    template: TemplateLike,
    secrets: IssuedSecrets,
    settings: Settings,
    now: dt.datetime,
) -> str:
    """An iCalendar file with the consultation as one event (the passcode stays in the mail)."""
    host = urlsplit(settings.base_url).hostname or "localhost"
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Madoguchi//Madoguchi//JA")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    # same UID on resend, higher SEQUENCE: calendars update the event instead of adding one
    event.add("uid", f"madoguchi-{consultation.public_id}-{secrets.participant_id}@{host}")
    event.add("sequence", int(now.timestamp()))
    event.add("dtstamp", now)
    event.add("dtstart", consultation.starts_at)
    event.add("dtend", consultation.ends_at)
    event.add("summary", f"{consultation.title}（{template.label.ja} / {template.label.en}）")
    event.add("location", "オンライン / Online")
    event.add("url", secrets.link)
    lines = [f"参加 / Join: {secrets.link}", f"ID: {_spaced(secrets.join_id)}"]
    lines += [f"接続テスト / Device test: {settings.base_url}/check"]
    event.add("description", "\n".join(lines))
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", consultation.title)
    alarm.add("trigger", -dt.timedelta(minutes=15))
    event.add_component(alarm)
    calendar.add_component(event)
    return str(calendar.to_ical().decode("utf-8"))


def format_when_ja(consultation: Consultation) -> str:
    """「2026年12月1日（火）10:00〜11:00」in Japan time."""
    start = consultation.starts_at.astimezone(TOKYO)
    end = consultation.ends_at.astimezone(TOKYO)
    day = f"{start.year}年{start.month}月{start.day}日（{_WEEKDAYS_JA[start.weekday()]}）"
    return f"{day}{start:%H:%M}〜{end:%H:%M}"


def format_when_en(consultation: Consultation) -> str:
    """ "Tuesday, 1 December 2026, 10:00-11:00" in Japan time, whatever the locale."""
    start = consultation.starts_at.astimezone(TOKYO)
    end = consultation.ends_at.astimezone(TOKYO)
    day = f"{_WEEKDAYS_EN[start.weekday()]}, {start.day} {_MONTHS_EN[start.month - 1]} {start.year}"
    return f"{day}, {start:%H:%M}–{end:%H:%M}"


def _spaced(join_id: str) -> str:
    # "1234 5678": easier to read out and to type
    return f"{join_id[:4]} {join_id[4:]}"


# ---------------------------------------------------------------------------------------------
# reminders


async def _schedule_reminders(
    session: AsyncSession,
    participant_id: int,
    consultation: Consultation,
    now: dt.datetime,
    lead_times: Sequence[dt.timedelta],
) -> None:
    for lead in lead_times:
        due = consultation.starts_at - lead
        if due > now:
            session.add(Reminder(participant_id=participant_id, due_at=due, status="pending"))


def compose_reminder_mail(
    *,
    consultation: Consultation,
    name: str,
    settings: Settings,
    template: TemplateLike | None = None,
) -> ComposedMail:
    """A reminder: when, how to join (with the invitation's link), what to prepare."""
    base = settings.base_url
    when_ja, when_en = format_when_ja(consultation), format_when_en(consultation)
    ja = [f"{name} 様", "", f"「{consultation.title}」が近づきましたのでお知らせします。"]
    ja += ["", "■ 日時", f"{when_ja}（日本時間）", ""]
    ja += ["ご参加には、ご案内メールのリンク、またはIDとパスコードをお使いください。", ""]
    en = [f"Dear {name},", "", f'A reminder: "{consultation.title}" is coming up.', ""]
    en += ["Date and time", f"{when_en} (Japan time)", ""]
    en += ["To join, use the link, or the ID and passcode, from your invitation mail.", ""]
    if template is not None and template.checklist:
        ja += ["■ ご用意いただくもの", *(f"・{item.ja}" for item in template.checklist), ""]
        en += ["What to prepare", *(f"- {item.en}" for item in template.checklist), ""]
    ja += ["■ 事前の接続テスト", f"{base}/check"]
    en += ["Test your device", f"{base}/check"]
    body = "\n".join([*ja, "", "―" * 20, "(English)", "", *en, ""])
    subject = f"【リマインダー】{consultation.title} {when_ja} / Reminder"
    return ComposedMail(subject=subject, body=body)


async def queue_due_reminders(
    session: AsyncSession,
    now: dt.datetime,
    *,
    settings: Settings,
    mailer: Mailer | None = None,
    templates: Callable[[str], TemplateLike | None] | None = None,
    limit: int = 100,
) -> int:
    """Queue the mail of every due reminder, each exactly once; returns how many were queued.

    Each reminder is claimed with a conditional UPDATE in the caller's transaction, together
    with its mail: after a crash both are rolled back, and a second sender cannot claim it.
    """
    mailer = mailer or Mailer()
    due = await session.scalars(
        select(Reminder.id)
        .where(Reminder.status == "pending", Reminder.due_at <= now)
        .order_by(Reminder.due_at)
        .limit(limit)
    )
    queued = 0
    for reminder_id in list(due):
        claimed = await session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id, Reminder.status == "pending")
            .values(status="queued", queued_at=now)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(claimed, "rowcount", 0)) != 1:
            continue
        if await _queue_reminder(session, reminder_id, now, settings, mailer, templates):
            queued += 1
        else:
            await session.execute(
                update(Reminder).where(Reminder.id == reminder_id).values(status="cancelled")
            )
    return queued


async def _queue_reminder(
    session: AsyncSession,
    reminder_id: int,
    now: dt.datetime,
    settings: Settings,
    mailer: Mailer,
    templates: Callable[[str], TemplateLike | None] | None,
) -> bool:
    row = (
        await session.execute(
            select(Reminder, Invitation, Participant, Identity)
            .join(Participant, Participant.id == Reminder.participant_id)
            .join(Invitation, Invitation.participant_id == Participant.id)
            .join(Identity, Identity.participant_id == Participant.id)
            .options(selectinload(Participant.consultation))
            .where(Reminder.id == reminder_id)
        )
    ).one_or_none()
    if row is None:
        return False
    _reminder, invitation, participant, identity = row
    consultation = participant.consultation
    # too late to help, or no longer wanted
    if not identity.email or now >= consultation.starts_at:
        return False
    if not _usable(invitation, consultation, now) or consultation.state != "scheduled":
        return False
    template = templates(consultation.template) if templates is not None else None
    composed = compose_reminder_mail(
        consultation=consultation,
        name=identity.name or participant.display_name,
        settings=settings,
        template=template,
    )
    mailer.queue(
        session,
        to=identity.email,
        subject=composed.subject,
        body=composed.body,
        kind="reminder",
        participant_id=participant.id,
        now=now,
    )
    return True


def reminder_hook(
    settings: Settings,
    *,
    templates: Callable[[str], TemplateLike | None] | None = None,
) -> SenderHook:
    """A MailSender hook that queues due reminders at the start of each sending round."""

    async def hook(session: AsyncSession, now: dt.datetime) -> int:
        return await queue_due_reminders(session, now, settings=settings, templates=templates)

    return hook
