"""Who is joining: turn the credentials of a `join` message into a participant of a consultation.

The one place the signaling server checks credentials: personal link tokens, personal ID +
passcode (with lockout after repeated failures), and logged-in staff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from server.auth import StaffSession
from server.consultations import add_participant
from server.db.models import Consultation, Invitation, Participant
from server.errors import ApiError
from server.room import RoomError
from server.templates import Role, Template

MAX_FAILURES = 5  # wrong passcodes before an invitation is locked
LOCKOUT = dt.timedelta(minutes=15)
_hasher = PasswordHasher()


def refused(code: str, message: str, retry_after: int | None = None) -> RoomError:
    """A join refusal with its protocol error code."""
    if retry_after is None:
        return RoomError(code, message)
    return RoomError(code, message, retry_after=retry_after)


def _bad_credentials() -> RoomError:
    return refused("bad_credentials", "the link, ID or passcode is not valid")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _invitation(session: AsyncSession, where: Any) -> Invitation | None:
    invitation: Invitation | None = await session.scalar(
        select(Invitation)
        .where(where)
        .options(
            selectinload(Invitation.participant).selectinload(Participant.identity),
            selectinload(Invitation.participant).selectinload(Participant.consultation),
        )
    )
    return invitation


def _usable(invitation: Invitation, now: dt.datetime) -> None:
    if invitation.revoked_at is not None or invitation.expires_at <= now:
        raise refused("expired", "this invitation has expired or was revoked")


async def by_link(session: AsyncSession, token: str, now: dt.datetime) -> Participant:
    """The participant whose personal link carries `token`."""
    invitation = await _invitation(session, Invitation.token_hash == _token_hash(token))
    if invitation is None:
        raise _bad_credentials()
    _usable(invitation, now)
    return invitation.participant


def _verify(hashed: str, passcode: str) -> bool:
    try:
        return _hasher.verify(hashed, passcode)
    except (VerificationError, InvalidHashError):
        return False


async def by_passcode(
    session: AsyncSession, join_id: str, passcode: str, now: dt.datetime
) -> Participant:
    """The participant with this personal ID, if the passcode is right; counts failures."""
    invitation = await _invitation(session, Invitation.join_id == join_id)
    if invitation is None:
        _verify(_DUMMY, passcode)  # the same time as a real check: IDs are not probed by timing
        raise _bad_credentials()
    if invitation.locked_until is not None and invitation.locked_until > now:
        wait = int((invitation.locked_until - now).total_seconds()) + 1
        raise refused("locked_out", "too many wrong passcodes; try again later", wait)
    if not _verify(invitation.passcode_hash, passcode):
        invitation.failed_attempts += 1
        if invitation.failed_attempts >= MAX_FAILURES:
            invitation.locked_until = now + LOCKOUT
            invitation.failed_attempts = 0
        await session.commit()
        raise _bad_credentials()
    _usable(invitation, now)
    invitation.failed_attempts = 0
    return invitation.participant


_DUMMY = _hasher.hash("madoguchi-dummy-passcode")


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


def join_allowed(role: Role, via: str) -> bool:
    """Whether the template lets this role join this way."""
    if via == "passcode":
        return bool({"passcode", "registration"} & role.join)
    return via in role.join
