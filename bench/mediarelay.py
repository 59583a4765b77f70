"""The aiortc MediaRelay baseline: decodes the publisher once, re-encodes for each subscriber.

    python -m bench.mediarelay --host 127.0.0.2 --port 8089

This is what aiortc offers out of the box for one-to-many (`aiortc.contrib.media.MediaRelay`):
every subscriber's sender encodes its own copy of the decoded frames. Routes (JSON):
`POST /publish {sdp}` -> `{sdp}`; `POST /subscribe` -> `{id, sdp}` (the server's offer);
`POST /answer {id, sdp}`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from typing import Any

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from .loadgen.peers import new_pc, use_ice_address

RELAY = web.AppKey("relay", dict)


def create_app() -> web.Application:
    app = web.Application()
    app[RELAY] = {"relay": MediaRelay(), "tracks": {}, "pcs": {}, "ids": itertools.count(1)}
    app.router.add_get("/", lambda r: web.json_response({"ok": True}))
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_post("/answer", answer)
    app.on_shutdown.append(close_all)
    return app


async def publish(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[RELAY]
    body = await request.json()
    pc = new_pc()
    state["pcs"]["publisher"] = pc

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        state["tracks"][track.kind] = track

    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.json_response({"sdp": pc.localDescription.sdp})


async def subscribe(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[RELAY]
    if not state["tracks"]:
        raise web.HTTPConflict(text="no publisher yet")
    pc = new_pc()
    pc_id = str(next(state["ids"]))
    state["pcs"][pc_id] = pc
    for kind in ("audio", "video"):
        track = state["tracks"].get(kind)
        if track is not None:
            pc.addTrack(state["relay"].subscribe(track))
    await pc.setLocalDescription(await pc.createOffer())
    return web.json_response({"id": pc_id, "sdp": pc.localDescription.sdp})


async def answer(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[RELAY]
    body = await request.json()
    pc: RTCPeerConnection = state["pcs"][body["id"]]
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
    return web.json_response({"ok": True})


async def close_all(app: web.Application) -> None:
    pcs = list(app[RELAY]["pcs"].values())
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.mediarelay")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8089)
    args = p.parse_args()
    use_ice_address(args.host)
    web.run_app(create_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
