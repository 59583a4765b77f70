"""The signaling WebSocket (`GET /ws`): one handler per message type of docs/protocol.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from server import admission, media
from server.auth import STAFF_SESSION, StaffSession
from server.consultations import get_consultation
from server.db.models import Consultation, Participant
from server.errors import ApiError
from server.room import KINDS, Member, Message, RoomError
from server.rooms import ROOMS, LiveRoom, Media, MediaFactory, NoMedia, Rooms
from server.state import DB, SETTINGS, TEMPLATES
from server.templates import Role

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024  # bytes of UTF-8: larger frames are refused, the connection stays
MAX_WS_MESSAGE = 1024 * 1024  # larger frames close the connection (1009)
RATE = 20.0  # messages per second, sustained
BURST = 60.0
FLOOD = 600  # dropped messages within FLOOD_WINDOW before the connection is closed
FLOOD_WINDOW = 60.0
JOIN_TIMEOUT = 30.0
MAX_JOIN_FAILURES = 5
ADDRESS_FAILURES = 20  # failed joins per address per window before it is locked out
ADDRESS_WINDOW = 600.0
OUTBOX_LIMIT = 5000  # queued messages before a client that does not read is dropped
SOURCES = {"mic": "audio", "camera": "video", "screen": "screen"}
MEDIA_FACTORY: web.AppKey[MediaFactory] = web.AppKey("media_factory")


class ProtocolError(RoomError):
    """A malformed message (bad field, type)."""


def bad_field(name: str, message: str) -> ProtocolError:
    """A field is missing or has the wrong type or value."""
    return ProtocolError("bad_field", message, field=name)


class TokenBucket:
    """At most `rate` messages per second on average, with bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token; False when there is none."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AddressLockout:
    """Failed joins per client address; too many in a window lock the address out for a while."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again, or None."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(address, []) if t > now - self.window]
        self._failures[address] = recent
        if len(recent) < self.limit:
            return None
        return int(recent[0] + self.window - now) + 1

    def failed(self, address: str) -> None:
        """Count one failed join."""
        self._failures.setdefault(address, []).append(time.monotonic())
        if len(self._failures) > 10000:
            self._failures = {k: v for k, v in self._failures.items() if v}


ADDRESS_LOCKOUT = web.AppKey("join_address_lockout", AddressLockout)


# -- fields ------------------------------------------------------------------------------------


def text_field(body: dict[str, Any], name: str, limit: int, required: bool = True) -> str | None:
    """A string field of at most `limit` characters."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_field(name, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad_field(name, f"{name} must be a string")
    if len(value) > limit:
        raise bad_field(name, f"{name} is longer than {limit} characters")
    return value


def required_text(body: dict[str, Any], name: str, limit: int) -> str:
    """A string field that must be present."""
    value = text_field(body, name, limit)
    assert value is not None
    return value


def bool_field(body: dict[str, Any], name: str) -> bool:
    """A required true/false field."""
    value = body.get(name)
    if not isinstance(value, bool):
        raise bad_field(name, f"{name} must be true or false")
    return value


def kind_field(body: dict[str, Any]) -> str:
    """The `kind` of a moderation message."""
    value = body.get("kind")
    if value not in KINDS:
        raise bad_field("kind", "kind must be audio, video or screen")
    return str(value)


def id_field(body: dict[str, Any], required: bool = True) -> str | None:
    """A participant id."""
    return text_field(body, "id", 64, required)


# -- the connection ----------------------------------------------------------------------------


class Connection:
    """One participant's WebSocket: rate limit, size cap, dispatch, ordered sending."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.address = request.remote or "?"
        self.bucket = TokenBucket(RATE, BURST)
        self.dropped = 0  # in the current flood window
        self.flood_since = 0.0
        self.last_rate_error = 0.0
        self.join_failures = 0
        self.member: Member | None = None
        self.live: LiveRoom | None = None
        self.closing = False
        self._outbox: asyncio.Queue[str | int] = asyncio.Queue()

    # -- Link ---------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue a message; a client that stops reading is dropped."""
        if self.closing:
            return
        if self._outbox.qsize() > OUTBOX_LIMIT:
            log.warning("dropping a client that does not read its messages")
            self.close(4000)
            return
        self._outbox.put_nowait(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def close(self, code: int) -> None:
        """Close after the messages already queued."""
        if not self.closing:
            self.closing = True
            self._outbox.put_nowait(code)

    async def _write(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, int):
                await self.ws.close(code=item)
                return
            try:
                await self.ws.send_str(item)
            except ConnectionError:
                return

    # -- reading ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes."""
        writer = asyncio.create_task(self._write())
        timer = asyncio.get_running_loop().call_later(JOIN_TIMEOUT, self._join_timeout)
        try:
            async for frame in self.ws:
                if self.closing:
                    break
                if frame.type == WSMsgType.TEXT:
                    await self.receive(frame.data)
                elif frame.type == WSMsgType.BINARY:
                    self.error(ProtocolError("bad_message", "binary frames are not accepted"))
                else:
                    break
        finally:
            timer.cancel()
            self._gone()
            if not self.closing:
                self.close(1000)
            try:
                await asyncio.wait_for(writer, 5)
            except (TimeoutError, ConnectionError):
                writer.cancel()

    def _join_timeout(self) -> None:
        if self.member is None:
            self.error(RoomError("join_timeout", "no join within 30 s", fatal=True))

    def _gone(self) -> None:
        member, live = self.member, self.live
        if member is None or live is None or live.links.get(member.id) is not self:
            return  # never joined, or replaced by a newer connection
        del live.links[member.id]
        live.room.disconnected(member)
        live.spawn(live.media.gone(member))

    async def receive(self, data: str) -> None:
        """Check, parse and dispatch one text frame."""
        if not self._rate_ok():
            return
        ref: Any = None
        try:
            if len(data) > MAX_FRAME // 4 and len(data.encode()) > MAX_FRAME:
                raise ProtocolError("too_large", f"messages are at most {MAX_FRAME} bytes")
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                raise ProtocolError("bad_json", "not valid JSON") from None
            if not isinstance(body, dict):
                raise ProtocolError("bad_json", "a message must be a JSON object")
            ref = _ref(body)
            kind = body.get("type")
            if not isinstance(kind, str):
                raise ProtocolError("bad_message", "type is missing or not a string")
            handler = HANDLERS.get(kind)
            if handler is None:
                raise ProtocolError("unknown_type", f"unknown message type {kind[:64]!r}")
            self._check_state(kind)
            await handler(self, body, ref)
        except RoomError as error:
            self.error(error, ref)
        except Exception:
            log.exception("signaling handler failed")
            self.error(RoomError("internal", "internal error; it has been logged"), ref)

    def _rate_ok(self) -> bool:
        if self.bucket.take():
            return True
        now = time.monotonic()
        if now - self.flood_since > FLOOD_WINDOW:
            self.flood_since, self.dropped = now, 0
        self.dropped += 1
        if self.dropped > FLOOD:
            self.error(RoomError("flood", "too many messages", fatal=True))
            return False
        if now - self.last_rate_error >= 1.0:
            self.last_rate_error = now
            self.error(RoomError("rate_limited", f"at most {RATE:g} messages per second"))
        return False

    def _check_state(self, kind: str) -> None:
        if kind in ("ping", "join"):
            return
        if self.member is None:
            raise ProtocolError("not_joined", "send join first")
        if not self.member.admitted and kind != "leave":
            raise RoomError("in_lobby", "you are waiting in the lobby")

    def reply(self, message: Message, ref: Any) -> None:
        """Send a direct reply carrying the request's ref."""
        if ref is not None:
            message = {**message, "ref": ref}
        self.send(message)

    def error(self, error: RoomError, ref: Any = None) -> None:
        """Turn a refusal into an `error` message, in this one place; fatal ones close."""
        message: Message = {"type": "error", "code": error.code, "message": error.message}
        message.update(error.extra)
        self.reply(message, ref)
        if error.extra.get("fatal"):
            self.close(1000 if error.code in ("removed", "ended") else 4000)

    # -- joined state -------------------------------------------------------------------------

    def joined(self) -> tuple[LiveRoom, Member]:
        """The room and member of a joined connection."""
        assert self.live is not None and self.member is not None
        return self.live, self.member


def _ref(body: dict[str, Any]) -> Any:
    ref = body.get("ref")
    if ref is None:
        return None
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise bad_field("ref", "ref must be a string or an integer")
    if isinstance(ref, str) and len(ref) > 64:
        raise bad_field("ref", "ref is longer than 64 characters")
    return ref


# -- join --------------------------------------------------------------------------------------


async def on_join(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Join with a link, ID + passcode, staff session, or resume token."""
    if conn.member is not None:
        raise RoomError("already_joined", "this connection has joined already")
    lockout = conn.request.app[ADDRESS_LOCKOUT]
    wait = lockout.retry_after(conn.address)
    if wait is not None:
        raise RoomError("locked_out", "too many failed attempts; try again later", retry_after=wait)
    try:
        await _join(conn, body, ref)
    except RoomError as error:
        if error.code in ("bad_credentials", "expired", "locked_out", "join_method_not_allowed"):
            lockout.failed(conn.address)
            conn.join_failures += 1
            if conn.join_failures >= MAX_JOIN_FAILURES:
                error.extra["fatal"] = True
                error.code, error.message = "too_many_attempts", "too many failed joins"
        raise


async def _join(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    via = body.get("via")
    if via not in ("link", "passcode", "staff", "resume"):
        raise bad_field("via", "via must be link, passcode, staff or resume")
    rooms = conn.request.app[ROOMS]
    if via == "resume":
        token = required_text(body, "token", 256)
        found = _by_resume_token(rooms, token)
        if found is None:
            raise RoomError("bad_credentials", "the resume token is not valid (any more)")
        _enter(conn, found[0], found[1], ref)
        return
    db = conn.request.app[DB]
    templates = conn.request.app[TEMPLATES]
    settings = conn.request.app[SETTINGS]
    now = dt.datetime.now(dt.UTC)
    async with db() as session:
        if via == "link":
            participant = await admission.by_link(session, required_text(body, "token", 256), now)
        elif via == "passcode":
            join_id = required_text(body, "join_id", 32)
            passcode = required_text(body, "passcode", 64)
            participant = await admission.by_passcode(session, join_id, passcode, now)
        else:
            participant = await _staff_participant(conn, body, session)
        consultation = await session.get(Consultation, participant.consultation_id)
        assert consultation is not None
        template = templates.get(consultation.template)
        if template is None:
            raise RoomError("internal", "the consultation's template is not loaded")
        role = template.roles.get(participant.role)
        if role is None or not admission.join_allowed(role, via):
            raise RoomError("join_method_not_allowed", "your role cannot join this way")
        if consultation.state in ("ended", "cancelled"):
            raise RoomError("consultation_closed", f"the consultation is {consultation.state}")
        admission.check_not_too_early(consultation, role, settings.early_join_minutes, now)
        newcomer = _new_member(participant, role, body, template.anonymity)
        if consultation.state == "scheduled":
            consultation.state = "live"
            await session.commit()
    # from here on no await: the room cannot change between the check and the entry
    _enter(conn, rooms.open(consultation, template), newcomer, ref)


async def _staff_participant(conn: Connection, body: dict[str, Any], session: Any) -> Participant:
    staff: StaffSession | None = conn.request.get(STAFF_SESSION)
    if staff is None:
        raise RoomError("login_required", "log in as staff first")
    origin = conn.request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != conn.request.host:
        raise RoomError("bad_origin", "staff may join only from this server's pages")
    public_id = required_text(body, "consultation", 16)
    role = text_field(body, "role", 64, required=False)
    try:
        consultation = await get_consultation(session, public_id)
    except ApiError:
        raise RoomError("not_found", "no such consultation", field="consultation") from None
    template = conn.request.app[TEMPLATES].get(consultation.template)
    if template is None:
        raise RoomError("internal", "the consultation's template is not loaded")
    if consultation.state in ("ended", "cancelled"):
        raise RoomError("consultation_closed", f"the consultation is {consultation.state}")
    return await admission.by_staff(session, staff, consultation, template, role)


def _new_member(
    participant: Participant, role: Role, body: dict[str, Any], anonymity: str
) -> Member:
    name = participant.display_name
    if role.ask_display_name and not role.anonymous:
        asked = text_field(body, "display_name", 100, required=False)
        if asked and asked.strip():
            name = asked.strip()
    identity = None
    # identities stay in the database unless someone in the room may ever see them
    if role.anonymous and anonymity == "pseudonym" and participant.identity is not None:
        identity = (participant.identity.name, participant.identity.email)
    return Member(
        participant_id=participant.id,
        role=role,
        name=name,
        pseudonym=participant.pseudonym_number if role.anonymous else None,
        identity=identity,
    )


def _by_resume_token(rooms: Rooms, token: str) -> tuple[LiveRoom, Member] | None:
    for live in rooms.live.values():
        for member in live.room.members.values():
            if secrets.compare_digest(member.resume_token.encode(), token.encode()):
                return live, member
    return None


def _enter(conn: Connection, live: LiveRoom, candidate: Member, ref: Any) -> None:
    """Into the lobby or the room as a newcomer, or back into one's place."""
    try:
        member = live.room.check_entry(candidate.participant_id, candidate.role)
    except RoomError:
        if not live.room.members:  # do not keep a room open for a refused newcomer
            live.spawn(live.close("empty"))
        raise
    if member is None:
        member = candidate
        live.attach(member, conn)
        reply = live.room.enter(member)
    else:
        live.attach(member, conn)
        reply = live.room.reconnect(member, conn.send)
    conn.member, conn.live = member, live
    conn.reply(reply, ref)
    if member.admitted:
        live.spawn(live.media.admitted(member))


# -- handlers ----------------------------------------------------------------------------------


async def on_ping(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Keep-alive."""
    conn.reply({"type": "pong"}, ref)


async def on_leave(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Leave for good."""
    live, member = conn.joined()
    live.room.leave(member, "left")


async def on_offer(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """The client publishes: answer its offer."""
    live, member = conn.joined()
    sdp = required_text(body, "sdp", 60_000)
    sources = body.get("sources")
    if not isinstance(sources, dict) or len(sources) > 16:
        raise bad_field("sources", "sources must be an object of mid -> mic, camera or screen")
    for mid, source in sources.items():
        if source not in SOURCES or len(mid) > 32:
            raise bad_field("sources", "sources must map mids to mic, camera or screen")
    await live.media.offer(
        member,
        sdp,
        dict(sources),
        lambda answer: conn.reply({"type": "answer", "sdp": answer}, ref),
    )


async def on_answer(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """The client's answer to the server's offer."""
    live, member = conn.joined()
    await live.media.answer(member, required_text(body, "sdp", 60_000))


async def on_candidate(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """A trickled ICE candidate."""
    live, member = conn.joined()
    candidate = required_text(body, "candidate", 1000)
    mid = text_field(body, "sdp_mid", 32, required=False)
    await live.media.candidate(member, candidate or None, mid)


async def on_set_media(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Own microphone / camera / screen on or off."""
    live, member = conn.joined()
    changes = {kind: bool_field(body, kind) for kind in KINDS if kind in body}
    if not changes:
        raise bad_field("audio", "give at least one of audio, video, screen")
    live.room.set_media(member, changes)


async def on_raise_hand(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Join the hand queue."""
    live, member = conn.joined()
    live.room.raise_hand(member)


async def on_lower_hand(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Leave the hand queue, or take someone out of it."""
    live, member = conn.joined()
    live.room.lower_hand(member, id_field(body, required=False))


async def on_grant_floor(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Give the floor to someone, or to the first in the queue."""
    live, member = conn.joined()
    live.room.grant_floor(member, id_field(body, required=False))


async def on_revoke_floor(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Take the floor back."""
    live, member = conn.joined()
    live.room.revoke_floor(member)


async def on_admit(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Let someone in from the lobby."""
    live, member = conn.joined()
    target = live.room.members.get(id_field(body) or "")
    live.room.admit(member, id_field(body))
    if target is not None and target.connected:
        live.spawn(live.media.admitted(target))


async def on_deny(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Turn someone in the lobby away."""
    live, member = conn.joined()
    live.room.deny(member, id_field(body))


async def on_mute(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Pause someone's producer."""
    live, member = conn.joined()
    live.room.mute(member, id_field(body), kind_field(body))


async def on_ask_unmute(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Lift a moderator mute and ask to unmute."""
    live, member = conn.joined()
    live.room.ask_unmute(member, id_field(body), kind_field(body))


async def on_remove(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Remove someone for the rest of the consultation."""
    live, member = conn.joined()
    live.room.remove(member, id_field(body))


async def on_lock(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """Lock or unlock the consultation."""
    live, member = conn.joined()
    live.room.lock(member, bool_field(body, "locked"))


async def on_end(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """End the consultation for everyone."""
    live, member = conn.joined()
    live.room.end(member)


async def on_chat(conn: Connection, body: dict[str, Any], ref: Any) -> None:
    """A chat line to everyone or to staff."""
    live, member = conn.joined()
    to = body.get("to", "all")
    if to not in ("all", "staff"):
        raise bad_field("to", "to must be all or staff")
    text = body.get("text")
    if not isinstance(text, str):
        raise bad_field("text", "text must be a string")
    live.room.chat(member, text, str(to))


Handler = Callable[[Connection, dict[str, Any], Any], Awaitable[None]]
HANDLERS: dict[str, Handler] = {
    "join": on_join,
    "leave": on_leave,
    "ping": on_ping,
    "offer": on_offer,
    "answer": on_answer,
    "candidate": on_candidate,
    "set_media": on_set_media,
    "raise_hand": on_raise_hand,
    "lower_hand": on_lower_hand,
    "grant_floor": on_grant_floor,
    "revoke_floor": on_revoke_floor,
    "admit": on_admit,
    "deny": on_deny,
    "mute": on_mute,
    "ask_unmute": on_ask_unmute,
    "remove": on_remove,
    "lock": on_lock,
    "end": on_end,
    "chat": on_chat,
}


# -- the app -----------------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: one participant's signaling connection."""
    # no permessage-deflate, though browsers offer it: its zlib state would cost the server
    # ≈ 0.1 MB per connection (as much as a third of what a viewer's peer costs) and CPU per
    # message, to shrink signaling messages that are a few hundred bytes
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, heartbeat=20.0, compress=False)
    await ws.prepare(request)
    await Connection(request, ws).run()
    return ws


def no_media(live: LiveRoom) -> Media:
    """A media factory for servers (and tests) without an SFU."""
    return NoMedia()


async def _rooms(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    factory = app.get(MEDIA_FACTORY) or media.factory(settings)
    app[ROOMS] = Rooms(app[DB], factory, lambda: media.ice_servers(settings))
    yield
    await app[ROOMS].close_all()


async def _close_rooms(app: web.Application) -> None:
    # before aiohttp waits for open handlers: close every peer and connection now
    if ROOMS in app:
        await app[ROOMS].close_all()


def setup(app: web.Application) -> None:
    """Add the signaling endpoint and the live rooms to the app (after the database)."""
    app[ADDRESS_LOCKOUT] = AddressLockout(ADDRESS_FAILURES, ADDRESS_WINDOW)
    app.router.add_get("/ws", websocket)
    app.cleanup_ctx.append(_rooms)
    app.on_shutdown.append(_close_rooms)
