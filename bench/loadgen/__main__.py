"""The load generator: one publisher and N subscribers (or K meetings of P parties) of one
system; JSON lines on stdout.

    python -m bench.loadgen --system janus --url http://127.0.0.2:8088/janus \
        --ice-address 127.0.0.3 --subscribers 100 --duration 10
    python -m bench.loadgen --system madoguchi --url http://127.0.0.2:8090 \
        --ice-address 127.0.0.3 --rooms 4 --parties 6

Events, one JSON object a line: `published`, `connected` (with failures), `measure_start`,
`measure_end`, then `result` (or `error`). The orchestrator (python -m bench) samples the
server's CPU between `measure_start` and `measure_end`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aioice.ice

from bench import srtp_tap
from bench.report import SETTLED_DELAY

from . import procstats
from .drivers import DirectDriver, Driver, DriverError, JanusDriver, RelayDriver
from .media import load_clip
from .party_media import PartyMedia
from .peers import (
    LatencyProbe,
    Publisher,
    Subscriber,
    milliseconds,
    percentile,
    probe_positions,
    tune_receive_sockets,
    use_ice_address,
    window,
)

JOIN_PAGE = Path(__file__).resolve().parent.parent / "join_page.html"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def make_driver(system: str, url: str, args: argparse.Namespace) -> Driver:
    if system == "janus":
        return JanusDriver(url)
    if system == "relay":
        return RelayDriver(url)
    if system == "direct":
        return DirectDriver()
    if system == "madoguchi":
        from .madoguchi_driver import MadoguchiDriver

        return MadoguchiDriver(url, parties=args.parties if args.rooms else 0)
    raise SystemExit(f"unknown system {system}")


async def connected(sub: Subscriber, join: Awaitable[Any], limit: float) -> str | None:
    """Run one peer's join; None once its connection is up, else why not."""
    try:
        await asyncio.wait_for(join, limit)
        waits = [
            asyncio.ensure_future(sub.connected.wait()),
            asyncio.ensure_future(sub.failed.wait()),
        ]
        _done, pending = await asyncio.wait(
            waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if sub.connected.is_set():
            return None
        return "ice/dtls failed" if sub.failed.is_set() else "not connected in time"
    except (DriverError, TimeoutError, OSError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def join_viewers(
    args: argparse.Namespace, driver: Driver, probe: LatencyProbe, publisher: Publisher
) -> tuple[list[Subscriber], list[str]]:
    """One publisher, N viewers: the hearing / broadcast case."""
    await asyncio.wait_for(driver.publish(publisher), args.connect_timeout)
    if not getattr(driver, "defer_publish", False):
        await asyncio.wait_for(publisher.connected.wait(), args.connect_timeout)
    emit("published")
    prepare = getattr(driver, "prepare", None)
    if prepare is not None:
        await prepare(args.subscribers)
    n_full = min(args.full, args.subscribers)
    probes = probe_positions(n_full, args.subscribers, args.probes)
    subs = []
    for i in range(args.subscribers):
        # the first viewers decode; light ones spread over the join order measure delay
        full = i < n_full
        subs.append(Subscriber(full=full, probe=probe if i in probes else None))
    sem = asyncio.Semaphore(args.parallel)

    async def join(sub: Subscriber) -> str | None:
        async with sem:
            return await connected(sub, driver.subscribe(sub), args.connect_timeout)

    errors = await asyncio.gather(*(join(s) for s in subs))
    return subs, [e for e in errors if e is not None]


async def join_rooms(
    args: argparse.Namespace, driver: Any, probe: LatencyProbe, media: PartyMedia
) -> tuple[list[Subscriber], list[str]]:
    """K meetings of P parties, everyone sending and receiving everyone else (Madoguchi)."""
    emit("published")
    rooms: list[list[Subscriber]] = []
    for k in range(args.rooms):
        rooms.append(
            [
                Subscriber(
                    full=k == 0 and i < args.full,
                    decode_videos=1,
                    publish=True,
                    probe=probe if k == 0 and i == args.full else None,
                )
                for i in range(args.parties)
            ]
        )
    sem = asyncio.Semaphore(max(1, args.parallel // args.parties))

    async def join_room(parties: list[Subscriber]) -> list[str | None]:
        async with sem:
            consultation = await driver.new_consultation("bench_meeting")
            out = []
            for i, party in enumerate(parties):
                out.append(
                    await connected(
                        party, driver.join_party(party, consultation, i == 0), args.connect_timeout
                    )
                )
            return out

    results = await asyncio.gather(*(join_room(r) for r in rooms), return_exceptions=True)
    errors: list[str] = []
    for r in results:
        if isinstance(r, BaseException):
            errors.extend([f"{type(r).__name__}: {r}"] * args.parties)
        else:
            errors.extend(e for e in r if e is not None)
    # every connected party sends; the probe times the sends of the first room's parties
    for k, room in enumerate(rooms):
        for party in room:
            if party.connected.is_set():
                media.add(party.pc, probe if k == 0 else None)
    media.start()
    return [p for r in rooms for p in r], errors


async def serve_join_page(host: str, port: int) -> Any:
    """Serve bench/join_page.html, so that the browser's page lives on a local address too."""
    from aiohttp import web

    html = JOIN_PAGE.read_text()
    app = web.Application()
    app.router.add_get("/join", lambda _r: web.Response(text=html, content_type="text/html"))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def hold_for_browsers(
    args: argparse.Namespace, driver: Any, publisher: Publisher
) -> dict[str, Any]:
    """Publish, hand out viewer credentials, and stay until the orchestrator stops us."""
    await asyncio.wait_for(driver.publish(publisher), args.connect_timeout)
    await asyncio.wait_for(publisher.connected.wait(), args.connect_timeout)
    emit("published")
    page = await serve_join_page(args.ice_address, args.page_port)
    try:
        emit("links", joins=await driver.viewer_credentials(args.links))
        await asyncio.sleep(args.hold)
    finally:
        await page.cleanup()
    return {"system": args.system, "links": args.links}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    use_ice_address(args.ice_address)
    tune_receive_sockets()
    clip = load_clip()
    probe = LatencyProbe()
    driver = make_driver(args.system, args.url, args)
    publisher = Publisher(clip, probe, live=args.live_publisher)
    media = PartyMedia(clip) if args.rooms else None
    subs: list[Subscriber] = []
    try:
        await asyncio.wait_for(driver.open(), args.connect_timeout)
        if args.links:
            return await hold_for_browsers(args, driver, publisher)
        t0 = time.monotonic()
        if media is not None:
            subs, failures = await join_rooms(args, driver, probe, media)
        else:
            subs, failures = await join_viewers(args, driver, probe, publisher)
        retries = getattr(driver, "join_retries", 0)
        emit(
            "connected",
            join_retries=retries,
            ok=len(subs) - len(failures),
            failed=len(failures),
            seconds=round(time.monotonic() - t0, 2),
            reasons=sorted(set(failures))[:5],
        )
        # every peer is made: the collector's full scans need not walk them again while the
        # generator measures (with 100 peers one took 25-140 ms here, long enough for its
        # sockets to overflow)
        gc.collect()
        gc.freeze()
        await asyncio.sleep(args.warmup)
        settle_seconds, settled = await settle(probe, args.settle_limit)
        result = await measure(args, subs, failures, probe, media)
        result["join_retries"] = retries
        result["settle_seconds"], result["settled"] = settle_seconds, settled
        return result
    finally:
        if media is not None:
            await media.stop()
        await _close_all(driver, publisher, subs)


async def settle(probe: LatencyProbe, limit: float) -> tuple[float, bool]:
    """Wait after the warm-up until the server has caught up with the joins; (seconds, settled).

    Hundreds of joins in a few tens of seconds can keep a server's core full while the last
    ones come in; the packets that queued meanwhile leave late, and a window opened before
    they have would time them as the steady state's delay (seconds, at 300 viewers, against
    milliseconds once caught up). So the window opens after a whole second in which no probe
    packet took SETTLED_DELAY or longer, or after `limit` seconds if that never comes (a
    server that cannot keep up: its window shows it). A run without probe samples (MediaRelay
    re-encodes, so no payload matches) does not wait.
    """
    start = time.monotonic()
    while True:
        probe.delays.clear()
        probe.recording = True
        await asyncio.sleep(1.0)
        probe.recording = False
        waited = round(time.monotonic() - start, 1)
        if not probe.delays or max(probe.delays) < SETTLED_DELAY:
            return waited, True
        if waited >= limit:
            return waited, False


async def measure(
    args: argparse.Namespace,
    subs: list[Subscriber],
    failures: list[str],
    probe: LatencyProbe,
    media: PartyMedia | None = None,
) -> dict[str, Any]:
    me = os.getpid()
    unsent0 = media.unsent() if media is not None else 0
    before = [s.counter.snapshot() for s in subs]
    drops0, rcvbuf0 = procstats.udp_drops(me), procstats.rcvbuf_errors()
    cpu0 = procstats.cpu_seconds(me)
    probe.delays.clear()
    probe.kernel_stamped = 0
    probe.recording = True
    start = time.monotonic()
    emit("measure_start")
    await asyncio.sleep(args.duration)
    end = time.monotonic()
    emit("measure_end")
    probe.recording = False
    after = [s.counter.snapshot() for s in subs]
    drops1, rcvbuf1 = procstats.udp_drops(me), procstats.rcvbuf_errors()
    cpu1 = procstats.cpu_seconds(me)
    unsent1 = media.unsent() if media is not None else 0

    received = expected = gaps = silent = streams = 0
    for b, a in zip(before, after, strict=True):
        r, e, g = window(b, a)
        received, expected, gaps = received + r, expected + e, gaps + g
        silent += r == 0
        streams += sum(1 for ssrc, v in a.items() if v[0] > b.get(ssrc, (0, 0, 0))[0])
    seconds = end - start
    delays = probe.delays
    return {
        "system": args.system,
        "subscribers": args.subscribers if not args.rooms else args.rooms * args.parties,
        "rooms": args.rooms,
        "parties": args.parties,
        "connected": len(subs) - len(failures),
        "failed": len(failures),
        "failure_reasons": sorted(set(failures))[:5],
        "seconds": round(seconds, 3),
        "packets_received": received,
        "packets_expected": expected,
        "gaps": gaps,
        "silent_subscribers": silent,
        "streams_receiving": streams,
        "loss": (expected - received) / expected if expected else None,
        "full_fps": [round(s.fps(start, end), 1) for s in subs if s.full],
        "generator_udp_drops": drops1 - drops0,
        "generator_unsent": unsent1 - unsent0,
        "generator_decrypt_errors": sum(s.counter.decrypt_errors for s in subs),
        "generator_rtcp_taken": sum(s.counter.rtcp_received for s in subs),
        "generator_sockets_read_directly": srtp_tap.direct_sockets(),
        "namespace_rcvbuf_errors": rcvbuf1 - rcvbuf0,
        "generator_cpu": round((cpu1 - cpu0) / seconds, 3),
        "delay_ms_p50": milliseconds(percentile(delays, 0.5)),
        "delay_ms_p99": milliseconds(percentile(delays, 0.99)),
        "delay_samples": len(delays),
        "delay_kernel_stamped": probe.kernel_stamped,
        "delay_ms_mean": milliseconds(statistics.fmean(delays)) if delays else None,
    }


async def _close_all(driver: Driver, publisher: Publisher, subs: list[Subscriber]) -> None:
    async def quietly(coro: Any) -> None:
        try:
            await asyncio.wait_for(coro, 10)
        except Exception:  # closing must go on whatever one peer does
            pass

    await asyncio.gather(*(quietly(s.close()) for s in subs))
    await quietly(publisher.close())
    await quietly(driver.close())


def main() -> None:
    # on a shared 2-core machine a starved generator misses aioice's consent deadline and would
    # drop its own peers; that is the generator's failure, not the server's, so it tolerates it
    aioice.ice.CONSENT_FAILURES = 1_000_000
    p = argparse.ArgumentParser(prog="python -m bench.loadgen")
    p.add_argument("--system", required=True, choices=["janus", "relay", "madoguchi", "direct"])
    p.add_argument("--url", required=True)
    p.add_argument("--ice-address", default="127.0.0.1")
    p.add_argument("--subscribers", type=int, default=1)
    p.add_argument("--rooms", type=int, default=0, help="meetings instead of one publisher")
    p.add_argument("--parties", type=int, default=6, help="parties per meeting")
    p.add_argument("--full", type=int, default=2, help="subscribers that decode")
    p.add_argument("--probes", type=int, default=4, help="light subscribers that measure delay")
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument(
        "--settle-limit",
        type=float,
        default=20,
        help="most seconds to wait for the server to catch up",
    )
    p.add_argument("--connect-timeout", type=float, default=60)
    p.add_argument("--parallel", type=int, default=16)
    p.add_argument("--live-publisher", action="store_true", help="encode video live (PLI works)")
    p.add_argument("--links", type=int, default=0, help="madoguchi: hand out N viewer logins")
    p.add_argument("--page-port", type=int, default=8091, help="with --links: join page port")
    p.add_argument("--hold", type=float, default=300, help="with --links: seconds to stay")
    args = p.parse_args()
    try:
        result = asyncio.run(run(args))
    except (DriverError, TimeoutError, OSError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        sys.exit(2)
    emit("result", **result)


if __name__ == "__main__":
    main()
