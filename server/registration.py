"""Public pre-registration (public hearings): register an address, confirm by link, get an ID.

Double opt-in: registering only mails a confirmation link; the participant, their pseudonym and
their ID + passcode exist once the link is confirmed. Every registration request is answered the
same way whatever the address, so the page does not tell who has registered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import consultations as svc
from server.db.models import Consultation, Registration, utcnow
from server.errors import ApiError, bad_request
from server.invitations import IssuedSecrets, format_when_en, format_when_ja
from server.mail import Mailer
from server.settings import Settings
from server.templates import Role, Template

CONFIRM_VALID = dt.timedelta(hours=48)
# an address: something@domain.tld, no spaces; the mail server is the real check
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class Confirmed:
    """The result of confirming: the secrets when issued now, or None when done before."""

    consultation: Consultation
    secrets: IssuedSecrets | None


def registering_role(template: Template) -> Role | None:
    """The role residents take by registering, or None when the template has no registration."""
    if not template.registration:
        return None
    return next((r for r in template.roles.values() if "registration" in r.join), None)


def closes_at(consultation: Consultation) -> dt.datetime:
    """When registration closes: the consultation's own time, at the latest its start."""
    return consultation.registration_closes_at or consultation.starts_at


def check_open(consultation: Consultation, template: Template, now: dt.datetime) -> Role:
    """The registering role, or an error saying why this consultation takes no registration."""
    role = registering_role(template)
    if role is None:
        raise ApiError(404, "not_found", "this consultation takes no registration")
    if consultation.state in ("ended", "cancelled"):
        raise ApiError(409, "consultation_closed", f"the consultation is {consultation.state}")
    if now >= closes_at(consultation):
        raise ApiError(409, "registration_closed", "registration for this consultation has closed")
    return role


def normalise_email(raw: str) -> str:
    """The address as stored: trimmed, lowercased; an error if it is not an address."""
    email = raw.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise bad_request("email is not a valid address", "email")
    return email


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def register(
    session: AsyncSession,
    consultation: Consultation,
    template: Template,
    settings: Settings,
    mailer: Mailer,
    email: str,
    name: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Record a registration and mail its confirmation link (or an 'already registered' note)."""
    now = now or utcnow()
    check_open(consultation, template, now)
    email = normalise_email(email)
    name = name.strip()
    if len(name) > 200:
        raise bad_request("name is longer than 200 characters", "name")
    existing = await session.scalar(
        select(Registration).where(
            Registration.consultation_id == consultation.id, Registration.email == email
        )
    )
    if existing is not None and existing.confirmed_at is not None:
        subject, body = _already_mail(consultation, template, settings)
        mailer.queue(session, to=email, subject=subject, body=body, kind="registration", now=now)
        return
    token = secrets.token_urlsafe(24)
    if existing is None:
        existing = Registration(consultation_id=consultation.id, email=email, created_at=now)
        session.add(existing)
    existing.name = name or existing.name
    existing.token_hash = _hash(token)
    existing.token_expires_at = min(now + CONFIRM_VALID, closes_at(consultation))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # a concurrent registration of the same address won: answer the same as for it
        return
    subject, body = _confirm_mail(consultation, template, settings, token)
    mailer.queue(session, to=email, subject=subject, body=body, kind="registration", now=now)


async def confirm(
    session: AsyncSession,
    templates: dict[str, Template],
    settings: Settings,
    mailer: Mailer,
    token: str,
    now: dt.datetime | None = None,
) -> Confirmed:
    """Confirm a registration: the resident becomes a participant and gets an ID + passcode."""
    now = now or utcnow()
    registration = await session.scalar(
        select(Registration).where(Registration.token_hash == _hash(token)).with_for_update()
    )
    if registration is None:
        raise ApiError(404, "invalid_link", "this confirmation link is not valid")
    consultation = await session.get_one(Consultation, registration.consultation_id)
    if registration.confirmed_at is not None:
        return Confirmed(consultation, None)
    if now >= registration.token_expires_at:
        raise ApiError(410, "link_expired", "this confirmation link has expired; register again")
    template = templates[consultation.template]
    role = check_open(consultation, template, now)
    participant = await svc.add_participant(
        session, consultation, template, role.name, name=registration.name, email=registration.email
    )
    issued = await svc.invite(
        session, participant, consultation, template, settings, mailer, now=now
    )
    registration.confirmed_at = now
    registration.participant_id = participant.id
    await svc.log_event(session, consultation, "registered", participant.id, {"role": role.name})
    return Confirmed(consultation, issued)


def _confirm_mail(
    consultation: Consultation, template: Template, settings: Settings, token: str
) -> tuple[str, str]:
    link = f"{settings.base_url}/r/{token}"
    body = "\n".join(
        [
            f"{template.label.ja}「{consultation.title}」への参加登録を受け付けました。",
            f"日時：{format_when_ja(consultation)}（日本時間）",
            "",
            "登録を完了するには、48時間以内に次のリンクを開き、「登録を完了する」を押してください。",
            link,
            "",
            "完了すると、参加用のIDとパスコードをメールでお送りします。",
            "お心当たりのない場合は、このメールを破棄してください。登録は完了しません。",
            "",
            "―" * 20,
            "(English)",
            "",
            f'We received a registration for the {template.label.en} "{consultation.title}",',
            f"{format_when_en(consultation)} (Japan time).",
            "To complete it, open this link within 48 hours and press the button:",
            link,
            "We will then mail you an ID and passcode to join.",
            "If you did not register, please delete this mail: nothing else will happen.",
            "",
        ]
    )
    return f"【登録の確認】{consultation.title} / Please confirm your registration", body


def _already_mail(
    consultation: Consultation, template: Template, settings: Settings
) -> tuple[str, str]:
    body = "\n".join(
        [
            f"{template.label.ja}「{consultation.title}」には、このメールアドレスで登録済みです。",
            "参加用のIDとパスコードは、登録完了時のメールに記載しています。",
            "メールが見つからない場合は、市役所の担当窓口にお問い合わせください。",
            "",
            "―" * 20,
            "(English)",
            "",
            f'This address is already registered for "{consultation.title}".',
            "Your ID and passcode are in the mail we sent when you confirmed.",
            "If you cannot find it, please contact the city hall office in charge.",
            "",
        ]
    )
    return f"【登録済みです】{consultation.title} / Already registered", body
