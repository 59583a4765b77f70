"""Live rooms by consultation: a Room plus what it needs outside itself (DB log, links, media)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Consultation, Event
from server.room import Member, Message, Room, RoomError
from server.templates import Template

log = logging.getLogger(__name__)


class Link(Protocol):
    """One participant's signaling connection, as the room sees it."""

    def send(self, message: Message) -> None:
        """Queue a message to the participant."""

    def close(self, code: int) -> None:
        """Close the connection after the queued messages."""


class Media(Protocol):
    """The SFU side of one live room (server/media.py), or NoMedia."""

    def gate(self, member: Member, kind: str, open_: bool) -> None:
        """Resume or pause the member's producer of `kind`."""

    async def admitted(self, member: Member) -> None:
        """The member is in the room: make their transport."""

    async def gone(self, member: Member) -> None:
        """The member's connection dropped or they left: close their transport."""

    async def offer(
        self, member: Member, sdp: str, sources: dict[str, str], reply: Callable[[str], None]
    ) -> None:
        """The client's offer; `reply` sends the answer before any server offer follows."""

    async def answer(self, member: Member, sdp: str) -> None:
        """The client's answer to the server's last offer."""

    async def candidate(self, member: Member, candidate: str | None, mid: str | None) -> None:
        """A trickled ICE candidate from the client."""

    async def close(self) -> None:
        """Close every transport and the router."""


class NoMedia:
    """A room without an SFU: media requests are refused (used by non-media tests)."""

    def gate(self, member: Member, kind: str, open_: bool) -> None:
        pass

    async def admitted(self, member: Member) -> None:
        pass

    async def gone(self, member: Member) -> None:
        pass

    async def offer(
        self, member: Member, sdp: str, sources: dict[str, str], reply: Callable[[str], None]
    ) -> None:
        raise RoomError("media_unavailable", "this server has no SFU")

    async def answer(self, member: Member, sdp: str) -> None:
        raise RoomError("media_unavailable", "this server has no SFU")

    async def candidate(self, member: Member, candidate: str | None, mid: str | None) -> None:
        raise RoomError("media_unavailable", "this server has no SFU")

    async def close(self) -> None:
        pass


MediaFactory = Callable[["LiveRoom"], Media]
CLOSE_CODES = {"replaced": 4001, "shutdown": 1001}


class LiveRoom:
    """A consultation in progress: its Room, its participants' links, event log and media."""

    def __init__(
        self,
        consultation_id: int,
        public: dict[str, Any],
        template: Template,
        db: async_sessionmaker[AsyncSession],
        media_factory: MediaFactory,
        on_closed: Callable[[LiveRoom], None],
        ice_servers: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self.consultation_id = consultation_id
        self.db = db
        self.links: dict[str, Link] = {}
        self.room = Room(template, public, self, ice_servers=ice_servers)
        self.media = media_factory(self)
        self._events: list[Event] = []
        self._flushing: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_closed = on_closed
        self._end_consultation = False
        self.closed = False

    # -- RoomHooks ----------------------------------------------------------------------------

    def media_gate(self, member: Member, kind: str, open_: bool) -> None:
        self.media.gate(member, kind, open_)

    def log(self, kind: str, member: Member | None, data: dict[str, Any]) -> None:
        participant = None if member is None else member.participant_id
        self._events.append(
            Event(
                consultation_id=self.consultation_id,
                kind=kind,
                participant_id=participant,
                data=data,
            )
        )
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self.flush())
        if kind == "ended" and data.get("reason") == "ended":
            self._end_consultation = True
        if kind in ("locked", "unlocked"):
            self.spawn(self._store(locked=kind == "locked"))

    def close_member(self, member: Member, reason: str) -> None:
        link = self.links.pop(member.id, None)
        if link is not None:
            link.close(CLOSE_CODES.get(reason, 1000))
        self.spawn(self.media.gone(member))
        if not self.room.members and not self.closed:
            self.spawn(self.close("empty"))

    # -- the rest -----------------------------------------------------------------------------

    def attach(self, member: Member, link: Link) -> None:
        """Route the member's messages to `link`, closing a previous connection (replaced)."""
        old = self.links.get(member.id)
        if old is not None and old is not link:
            old.close(CLOSE_CODES["replaced"])
            # the old connection's media goes with it; the new one offers afresh
            self.spawn(self.media.gone(member))
        self.links[member.id] = link
        member.send = link.send

    def spawn(self, coroutine: Any) -> None:
        """Run a task owned by this room (cancelled when the room closes)."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room task failed", exc_info=task.exception())

    async def settle(self) -> None:
        """Wait for the room's pending tasks and write its events (tests, shutdown)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Write pending events to the database (after any write already under way)."""
        async with self._flush_lock:
            await self._write_events()

    async def _write_events(self) -> None:
        while self._events:
            batch, self._events = self._events, []
            try:
                async with self.db() as session:
                    session.add_all(batch)
                    await session.commit()
            except Exception:
                log.exception("could not write %d events", len(batch))

    async def _store(self, **values: Any) -> None:
        async with self.db() as session:
            await session.execute(
                update(Consultation).where(Consultation.id == self.consultation_id).values(**values)
            )
            await session.commit()

    async def close(self, reason: str = "ended") -> None:
        """Close the room: `ended` (for all), `empty` (everyone left) or `shutdown`."""
        if self.closed:
            return
        self.closed = True
        self._on_closed(self)
        if reason == "shutdown":
            for member_id, link in list(self.links.items()):
                link.close(CLOSE_CODES["shutdown"])
                self.links.pop(member_id, None)
        self.room.close(reason)
        await self.media.close()
        # let pending work finish against closed objects: cancelling a task that waits in
        # aiortc's close() would cancel the future aiortc itself waits on
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=5.0)
            for task in late:
                task.cancel()
        await self.flush()
        if self._end_consultation:
            await self._store(state="ended")


class Rooms:
    """Every live room of this process, keyed by consultation id."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        media_factory: MediaFactory,
        ice_servers: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self.db = db
        self.media_factory = media_factory
        self.ice_servers = ice_servers
        self.live: dict[int, LiveRoom] = {}

    def open(self, consultation: Consultation, template: Template) -> LiveRoom:
        """The live room of a consultation, made if needed."""
        live = self.live.get(consultation.id)
        if live is not None and not live.closed:
            return live
        public = {
            "id": consultation.public_id,
            "title": consultation.title,
            # the lobby and the room show when it is and what to have at hand
            "starts_at": consultation.starts_at.isoformat(),
            "ends_at": consultation.ends_at.isoformat(),
            "checklist": [{"ja": item.ja, "en": item.en} for item in template.checklist or ()],
        }
        live = LiveRoom(
            consultation.id,
            public,
            template,
            self.db,
            self.media_factory,
            self._forget,
            self.ice_servers,
        )
        self.live[consultation.id] = live
        live.room.locked = consultation.locked
        return live

    def _forget(self, live: LiveRoom) -> None:
        if self.live.get(live.consultation_id) is live:
            del self.live[live.consultation_id]

    async def close_all(self) -> None:
        """Graceful shutdown: close every room, every peer and every connection."""
        for live in list(self.live.values()):
            await live.close("shutdown")


ROOMS = web.AppKey("rooms", Rooms)
