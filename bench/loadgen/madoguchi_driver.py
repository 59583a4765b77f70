"""Joining Madoguchi as its clients do: REST to schedule, the /ws protocol to join and negotiate.

A staff account (made by bench/madoguchi.py) logs in, schedules a consultation from a bench
template and adds one participant per peer; each peer then joins over its own WebSocket with
its link token or ID and passcode, publishes by offering, and answers the server's offers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .drivers import DriverError, wait_http
from .peers import Publisher, Subscriber

STAFF_LOGIN = "bench"
STAFF_PASSWORD = "bench-password-not-secret"  # see bench/madoguchi.py


JOIN_ATTEMPTS = 3


class Peer:
    """One participant's signaling connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._refs = itertools.count(1)
        self._replies: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.on_offer: Callable[[str], Awaitable[str]] | None = None
        self.first_answer_sent = asyncio.Event()
        self.errors: list[dict[str, Any]] = []
        # a local offer and the answer to a server offer never overlap on one peer connection
        self.lock = asyncio.Lock()
        self._offers: asyncio.Queue[str] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._read())
        self.worker = asyncio.ensure_future(self._answer_offers())

    async def request(self, message: dict[str, Any], limit: float = 30) -> dict[str, Any]:
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ref] = future
        if os.environ.get("BENCH_DEBUG"):
            print("ws ->", str(message)[:200], file=sys.stderr)
        await self.ws.send_str(json.dumps({**message, "ref": ref}))
        try:
            reply = await asyncio.wait_for(future, limit)
        finally:
            self._replies.pop(ref, None)
        if reply.get("type") == "error":
            raise DriverError(
                f"madoguchi: {message['type']}: {reply.get('code')}: {reply.get('message')}"
            )
        return reply

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(msg.data)
            if os.environ.get("BENCH_DEBUG"):
                print("ws <-", str(body)[:300], file=sys.stderr)
            future = self._replies.get(body.get("ref"))
            if future is not None and not future.done():
                future.set_result(body)
            elif body.get("type") == "offer":
                self._offers.put_nowait(body["sdp"])
            elif body.get("type") == "error":
                self.errors.append(body)

    async def _answer_offers(self) -> None:
        # the server's offers, answered in order, one at a time
        while True:
            sdp = await self._offers.get()
            if self.on_offer is None:
                continue
            async with self.lock:
                answer = await self.on_offer(sdp)
            await self.ws.send_str(json.dumps({"type": "answer", "sdp": answer}))
            self.first_answer_sent.set()

    async def close(self) -> None:
        self.task.cancel()
        self.worker.cancel()
        await self.ws.close()


class MadoguchiDriver:
    """Publisher = the chair (or staff); viewers = residents joining with ID and passcode."""

    def __init__(self, base_url: str, parties: int = 0) -> None:
        self.base = base_url.rstrip("/")
        self.parties = parties
        self.http: aiohttp.ClientSession | None = None
        self.csrf = ""
        self.consultation = ""
        self.peers: list[Peer] = []
        self._credentials: list[dict[str, Any]] = []
        self.join_retries = 0

    async def open(self) -> None:
        await wait_http(self.base + "/api/me", 30)
        # unsafe: keep cookies of a bare IP address host (127.0.0.2)
        # limit=0: every viewer holds one WebSocket; aiohttp's default of 100 connections
        # made the 100th viewer wait for a free one until its join timed out
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        login = await self._rest(
            "POST", "/api/login", {"login": STAFF_LOGIN, "password": STAFF_PASSWORD}
        )
        self.csrf = login["csrf_token"]
        await self.new_consultation("bench_meeting" if self.parties else "bench_hearing")

    async def new_consultation(self, template: str) -> str:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        made = await self._rest(
            "POST",
            "/api/consultations",
            {"template": template, "title": "bench", "starts_at": now.isoformat()},
        )
        self.consultation = made["id"]
        return self.consultation

    async def _rest(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            data: dict[str, Any] = await r.json(content_type=None)
            if r.status >= 300:
                raise DriverError(f"madoguchi: {method} {path}: HTTP {r.status} {data}")
        return data

    async def _participant(self, role: str, consultation: str | None = None) -> dict[str, Any]:
        made = await self._rest(
            "POST",
            f"/api/consultations/{consultation or self.consultation}/participants",
            {"role": role, "display_name": role},
        )
        join: dict[str, Any] = made["join"]
        return join

    async def _join(
        self, join: dict[str, Any], via: str, on_offer: Callable[[str], Awaitable[str]]
    ) -> Peer:
        assert self.http is not None
        # offer permessage-deflate as browsers do: what a real participant costs the server
        ws = await self.http.ws_connect(self.base + "/ws", max_msg_size=1 << 20, compress=15)
        peer = Peer(ws)
        # set before joining: the server's first offer may follow `joined` at once
        peer.on_offer = on_offer
        self.peers.append(peer)
        if via == "link":
            token = join["link"].rstrip("/").rsplit("/", 1)[-1]
            message = {"type": "join", "via": "link", "token": token}
        else:
            message = {
                "type": "join",
                "via": "passcode",
                "join_id": join["join_id"],
                "passcode": join["passcode"],
            }
        reply = await peer.request({**message, "display_name": "bench"})
        if reply.get("type") != "joined":
            raise DriverError(f"madoguchi: join answered {reply.get('type')}")
        return peer

    async def _publish_on(self, peer: Peer, publisher: Publisher | Subscriber) -> None:
        # the client always offers first (server/media.py makes the transport then)
        async with peer.lock:
            offer = await publisher.offer()
            sources = {
                mid: "mic" if kind == "audio" else "camera"
                for mid, kind in publisher.mids().items()
            }
            reply = await peer.request({"type": "offer", "sdp": offer, "sources": sources})
            await publisher.accept_answer(reply["sdp"])

    async def publish(self, publisher: Publisher) -> None:
        peer = await self._join(await self._participant("chair"), "link", _answerer(publisher.pc))
        await self._publish_on(peer, publisher)

    async def prepare(self, viewers: int) -> None:
        """Register the residents before the hearing, one after the other, as staff would."""
        for _ in range(viewers):
            self._credentials.append(await self._participant("resident"))

    async def subscribe(self, subscriber: Subscriber) -> None:
        creds = self._credentials.pop() if self._credentials else None
        creds = creds or await self._participant("resident")
        for attempt in range(JOIN_ATTEMPTS):
            try:
                peer = await self._join(creds, "passcode", subscriber.answer)
                break
            except DriverError as exc:
                # a client retries a join the server failed internally; counted and reported
                if ": internal:" not in str(exc) or attempt == JOIN_ATTEMPTS - 1:
                    raise
                self.join_retries += 1
                await asyncio.sleep(0.5 * (attempt + 1))
        await self._publish_on(peer, subscriber)  # sends nothing: one recvonly m-line
        await peer.first_answer_sent.wait()

    async def viewer_credentials(self, count: int) -> list[dict[str, Any]]:
        """ID and passcode of `count` new residents, for browsers to join with."""
        return [await self._participant("resident") for _ in range(count)]

    async def join_party(self, party: Subscriber, consultation: str, first: bool) -> Peer:
        """One party of an N-party meeting: publishes camera + mic and receives the others."""
        role = "staff" if first else "heir"
        peer = await self._join(await self._participant(role, consultation), "link", party.answer)
        await self._publish_on(peer, party)
        return peer

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.peers), return_exceptions=True)
        if self.http is not None:
            await self.http.close()


def _answerer(pc: Any) -> Callable[[str], Awaitable[str]]:
    from aiortc import RTCSessionDescription

    async def answer(sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    return answer
