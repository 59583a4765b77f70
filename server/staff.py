"""Staff accounts: argon2-hashed passwords, add / list / disable, authentication."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Staff
from server.hashing import PASSWORDS, hash_secret, verify_secret

# a real hash to verify against when the login is unknown, so timing does not tell
_DUMMY_HASH = PASSWORDS.hash("madoguchi-dummy-password")
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 10


class StaffError(Exception):
    """A staff account operation was refused; the message says why."""


async def add_staff(session: AsyncSession, login: str, display_name: str, password: str) -> Staff:
    """Create a staff account; the login is lowercase letters, digits, '.', '_' or '-'."""
    if not LOGIN_RE.match(login):
        raise StaffError("login must be 2-64 lowercase letters, digits, '.', '_' or '-'")
    if not display_name.strip():
        raise StaffError("display name must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await hash_secret(PASSWORDS, password)
    staff = Staff(login=login, display_name=display_name.strip(), password_hash=password_hash)
    session.add(staff)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise StaffError(f"a staff account with login {login!r} already exists") from None
    return staff


async def list_staff(session: AsyncSession) -> Sequence[Staff]:
    """Every staff account, in login order."""
    return (await session.scalars(select(Staff).order_by(Staff.login))).all()


async def set_disabled(session: AsyncSession, login: str, disabled: bool = True) -> Staff:
    """Disable (or enable again) a staff account; a disabled account cannot log in."""
    staff = await session.scalar(select(Staff).where(Staff.login == login))
    if staff is None:
        raise StaffError(f"no staff account with login {login!r}")
    staff.disabled = disabled
    return staff


async def authenticate(session: AsyncSession, login: str, password: str) -> Staff | None:
    """The enabled staff account with this login and password, or None."""
    staff = await session.scalar(select(Staff).where(Staff.login == login))
    hashed = staff.password_hash if staff is not None else _DUMMY_HASH
    ok = await verify_secret(PASSWORDS, hashed, password)
    if staff is None or not ok or staff.disabled:
        return None
    return staff
