"""A test client speaking docs/protocol.md, and helpers to seed consultations with invitations."""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import fractions
import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from argon2 import PasswordHasher
from av import AudioFrame, VideoFrame

from server.consultations import add_participant, create_consultation
from server.db.models import Invitation
from server.state import DB, TEMPLATES
from sfu import SfuConfig
from sfu.aiortc_hooks import use_ice_addresses

Message = dict[str, Any]
# test clients bind media sockets on loopback, outside the server's port range
CLIENT_MEDIA = SfuConfig(udp_port_min=50000, udp_port_max=59999)
# cheap argon2 for tests: the server verifies any argon2 hash with its own parameters
_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class Invitee:
    """A seeded participant and the credentials that let them in."""

    participant_id: int
    role: str
    name: str
    email: str
    token: str
    join_id: str
    passcode: str


async def seed(
    app: web.Application, template: str, people: list[tuple[str, str]], **invite: Any
) -> tuple[str, list[Invitee]]:
    """A consultation and one invited participant per (role, name); returns its public id."""
    tmpl = app[TEMPLATES][template]
    expires = invite.get("expires_at", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    invitees = []
    async with app[DB].begin() as session:
        consultation = await create_consultation(
            session, tmpl, "テスト相談", dt.datetime.now(dt.UTC)
        )
        for index, (role, name) in enumerate(people):
            email = f"person{index}@example.jp"
            participant = await add_participant(
                session, consultation, tmpl, role, name=name, email=email, display_name=name
            )
            token = secrets.token_urlsafe(16)
            join_id = f"{90000000 + consultation.id * 1000 + index}"
            passcode = f"{secrets.randbelow(10**6):06d}"
            session.add(
                Invitation(
                    participant_id=participant.id,
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    join_id=join_id,
                    passcode_hash=_hasher.hash(passcode),
                    expires_at=expires,
                )
            )
            invitees.append(Invitee(participant.id, role, name, email, token, join_id, passcode))
        public_id = consultation.public_id
    return public_id, invitees


class SignalingClient:
    """One participant's WebSocket; keeps every frame received, waits for messages."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        owns_session: bool = True,
    ) -> None:
        self.session = session
        self.owns_session = owns_session
        self.ws = ws
        self.frames: list[str] = []
        self.messages: list[Message] = []
        self._unread: list[Message] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None
        self.me: Message = {}

    @classmethod
    async def connect(
        cls, url: str, session: aiohttp.ClientSession | None = None, local_ip: str | None = None
    ) -> SignalingClient:
        """Open /ws, with its own HTTP session unless given (from `local_ip` if given)."""
        owns = session is None
        if session is None:
            connector = aiohttp.TCPConnector(local_addr=(local_ip, 0) if local_ip else None)
            session = aiohttp.ClientSession(connector=connector)
        ws = await session.ws_connect(url, max_msg_size=4 * 1024 * 1024)
        return cls(session, ws, owns)

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            self.frames.append(frame.data)
            message = json.loads(frame.data)
            async with self._changed:
                self.messages.append(message)
                self._unread.append(message)
                self._changed.notify_all()
        async with self._changed:
            self.close_code = self.ws.close_code
            self._changed.notify_all()

    async def send(self, message: Message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def wait(
        self,
        kind: str,
        where: Callable[[Message], bool] = lambda m: True,
        within: float = 10.0,
    ) -> Message:
        """The first unread message of this type that matches (consumed)."""

        def find() -> Message | None:
            for message in self._unread:
                if message["type"] == kind and where(message):
                    self._unread.remove(message)
                    return message
            return None

        async with self._changed:
            found: Message | None = None

            def ready() -> bool:
                nonlocal found
                found = find()
                return found is not None or self._reader.done()

            await asyncio.wait_for(self._changed.wait_for(ready), within)
        if found is None:
            raise AssertionError(f"connection closed before {kind}; got {self.messages[-5:]}")
        return found

    async def request(self, message: Message, reply: str, within: float = 10.0) -> Message:
        """Send with a fresh ref and wait for the reply or error carrying it."""
        ref = secrets.token_hex(4)
        await self.send({**message, "ref": ref})
        return await self.wait_ref(ref, reply, within)

    async def wait_ref(self, ref: str, reply: str, within: float = 10.0) -> Message:
        """The reply (or error) with this ref."""

        async def either() -> Message:
            async with self._changed:
                found: Message | None = None

                def ready() -> bool:
                    nonlocal found
                    for message in self._unread:
                        if message.get("ref") == ref and message["type"] in (reply, "error"):
                            self._unread.remove(message)
                            found = message
                            return True
                    return self._reader.done()

                await self._changed.wait_for(ready)
            if found is None:
                raise AssertionError(f"closed before the reply to {ref}: {self.messages[-5:]}")
            return found

        return await asyncio.wait_for(either(), within)

    async def expect_error(self, message: Message, code: str) -> Message:
        """Send and check that it is refused with `code`."""
        reply = await self.request(message, "error")
        assert reply["type"] == "error" and reply["code"] == code, reply
        return reply

    async def join(self, expect: str = "joined", **fields: Any) -> Message:
        """Send join and wait for `joined` (or `lobby`)."""
        reply = await self.request({"type": "join", **fields}, expect)
        assert reply["type"] == expect, reply
        if expect == "joined":
            self.me = reply["you"]
        return reply

    async def closed(self, within: float = 10.0) -> int | None:
        """Wait until the server closes the connection; its close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), within)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        if self.owns_session:
            await self.session.close()


def credentials(invitee: Invitee, via: str = "passcode") -> Message:
    """The join fields of an invitee."""
    if via == "link":
        return {"via": "link", "token": invitee.token}
    return {"via": "passcode", "join_id": invitee.join_id, "passcode": invitee.passcode}


def client_pc() -> RTCPeerConnection:
    """A client peer connection: no public STUN, one bundle."""
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def set_local(pc: RTCPeerConnection, description: RTCSessionDescription) -> None:
    """setLocalDescription with a 127.0.0.1 host candidate (aioice leaves loopback out)."""
    use_ice_addresses(pc, CLIENT_MEDIA)
    await pc.setLocalDescription(description)


class ToneTrack(MediaStreamTrack):
    """A 400 Hz tone in 20 ms frames, loud enough for the active-speaker observer."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        samples = [int(16000 * math.sin(2 * math.pi * 400 * i / 48000)) for i in range(960)]
        self._wave = array.array("h", samples).tobytes()
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent / 48000 - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._wave)
        frame.sample_rate = 48000
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, 48000)
        self._sent += 960
        return frame


class BarTrack(MediaStreamTrack):
    """A small moving bar: a camera or a shared screen that is cheap to encode."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 10) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._count / self.fps - time.monotonic()))
        frame = VideoFrame(self.width, self.height, "yuv420p")
        x = (self._count * 8) % self.width
        row = bytearray([16]) * self.width
        row[x : x + 16] = bytes([235]) * len(row[x : x + 16])
        frame.planes[0].update(bytes(row) * self.height)
        chroma = bytes([128]) * (self.width * self.height // 4)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = self._count * 90000 // self.fps
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


class MediaPeer:
    """A participant's aiortc peer connection to the SFU, negotiated over a SignalingClient.

    Receivers count RTP packets per sending participant and drop them (no decoding), so that
    one test process can stand for many participants.
    """

    def __init__(self, client: SignalingClient) -> None:
        self.client = client
        self.pc = client_pc()
        self.packets: dict[tuple[str, str], int] = {}  # (participant id, kind) -> packets
        self.offers = 0
        self._tracks: dict[str, Message] = {}  # mid -> track info from the server
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one negotiation at a time, in either direction

    async def start(self, sources: dict[str, MediaStreamTrack]) -> None:
        """Publish `sources` (mic / camera / screen -> track), then answer server offers."""
        by_source = {}
        for source, track in sources.items():
            by_source[source] = self.pc.addTransceiver(track, direction="sendonly")
        if not sources:
            self.pc.addTransceiver("audio", direction="recvonly")
        await set_local(self.pc, await self.pc.createOffer())
        mids = {t.mid: source for source, t in by_source.items()}
        reply = await self.client.request(
            {"type": "offer", "sdp": self.pc.localDescription.sdp, "sources": mids}, "answer"
        )
        assert reply["type"] == "answer", reply
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        self._task = asyncio.create_task(self._answer_offers())

    async def reoffer(self, sources: dict[Any, str]) -> Message:
        """Offer again (transceiver -> source, e.g. screen share on or off); on glare, answer
        the server's offer, then retry.

        aiortc has no rollback, so the offer is only applied locally once it is answered; and it
        gives new transceivers their mid only then, so mids are read from the offer's m-lines.
        """
        while True:
            async with self._lock:
                offer = await self.pc.createOffer()
                mids = re.findall(r"^a=mid:(\S+)", offer.sdp, re.MULTILINE)
                order = dict(zip(self.pc.getTransceivers(), mids, strict=False))
                named = {order[t]: source for t, source in sources.items()}
                reply = await self.client.request(
                    {"type": "offer", "sdp": offer.sdp, "sources": named}, "answer"
                )
                if reply["type"] == "answer":
                    await set_local(self.pc, offer)
                    answer = RTCSessionDescription(sdp=reply["sdp"], type="answer")
                    await self.pc.setRemoteDescription(answer)
                    return reply
            if reply["code"] != "glare":
                return reply
            await asyncio.sleep(0.05)  # let the server's offer be answered first

    async def _answer_offers(self) -> None:
        while True:
            offer = await self.client.wait("offer", within=3600)
            async with self._lock:
                await self._answer(offer)

    async def _answer(self, offer: Message) -> None:
        for track in offer["tracks"]:
            self._tracks[track["mid"]] = track
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        for transceiver in self.pc.getTransceivers():
            self._count(transceiver)
        await set_local(self.pc, await self.pc.createAnswer())
        await self.client.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
        self.offers += 1

    def _count(self, transceiver: Any) -> None:
        receiver = transceiver.receiver
        if getattr(receiver, "_madoguchi_counting", False):
            return
        receiver._madoguchi_counting = True
        mid = transceiver.mid

        async def count(packet: Any, arrival_time_ms: int) -> None:
            track = self._tracks.get(mid)
            if track is not None:
                key = (track["participant"], track["kind"])
                self.packets[key] = self.packets.get(key, 0) + 1

        receiver._handle_rtp_packet = count

    def received(self, participant: str, kind: str = "audio") -> int:
        """Packets received so far from one participant."""
        return self.packets.get((participant, kind), 0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()
