"""Consultations and their participants: the service functions REST, demo and CLI share."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from server.db.models import Consultation, Event, Identity, Participant
from server.errors import ApiError, bad_request, not_found
from server.invitations import IssuedSecrets, create_invitation
from server.mail import Mailer
from server.settings import Settings
from server.templates import Template

TIME_EXAMPLE = "2026-12-01T10:00:00+09:00"
STATES = ("scheduled", "live", "ended", "cancelled")


def pseudonym(number: int) -> str:
    """What other participants see of an anonymous participant."""
    return f"参加者 {number}"


async def _new_public_id(session: AsyncSession) -> str:
    # 8 digits that are easy to read on the phone; random so IDs are not guessable in order
    while True:
        candidate = str(secrets.randbelow(90_000_000) + 10_000_000)
        exists = await session.scalar(
            select(Consultation.id).where(Consultation.public_id == candidate)
        )
        if exists is None:
            return candidate


async def create_consultation(
    session: AsyncSession,
    template: Template,
    title: str,
    starts_at: dt.datetime,
    duration_minutes: int | None = None,
    created_by: int | None = None,
    registration_closes_at: dt.datetime | None = None,
) -> Consultation:
    """A scheduled consultation made from a template."""
    title = title.strip()
    if not title:
        raise bad_request("title must not be empty", "title")
    if len(title) > 200:
        raise bad_request("title is longer than 200 characters", "title")
    if starts_at.tzinfo is None:
        raise bad_request(
            "starts_at needs a time zone, e.g. 2026-12-01T10:00:00+09:00", "starts_at"
        )
    minutes = duration_minutes or template.default_duration_minutes
    if not 1 <= minutes <= template.max_duration_minutes:
        raise bad_request(
            f"duration_minutes must be between 1 and {template.max_duration_minutes}",
            "duration_minutes",
        )
    consultation = Consultation(
        public_id=await _new_public_id(session),
        template=template.name,
        title=title,
        starts_at=starts_at,
        duration_minutes=minutes,
        created_by=created_by,
        registration_closes_at=registration_closes_at,
    )
    session.add(consultation)
    await session.flush()
    await log_event(session, consultation, "created", None, {"template": template.name})
    return consultation


async def get_consultation(session: AsyncSession, public_id: str) -> Consultation:
    """The consultation with this public ID and its participants, or a 404 error."""
    consultation = await session.scalar(
        select(Consultation)
        .where(Consultation.public_id == public_id)
        .options(
            selectinload(Consultation.participants).selectinload(Participant.identity),
            selectinload(Consultation.participants).selectinload(Participant.invitation),
        )
    )
    if consultation is None:
        raise not_found("consultation")
    return consultation


async def list_consultations(session: AsyncSession, state: str | None) -> Sequence[Consultation]:
    """Consultations by start time, optionally of one state."""
    query = select(Consultation).order_by(Consultation.starts_at, Consultation.id)
    if state is not None:
        if state not in STATES:
            raise bad_request(f"state must be one of {', '.join(STATES)}", "state")
        query = query.where(Consultation.state == state)
    return (await session.scalars(query)).all()


async def add_participant(
    session: AsyncSession,
    consultation: Consultation,
    template: Template,
    role: str,
    *,
    name: str = "",
    email: str = "",
    display_name: str = "",
    staff_id: int | None = None,
) -> Participant:
    """Add someone with a role; anonymous roles get the next pseudonym of the consultation."""
    if consultation.state in ("ended", "cancelled"):
        raise ApiError(409, "consultation_closed", f"the consultation is {consultation.state}")
    if role not in template.roles:
        raise bad_request(
            f"unknown role {role!r}; this template has: {', '.join(template.roles)}", "role"
        )
    spec = template.roles[role]
    if spec.max_participants is not None:
        count = await session.scalar(
            select(func.count(Participant.id)).where(
                Participant.consultation_id == consultation.id, Participant.role == role
            )
        )
        if (count or 0) >= spec.max_participants:
            raise ApiError(
                409, "role_full", f"role {role!r} already has {spec.max_participants} participants"
            )
    number: int | None = None
    if spec.anonymous:
        last = await session.scalar(
            select(func.max(Participant.pseudonym_number)).where(
                Participant.consultation_id == consultation.id
            )
        )
        number = (last or 0) + 1
        shown = pseudonym(number)
    else:
        shown = (display_name or name).strip() or spec.label.ja
    if len(shown) > 100:
        raise bad_request("display_name is longer than 100 characters", "display_name")
    participant = Participant(
        consultation_id=consultation.id,
        role=role,
        display_name=shown,
        pseudonym_number=number,
        staff_id=staff_id,
    )
    participant.identity = Identity(name=name.strip(), email=email.strip())
    session.add(participant)
    await session.flush()
    return participant


async def cancel_consultation(session: AsyncSession, consultation: Consultation) -> None:
    """Cancel a consultation that has not ended."""
    if consultation.state in ("ended", "cancelled"):
        raise ApiError(409, "consultation_closed", f"the consultation is {consultation.state}")
    consultation.state = "cancelled"
    await log_event(session, consultation, "cancelled", None, {})


async def list_events(session: AsyncSession, consultation: Consultation) -> Sequence[Event]:
    """The consultation's event log, oldest first."""
    query = (
        select(Event).where(Event.consultation_id == consultation.id).order_by(Event.at, Event.id)
    )
    return (await session.scalars(query)).all()


async def log_event(
    session: AsyncSession,
    consultation: Consultation,
    kind: str,
    participant_id: int | None,
    data: dict[str, object],
) -> None:
    """Append a line to the consultation's event log (the minutes)."""
    session.add(
        Event(consultation_id=consultation.id, kind=kind, participant_id=participant_id, data=data)
    )


async def invite(
    session: AsyncSession,
    participant: Participant,
    consultation: Consultation,
    template: Template,
    settings: Settings,
    mailer: Mailer | None = None,
    now: dt.datetime | None = None,
) -> IssuedSecrets:
    """Issue the participant's link, ID and passcode (mailed if they have an email address)."""
    return await create_invitation(
        session,
        participant,
        consultation,
        template,
        settings,
        mailer=mailer,
        now=now,
        reminders=settings.reminders,
    )


def secrets_json(issued: IssuedSecrets) -> dict[str, str]:
    """The join secrets shown to staff once."""
    return {"link": issued.link, "join_id": issued.join_id, "passcode": issued.passcode}
