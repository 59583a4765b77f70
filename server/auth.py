"""Staff sessions: cookie, CSRF token for state-changing requests, login rate limit."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from server.errors import ApiError

COOKIE = "madoguchi_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class StaffSession:
    """A logged-in staff member's session."""

    staff_id: int
    login: str
    display_name: str
    csrf_token: str
    expires_at: float


class SessionStore:
    """Server-side sessions keyed by a random cookie value (lost on restart: staff log in again)."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._sessions: dict[str, StaffSession] = {}

    def create(self, staff_id: int, login: str, display_name: str) -> tuple[str, StaffSession]:
        """A new session and its cookie value."""
        self._expire()
        key = secrets.token_urlsafe(32)
        session = StaffSession(
            staff_id, login, display_name, secrets.token_urlsafe(24), time.time() + self.max_age
        )
        self._sessions[key] = session
        return key, session

    def get(self, key: str | None) -> StaffSession | None:
        """The live session for a cookie value, or None."""
        if not key:
            return None
        session = self._sessions.get(key)
        if session is None or session.expires_at < time.time():
            self._sessions.pop(key, None)
            return None
        return session

    def drop(self, key: str | None) -> None:
        """End a session (logout)."""
        if key:
            self._sessions.pop(key, None)

    def drop_staff(self, staff_id: int) -> None:
        """End every session of one staff member (account disabled)."""
        for key in [k for k, s in self._sessions.items() if s.staff_id == staff_id]:
            del self._sessions[key]

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at < now]:
            del self._sessions[key]


# None when the request carries no live staff session
STAFF_SESSION: web.RequestKey[StaffSession | None] = web.RequestKey("staff_session")


def current_staff(request: web.Request) -> StaffSession:
    """The staff session of this request, or a 401 error."""
    session: StaffSession | None = request.get(STAFF_SESSION)
    if session is None:
        raise ApiError(401, "login_required", "Please log in as staff.")
    return session


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_middleware(
    store_key: web.AppKey[SessionStore],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Attach the staff session to each request; refuse state changes without the CSRF token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        store = request.app[store_key]
        session = store.get(request.cookies.get(COOKIE))
        request[STAFF_SESSION] = session
        if session is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise ApiError(403, "csrf", f"Missing or wrong {CSRF_HEADER} header.")
        return await handler(request)

    return middleware
