"""The load side of the forwarding benchmark: one publisher, N light and 2 full subscribers.

Light subscribers decrypt and count packets and sequence gaps straight from the socket (no
depacketising, no decoding); two full subscribers decode, so a broken stream cannot hide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from typing import Any

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from bench import srtp_tap
from bench.forwarding_media import ReplayTrack, load_clips
from bench.loadgen.procstats import udp_drops
from sfu import SfuConfig
from sfu import aiortc_hooks as hooks

FULL_SUBSCRIBERS = 2
CLIENT_CONFIG = SfuConfig(udp_port_min=50000, udp_port_max=65000)
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "madoguchi-bench")


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


class Control:
    """JSON-lines requests to the SFU process."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lock = asyncio.Lock()

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        async with self.lock:
            self.writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await self.writer.drain()
            reply: dict[str, Any] = json.loads(await self.reader.readline())
        if "error" in reply:
            detail = str(fields.get("sdp", ""))[:1500]
            raise RuntimeError(f"SFU refused {op}: {reply['error']}\n{detail}")
        return reply


class SeqCounter:
    """Packets and sequence gaps per SSRC, over a window.

    Each stream is [window start, highest, packets in window], in extended sequence numbers; a
    late packet from before the window (a retransmission) is not counted either way.
    """

    def __init__(self) -> None:
        self.streams: dict[int, list[int]] = {}

    def reset(self) -> None:
        for stream in self.streams.values():
            stream[0], stream[2] = stream[1] + 1, 0

    def totals(self) -> tuple[int, int]:
        received = sum(s[2] for s in self.streams.values())
        expected = sum(max(0, s[1] - s[0] + 1) for s in self.streams.values())
        return received, max(0, expected - received)


class LightSubscriber:
    """Receives over ICE/DTLS/SRTP like a browser, but only counts what arrives."""

    def __init__(self, control: Control, peer: str) -> None:
        self.control, self.peer = control, peer
        self.pc = new_pc()
        self.counter = SeqCounter()
        self.decrypt_errors = 0
        self.tapped = False

    async def join(self) -> None:
        offer = (await self.control.call("subscribe", peer=self.peer))["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        for transceiver in self.pc.getTransceivers():
            # no decoder thread, no jitter buffer: packets are counted at the socket
            hooks.attach_receiver(transceiver.receiver, _ignore, _ignore2, _ignore)
        hooks.use_ice_addresses(self.pc, CLIENT_CONFIG)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.control.call("answer", peer=self.peer, sdp=self.pc.localDescription.sdp)
        # tap as soon as DTLS is up: until then each packet takes aiortc's whole receive
        # path (≈ 70 µs), and a hundred untapped subscribers would starve the generator
        dtls = hooks.dtls_transport(self.pc)
        if dtls is not None:
            dtls.on("statechange", self.tap)

    def tap(self) -> bool:
        """Count RTP at the socket once DTLS is up; RTCP, STUN, DTLS go the usual way."""
        if not self.tapped:
            self.tapped = srtp_tap.tap(self.pc, self._count(), self._decrypt_error)
        return self.tapped

    def _decrypt_error(self) -> None:
        self.decrypt_errors += 1

    def _count(self) -> srtp_tap.OnRtp:
        streams = self.counter.streams
        unpack = struct.Struct("!HII").unpack_from

        def count(buffer: Any, length: int) -> None:
            seq, _, ssrc = unpack(buffer, 2)
            stream = streams.get(ssrc)
            if stream is None:
                streams[ssrc] = [seq, seq, 1]
                return
            delta = (seq - stream[1]) & 0xFFFF
            ext = stream[1] + (delta - 0x10000 if delta >= 0x8000 else delta)
            if ext > stream[1]:
                stream[1] = ext
            if ext >= stream[0]:
                stream[2] += 1

        return count

    async def close(self) -> None:
        await self.pc.close()


def _ignore(*args: Any) -> None:
    return None


def _ignore2(packet: Any, arrival: int) -> None:
    return None


class FullSubscriber:
    """A normal aiortc receiver that decodes, to prove the forwarded stream is valid."""

    def __init__(self, control: Control, peer: str) -> None:
        self.control, self.peer = control, peer
        self.pc = new_pc()
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self.tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.frames += 1
        except Exception:
            return

    async def join(self) -> None:
        offer = (await self.control.call("subscribe", peer=self.peer))["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        hooks.use_ice_addresses(self.pc, CLIENT_CONFIG)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.control.call("answer", peer=self.peer, sdp=self.pc.localDescription.sdp)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()


async def publish(control: Control) -> RTCPeerConnection:
    video, audio = load_clips(CACHE_DIR)
    pc = new_pc()
    pc.addTransceiver(ReplayTrack("video", video), direction="sendonly")
    pc.addTransceiver(ReplayTrack("audio", audio), direction="sendonly")
    hooks.use_ice_addresses(pc, CLIENT_CONFIG)
    await pc.setLocalDescription(await pc.createOffer())
    answer = (await control.call("publish", peer="publisher", sdp=pc.localDescription.sdp))["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc


async def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def rcvbuf_errors() -> int:
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


async def floor_sinks(count: int) -> tuple[list[Any], list[int]]:
    """Sockets that receive the floor run's packets and count them."""
    loop = asyncio.get_running_loop()
    received = [0]

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            received[0] += 1

    transports = []
    for _ in range(count):
        transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        transports.append(transport)
    return transports, received


async def start_helper(args: argparse.Namespace, module: str, *extra: str) -> Any:
    """A helper process (publisher, decoding subscribers) on the generator's core."""
    command = [sys.executable, "-m", module, "--socket", args.socket, *extra]
    if args.cpu is not None:
        command += ["--cpu", str(args.cpu)]
    return await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(args.socket, limit=1 << 22)
    control = Control(reader, writer)
    publisher = await start_helper(args, "bench.forwarding_publisher")
    await asyncio.wait_for(publisher.stdout.readline(), 60)  # "ready": connected
    await asyncio.sleep(1.0)
    rss_before = (await control.call("rss"))["rss_mb"]

    full = await start_helper(args, "bench.forwarding_full", "--count", str(FULL_SUBSCRIBERS))
    light = [LightSubscriber(control, f"light{i}") for i in range(args.subscribers)]
    joined = time.monotonic()
    for i in range(0, len(light), 10):  # join in batches, as a hearing fills up
        await asyncio.gather(*(s.join() for s in light[i : i + 10]))
        await asyncio.sleep(0.05)  # let consent checks and handshakes run
    await wait_until(lambda: all(s.tapped for s in light), 60, "light subscribers' DTLS")
    join_seconds = time.monotonic() - joined
    await asyncio.wait_for(full.stdout.readline(), 60)  # "ready": both decode frames
    await asyncio.sleep(args.warmup)

    for subscriber in light:
        subscriber.counter.reset()
    full.stdin.write(b"start\n")
    rcvbuf0 = rcvbuf_errors()
    drops0 = udp_drops(os.getpid(), tree=False)
    await control.call("measure_start")
    await asyncio.sleep(args.seconds)
    window = await control.call("measure_stop")
    states = [s.pc.connectionState for s in light]
    full.stdin.write(b"stop\n")
    frames = json.loads(await full.stdout.readline())["frames"]
    rcvbuf = rcvbuf_errors() - rcvbuf0
    generator_drops = udp_drops(os.getpid(), tree=False) - drops0
    totals = [s.counter.totals() for s in light]
    received = sum(t[0] for t in totals)
    lost = sum(t[1] for t in totals)

    # the floor runs alone: every peer is gone, the SFU process only protects and sends
    full.stdin.write(b"quit\n")
    await full.wait()
    for subscriber in light:
        await subscriber.close()
    publisher.stdin.write(b"quit\n")
    await publisher.wait()
    await control.call("close_router")
    sinks, floor_received = await floor_sinks(args.subscribers + FULL_SUBSCRIBERS)
    addresses = [t.get_extra_info("sockname") for t in sinks]
    floor = await control.call("floor", addresses=addresses)
    for transport in sinks:
        transport.close()
    await control.call("close")
    writer.close()

    cpu_us = window["cpu_s"] * 1e6 / max(1, window["forwarded"])
    floor_us = floor["cpu_s"] * 1e6 / max(1, floor["sent"])
    return {
        "subscribers": args.subscribers,
        "full_subscribers": FULL_SUBSCRIBERS,
        "seconds": round(window["wall_s"], 2),
        "sfu_cpu_cores": round(window["cpu_s"] / window["wall_s"], 3),
        "forwarded_pps": round(window["forwarded"] / window["wall_s"]),
        "cpu_us_per_packet": round(cpu_us, 2),
        "floor_us_per_packet": round(floor_us, 2),
        "ratio_to_floor": round(cpu_us / floor_us, 2) if floor_us else None,
        "light_received": received,
        "light_lost": lost,
        "loss_ratio": round(lost / max(1, received + lost), 5),
        "decrypt_errors": sum(s.decrypt_errors for s in light),
        "rcvbuf_errors": rcvbuf,
        "sfu_send_drops": window["send_drops"],
        "sfu_socket_drops": window["socket_drops"],
        "sfu_publisher_socket_drops": window["publisher_socket_drops"],
        "light_socket_drops": generator_drops,
        "publisher_pps_at_sfu": round(window["publisher_received"] / window["wall_s"]),
        "publisher_lost_at_sfu": window["publisher_lost"],
        "decoded_fps_min": round(min(frames) / window["wall_s"], 1),
        "rss_mb": round(window["rss_mb"], 1),
        "rss_mb_per_subscriber": round(
            (window["rss_mb"] - rss_before) / (args.subscribers + FULL_SUBSCRIBERS), 3
        ),
        "floor_packets_received": floor_received[0],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "join_seconds": round(join_seconds, 1),
        "light_connected_at_end": states.count("connected"),
    }


def process_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the arguments every process of this benchmark takes (--socket, --cpu) and pin it."""
    parser.add_argument("--socket", required=True)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    return args


def tolerate_late_consent() -> None:
    """Client processes keep their peers even when their own consent checks go unanswered.

    On a shared 2-core machine a starved process misses aioice's 0.5 s consent deadline six
    times in a row and drops its peers; the benchmark measures forwarding, so it tolerates that.
    """
    aioice.ice.CONSENT_FAILURES = 1_000_000


def main() -> None:
    tolerate_late_consent()
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    args = process_args(parser)
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
