"""Who is joining: turn the credentials of a `join` message into a participant of a consultation.

The one place the signaling server checks credentials: personal link tokens, personal ID +
passcode (with lockout after repeated failures), and logged-in staff.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from server import invitations
from server.auth import StaffSession
from server.consultations import add_participant
from server.db.models import Consultation, Invitation, Participant
from server.errors import ApiError
from server.permissions import Permission
from server.room import RoomError
from server.templates import Role, Template


def refused(code: str, message: str) -> RoomError:
    """A join refusal with its protocol error code."""
    return RoomError(code, message)


def _bad_credentials() -> RoomError:
    return refused("bad_credentials", "the link, ID or passcode is not valid")


async def by_link(session: AsyncSession, token: str, now: dt.datetime) -> Participant:
    """The participant whose personal link carries `token`."""
    participant = await invitations.verify_link(session, token, now)
    if participant is not None:
        return await _loaded(session, participant.id)
    # the holder of a real token may learn that it expired; a guesser learns nothing
    known = await session.scalar(
        select(Invitation.id).where(Invitation.token_hash == _token_hash(token))
    )
    if known is not None:
        raise refused("expired", "this invitation has expired or was revoked")
    raise _bad_credentials()


async def by_passcode(
    session: AsyncSession, join_id: str, passcode: str, now: dt.datetime
) -> Participant:
    """The participant with this personal ID and passcode; failures count towards a lockout.

    Unknown, locked, expired and wrong all answer bad_credentials: no oracle for guessers.
    """
    result = await invitations.verify_passcode(session, join_id, passcode, now)
    if not result.ok or result.participant is None:
        raise _bad_credentials()
    return await _loaded(session, result.participant.id)


async def _loaded(session: AsyncSession, participant_id: int) -> Participant:
    participant = await session.scalar(
        select(Participant)
        .where(Participant.id == participant_id)
        .options(selectinload(Participant.identity))
    )
    if participant is None:
        raise _bad_credentials()
    return participant


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def staff_role(template: Template, requested: str | None) -> Role:
    """The staff role to take: the one asked for, else the creator role, else the first."""
    if requested is not None:
        role = template.roles.get(requested)
        if role is None:
            raise RoomError("not_found", f"no role {requested!r} in this template", field="role")
        if "staff" not in role.join:
            raise RoomError("join_method_not_allowed", f"role {requested!r} is not a staff role")
        return role
    creator = template.roles.get(template.creator_role)
    if creator is not None and "staff" in creator.join:
        return creator
    for role in template.roles.values():
        if "staff" in role.join:
            return role
    raise RoomError("join_method_not_allowed", "this consultation has no staff role")


async def by_staff(
    session: AsyncSession,
    staff: StaffSession,
    consultation: Consultation,
    template: Template,
    requested_role: str | None,
) -> Participant:
    """The logged-in staff member's participant in the consultation, made on first join."""
    for participant in consultation.participants:
        if participant.staff_id == staff.staff_id and (
            requested_role is None or participant.role == requested_role
        ):
            return participant
    role = staff_role(template, requested_role)
    try:
        participant = await add_participant(
            session,
            consultation,
            template,
            role.name,
            name=staff.display_name,
            display_name=staff.display_name,
            staff_id=staff.staff_id,
        )
    except ApiError as error:
        code = "room_full" if error.code == "role_full" else error.code
        raise RoomError(code, error.message) from None
    await session.commit()
    return participant


def check_not_too_early(
    consultation: Consultation, role: Role, early_minutes: int, now: dt.datetime
) -> None:
    """Refuse a participant who comes earlier than the room opens; hosts may come any time."""
    opens_at = consultation.starts_at - dt.timedelta(minutes=early_minutes)
    if now < opens_at and Permission.admit not in role.permissions:
        raise RoomError(
            "too_early",
            "the consultation has not opened yet",
            opens_at=int(opens_at.timestamp() * 1000),
        )


def join_allowed(role: Role, via: str) -> bool:
    """Whether the template lets this role join this way."""
    if via == "passcode":
        return bool({"passcode", "registration"} & role.join)
    return via in role.join
