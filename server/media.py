"""The glue between a live room and its SFU router: transports, producers, consumers, offers.

The room decides who may send and receive; this module turns that into SFU calls: a producer is
paused unless the room's gate for it is open, and only members with `subscribe` get consumers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from server.permissions import Permission
from server.room import PUBLISH, Member, RoomError
from server.settings import Settings
from sfu import (
    ClosedError,
    GlareError,
    IncompatibleCodecError,
    NegotiationError,
    NoUsableCodecError,
    Producer,
    Router,
    SfuConfig,
    SfuError,
    Transport,
)

if TYPE_CHECKING:
    from server.rooms import LiveRoom

log = logging.getLogger(__name__)

# what a client may say an m-line carries, and the room's kind for it
SOURCE_KINDS = {"mic": "audio", "camera": "video", "screen": "screen"}
SOURCE_MEDIA = {"mic": "audio", "camera": "video", "screen": "video"}
# candidate:<foundation> <component> <udp|tcp> <priority> <address> <port> typ <type> ...
CANDIDATE = re.compile(r"^candidate:\S+ \d+ (?i:udp|tcp) \d+ \S+ \d+ typ \S+")


def sfu_config(settings: Settings) -> SfuConfig:
    """The SFU's configuration from the server settings."""
    return SfuConfig(
        ice_addresses=tuple(settings.ice_addresses),
        announced_addresses=tuple(settings.ice_announced_addresses),
        udp_port_min=settings.udp_port_min,
        udp_port_max=settings.udp_port_max,
    )


TURN_CREDENTIAL_SECONDS = 12 * 3600
OFFER_DELAY = 0.05  # seconds a server offer waits to take in more consumer changes


def ice_servers(settings: Settings, now: float | None = None) -> list[dict[str, Any]]:
    """What clients give RTCPeerConnection: the in-network TURN servers, or nothing.

    With `turn_secret`, credentials are time-limited (the TURN REST convention coturn's
    `use-auth-secret` checks): username = expiry time, password = HMAC-SHA1 of it.
    """
    if not settings.turn_urls:
        return []
    server: dict[str, Any] = {"urls": list(settings.turn_urls)}
    if settings.turn_secret:
        expires = int(time.time() if now is None else now) + TURN_CREDENTIAL_SECONDS
        username = f"{expires}:madoguchi"
        digest = hmac.new(settings.turn_secret.encode(), username.encode(), hashlib.sha1)
        server["username"] = username
        server["credential"] = base64.b64encode(digest.digest()).decode()
    return [server]


def sending_mlines(sdp: str) -> list[tuple[str, str]]:
    """(mid, media) of every m-line of an offer that sends (sendonly or sendrecv)."""
    found = []
    for section in sdp.replace("\r\n", "\n").split("\nm=")[1:]:
        lines = section.split("\n")
        media = lines[0].split(" ", 1)[0]
        port = lines[0].split(" ")[1] if " " in lines[0] else "0"
        mid, direction = None, "sendrecv"
        for line in lines[1:]:
            if line.startswith("a=mid:"):
                mid = line[len("a=mid:") :].strip()
            elif line[2:] in ("sendonly", "sendrecv", "recvonly", "inactive"):
                direction = line[2:]
        if media in ("audio", "video") and port != "0" and direction in ("sendonly", "sendrecv"):
            found.append((mid or "", media))
    return found


def check_sources(member: Member, sdp: str, sources: dict[str, str]) -> None:
    """Refuse an offer that sends anything unnamed, mismatched or not permitted."""
    if not sdp.startswith("v=0"):
        raise RoomError("bad_sdp", "unreadable SDP: it must start with v=0")
    for mid, media in sending_mlines(sdp):
        source = sources.get(mid)
        if source is None:
            raise RoomError(
                "bad_field", f"m-line {mid!r} sends but is not in sources", field="sources"
            )
        if SOURCE_MEDIA[source] != media:
            raise RoomError(
                "bad_field", f"m-line {mid!r} is {media}, not {source}", field="sources"
            )
        permission = PUBLISH[SOURCE_KINDS[source]]
        if not member.can(permission):
            raise RoomError(
                "forbidden", f"your role may not {permission.value}", permission=permission.value
            )


@dataclass
class Peer:
    """One member's transport and the state of its negotiation."""

    member: Member
    transport: Transport
    sources: dict[str, str] = field(default_factory=dict)  # mid -> mic / camera / screen
    ready: bool = False  # the client's first offer has been answered
    busy: bool = False  # a client offer is being handled
    offering: bool = False  # a server offer waits for its answer
    dirty: bool = False  # consumers changed since the last server offer


class SfuMedia:
    """The SFU side of one live room: one Router, one Transport per connected member."""

    def __init__(self, live: LiveRoom, config: SfuConfig) -> None:
        self.live = live
        self.router = Router(config, router_id=f"consultation-{live.consultation_id}")
        self.peers: dict[str, Peer] = {}
        self.sources: dict[str, str] = {}  # producer id -> mic / camera / screen
        self._closing: dict[str, asyncio.Future[None]] = {}  # member id -> transport closing
        self.router.producer_added.connect(self._producer_added)
        self.router.producer_closed.connect(self._producer_closed)
        self.router.active_speaker.dominant_speaker_changed.connect(self._dominant)

    # -- Media --------------------------------------------------------------------------------

    def gate(self, member: Member, kind: str, open_: bool) -> None:
        peer = self.peers.get(member.id)
        if peer is None:
            return
        for producer in list(peer.transport.producers.values()):
            if SOURCE_KINDS.get(self.sources.get(producer.id, "")) != kind:
                continue
            try:
                producer.resume() if open_ else producer.pause()
            except ClosedError:
                continue
            if self._on_demand(producer):
                if open_:
                    self._consume_everywhere(producer)
                else:
                    for consumer in list(producer.consumers.values()):
                        self.live.spawn(consumer.close())

    async def admitted(self, member: Member) -> None:
        # transports are made at the client's first offer (the client always starts)
        pass

    async def gone(self, member: Member) -> None:
        peer = self.peers.pop(member.id, None)
        if peer is None:
            return
        # a reconnecting member's next offer waits for this close (one transport per peer id)
        closing = asyncio.ensure_future(peer.transport.close())
        self._closing[member.id] = closing
        try:
            await asyncio.shield(closing)
        finally:
            if self._closing.get(member.id) is closing:
                del self._closing[member.id]

    async def offer(
        self, member: Member, sdp: str, sources: dict[str, str], reply: Callable[[str], None]
    ) -> None:
        check_sources(member, sdp, sources)
        peer = await self._peer(member)
        if peer.offering or peer.busy:
            raise RoomError("glare", "the server's offer is outstanding: answer it first")
        peer.busy = True
        peer.sources = dict(sources)
        try:
            answer = await peer.transport.handle_offer(sdp)
        except GlareError:
            raise RoomError("glare", "the server's offer is outstanding: answer it first") from None
        except (NoUsableCodecError, NegotiationError) as error:
            raise RoomError("bad_sdp", str(error)) from None
        except SfuError as error:
            raise RoomError("media_unavailable", str(error)) from None
        finally:
            peer.busy = False
        reply(answer)
        if not peer.ready:
            peer.ready = True
            self._consume_all(peer)
        self._want_offer(peer)

    async def answer(self, member: Member, sdp: str) -> None:
        peer = self.peers.get(member.id)
        if peer is None or not peer.offering:
            raise RoomError("no_offer", "no server offer is waiting for an answer")
        try:
            await peer.transport.handle_answer(sdp)
        except NegotiationError as error:
            raise RoomError("bad_sdp", str(error)) from None
        except SfuError as error:
            raise RoomError("media_unavailable", str(error)) from None
        peer.offering = False
        self._want_offer(peer)

    async def candidate(self, member: Member, candidate: str | None, mid: str | None) -> None:
        peer = self.peers.get(member.id)
        if peer is None:
            raise RoomError("no_offer", "send an offer before candidates")
        if candidate is not None and not CANDIDATE.match(candidate):
            raise RoomError("bad_field", "not an ICE candidate line", field="candidate")
        try:
            await peer.transport.add_ice_candidate(candidate, mid)
        except NegotiationError as error:
            raise RoomError("bad_field", str(error), field="candidate") from None
        except SfuError as error:
            raise RoomError("media_unavailable", str(error)) from None

    async def close(self) -> None:
        self.peers.clear()
        await self.router.close()

    # -- transports ---------------------------------------------------------------------------

    async def _peer(self, member: Member) -> Peer:
        peer = self.peers.get(member.id)
        if peer is not None and not peer.transport.closed:
            return peer
        closing = self._closing.get(member.id)
        if closing is not None:  # the dropped connection's transport is still closing
            await asyncio.shield(closing)
        old = self.router.transports.get(member.id)
        if old is not None:
            await old.close()
        try:
            transport = await self.router.create_transport(member.id)
        except SfuError as error:
            raise RoomError("media_unavailable", str(error)) from None
        peer = Peer(member, transport)
        self.peers[member.id] = peer
        transport.negotiation_needed.connect(lambda _t: self._renegotiate(peer))
        return peer

    def _renegotiate(self, peer: Peer) -> None:
        peer.dirty = True
        self._want_offer(peer)

    def _want_offer(self, peer: Peer) -> None:
        if peer.dirty and peer.ready and not peer.busy and not peer.offering:
            peer.offering = True  # claimed now, so that a client offer meanwhile is glare
            self.live.spawn(self._send_offer(peer))

    async def _send_offer(self, peer: Peer) -> None:
        # people join and leave in bursts: one offer covers everything of the next moment
        await asyncio.sleep(OFFER_DELAY)
        peer.dirty = False
        try:
            sdp = await peer.transport.create_offer()
        except (ClosedError, NegotiationError) as error:
            peer.offering = False
            log.info("no offer to %s: %s", peer.member.id, error)
            return
        tracks = [
            {
                "mid": consumer.mid,
                "participant": consumer.producer.peer_id,
                "kind": consumer.producer.kind,
                "source": self.sources.get(consumer.producer.id, "camera"),
            }
            for consumer in peer.transport.consumers.values()
            if consumer.mid is not None and not consumer.closed
        ]
        peer.member.deliver({"type": "offer", "sdp": sdp, "tracks": tracks})

    # -- producers and consumers --------------------------------------------------------------

    def _subscribers(self, publisher: str) -> list[Peer]:
        return [
            p
            for p in self.peers.values()
            if p.ready
            and p.member.id != publisher
            and p.member.admitted
            and p.member.can(Permission.subscribe)
            and not p.transport.closed
        ]

    def _on_demand(self, producer: Producer) -> bool:
        """Floor-controlled producers are consumed only while their gate is open.

        A hearing has hundreds of residents, each with a paused microphone: consuming them all
        would give every peer hundreds of idle m-lines. Only the floor holder's are forwarded.
        """
        member = self.live.room.members.get(producer.peer_id)
        source = self.sources.get(producer.id)
        return member is not None and source != "screen" and self.live.room.gated(member)

    def _wanted(self, producer: Producer) -> bool:
        if not self._on_demand(producer):
            return True
        member = self.live.room.members.get(producer.peer_id)
        kind = SOURCE_KINDS.get(self.sources.get(producer.id, ""), "")
        return member is not None and bool(member.gates.get(kind))

    def _consume_everywhere(self, producer: Producer) -> None:
        for subscriber in self._subscribers(producer.peer_id):
            self.live.spawn(self._consume(producer, subscriber))

    def _consume_all(self, peer: Peer) -> None:
        if not peer.member.can(Permission.subscribe):
            return
        for producer in list(self.router.producers.values()):
            if producer.peer_id != peer.member.id and self._wanted(producer):
                self.live.spawn(self._consume(producer, peer))

    async def _consume(self, producer: Producer, peer: Peer) -> None:
        consumers = peer.transport.consumers.values()
        if any(c.producer is producer and not c.closed for c in consumers):
            return
        try:
            await self.router.consume(producer, peer.transport)
        except IncompatibleCodecError as error:
            log.info("%s cannot receive %s: %s", peer.member.id, producer.id, error)
        except ClosedError:
            pass

    def _producer_added(self, producer: Producer) -> None:
        peer = self.peers.get(producer.peer_id)
        source = None if peer is None else peer.sources.get(producer.mid)
        member = None if peer is None else peer.member
        if (
            member is None
            or source is None
            or SOURCE_MEDIA[source] != producer.kind
            or not member.can(PUBLISH[SOURCE_KINDS[source]])
        ):
            # checked before the offer was applied; this is the second line of defence
            producer.pause()
            self.live.spawn(producer.close())
            return
        self.sources[producer.id] = source
        producer.pause()  # until the room opens the gate
        member.gates.pop(SOURCE_KINDS[source], None)
        self.live.room.published(member, SOURCE_KINDS[source], True)
        if not self._on_demand(producer):
            self._consume_everywhere(producer)

    def _producer_closed(self, producer: Producer) -> None:
        source = self.sources.pop(producer.id, None)
        member = self.live.room.members.get(producer.peer_id)
        if source is None or member is None:
            return
        kind = SOURCE_KINDS[source]
        still = any(
            SOURCE_KINDS.get(self.sources.get(p.id, "")) == kind
            for p in self.router.producers.values()
            if p.peer_id == member.id
        )
        if not still:
            self.live.room.published(member, kind, False)

    def _dominant(self, producer: Producer | None) -> None:
        member = None if producer is None else self.live.room.members.get(producer.peer_id)
        self.live.room.set_speaking(member)


def factory(settings: Settings) -> Callable[[LiveRoom], Any]:
    """A media factory for Rooms: one SfuMedia per live room."""
    config = sfu_config(settings)
    return lambda live: SfuMedia(live, config)
