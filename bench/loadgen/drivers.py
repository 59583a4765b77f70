"""How the generator joins each system: the same clients, each system's own signaling.

A driver publishes one peer (the replaying publisher) and then subscribes viewers. Every
subscriber is offered by the server (Janus, Madoguchi and the bench's MediaRelay all offer to
receivers), so a driver only moves SDP: the generator's `Subscriber.answer` does the rest.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any, Protocol

import aiohttp

from .peers import Publisher, Subscriber


class DriverError(Exception):
    """The system under test refused or failed a signaling step."""


class Driver(Protocol):
    """Signaling of one system under test."""

    async def open(self) -> None: ...
    async def publish(self, publisher: Publisher) -> None: ...
    async def subscribe(self, subscriber: Subscriber) -> None: ...
    async def close(self) -> None: ...


async def wait_http(url: str, limit: float) -> None:
    """Wait until something answers HTTP at `url` (the server may still be starting)."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    await r.read()
                    return
            except (aiohttp.ClientError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise DriverError(f"no answer from {url} within {limit:.0f} s") from exc
                await asyncio.sleep(0.2)


class RelayDriver:
    """The bench's MediaRelay server (bench/mediarelay.py): three JSON routes."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.http: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        await wait_http(self.base + "/", 20)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.post(self.base + path, json=body) as r:
            if r.status != 200:
                raise DriverError(f"{path}: HTTP {r.status} {await r.text()}")
            data: dict[str, Any] = await r.json()
            return data

    async def publish(self, publisher: Publisher) -> None:
        answer = await self._post("/publish", {"sdp": await publisher.offer()})
        await publisher.accept_answer(answer["sdp"])

    async def subscribe(self, subscriber: Subscriber) -> None:
        offer = await self._post("/subscribe", {})
        answer = await subscriber.answer(offer["sdp"])
        await self._post("/answer", {"id": offer["id"], "sdp": answer})

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()


class JanusDriver:
    """Janus VideoRoom over its HTTP API: one session, one handle per peer, long polling."""

    def __init__(self, base_url: str, room: int = 4242) -> None:
        self.base = base_url.rstrip("/")
        self.room = room
        self.http: aiohttp.ClientSession | None = None
        self.session: int | None = None
        self.feed: int | None = None
        self._tx = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        await wait_http(self.base + "/info", 20)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40))
        created = await self._post("", {"janus": "create"})
        self.session = created["data"]["id"]
        self._tasks.append(asyncio.ensure_future(self._poll()))
        self._tasks.append(asyncio.ensure_future(self._keepalive()))
        handle = await self._attach()
        reply = await self._message(
            handle,
            {
                "request": "create",
                "room": self.room,
                "publishers": 6,
                "audiocodec": "opus",
                "videocodec": "vp8",
            },
        )
        data = reply["plugindata"]["data"]
        if data.get("videoroom") != "created" and data.get("error_code") != 427:  # 427: exists
            raise DriverError(f"janus: create room: {data}")

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        body = {**body, "transaction": str(next(self._tx))}
        async with self.http.post(self.base + path, json=body) as r:
            data: dict[str, Any] = json.loads(await r.text())
        if data.get("janus") == "error":
            raise DriverError(f"janus: {data['error']}")
        return data

    async def _attach(self) -> int:
        reply = await self._post(
            f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        handle: int = reply["data"]["id"]
        return handle

    async def _message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a plugin message and return its reply: synchronous, or the event with its
        transaction that arrives on the long poll."""
        assert self.http is not None
        tx = str(next(self._tx))
        msg: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            msg["jsep"] = jsep
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[tx] = future
        try:
            async with self.http.post(f"{self.base}/{self.session}/{handle}", json=msg) as r:
                data: dict[str, Any] = json.loads(await r.text())
            if data.get("janus") == "success":
                return data
            if data.get("janus") != "ack":
                raise DriverError(f"janus: {data}")
            return await asyncio.wait_for(future, 30)
        finally:
            self._waiting.pop(tx, None)

    async def _poll(self) -> None:
        assert self.http is not None
        while True:
            try:
                async with self.http.get(f"{self.base}/{self.session}?maxev=20") as r:
                    events = json.loads(await r.text())
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
                await asyncio.sleep(0.2)
                continue
            for event in events if isinstance(events, list) else [events]:
                future = self._waiting.get(str(event.get("transaction")))
                if future is not None and not future.done() and event.get("janus") == "event":
                    future.set_result(event)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(20)
            try:
                await self._post(f"/{self.session}", {"janus": "keepalive"})
            except (aiohttp.ClientError, TimeoutError, DriverError):
                pass

    async def publish(self, publisher: Publisher) -> None:
        handle = await self._attach()
        offer = await publisher.offer()
        reply = await self._message(
            handle,
            {
                "request": "joinandconfigure",
                "room": self.room,
                "ptype": "publisher",
                "display": "publisher",
                "audio": True,
                "video": True,
            },
            {"type": "offer", "sdp": offer, "trickle": False},
        )
        data = reply["plugindata"]["data"]
        if "jsep" not in reply:
            raise DriverError(f"janus: publish: {data}")
        self.feed = data["id"]
        await publisher.accept_answer(reply["jsep"]["sdp"])

    async def subscribe(self, subscriber: Subscriber) -> None:
        handle = await self._attach()
        reply = await self._message(
            handle,
            {
                "request": "join",
                "room": self.room,
                "ptype": "subscriber",
                "streams": [{"feed": self.feed}],
            },
        )
        if "jsep" not in reply:
            raise DriverError(f"janus: subscribe: {reply['plugindata']['data']}")
        answer = await subscriber.answer(reply["jsep"]["sdp"])
        started = await self._message(
            handle, {"request": "start"}, {"type": "answer", "sdp": answer, "trickle": False}
        )
        if started["plugindata"]["data"].get("started") != "ok":
            raise DriverError(f"janus: start: {started['plugindata']['data']}")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            if self.session is not None:
                try:
                    await self._post(f"/{self.session}", {"janus": "destroy"})
                except (aiohttp.ClientError, TimeoutError, DriverError):
                    pass
            await self.http.close()


class DirectDriver:
    """No server: the publisher connects straight to one subscriber in the same process.

    Its delay is what the two aiortc client stacks and the generator add by themselves: the
    baseline to take from the delays measured through a server.
    """

    defer_publish = True

    def __init__(self) -> None:
        self.publisher: Publisher | None = None

    async def open(self) -> None:
        pass

    async def publish(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def subscribe(self, subscriber: Subscriber) -> None:
        if self.publisher is None or self.publisher.pc.remoteDescription is not None:
            raise DriverError("direct: exactly one subscriber")
        answer = await subscriber.answer(await self.publisher.offer())
        await self.publisher.accept_answer(answer)

    async def close(self) -> None:
        pass
