"""The SFU side of the forwarding benchmark: a Router behind a JSON-lines control socket.

Also measures the floor: SRTP-protect and send the same packets to as many sockets, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import os
import socket
import struct
import time
from typing import Any

import pylibsrtp

from bench.forwarding_load import process_args
from bench.loadgen.procstats import udp_drops, udp_drops_by_port
from sfu import Router, SfuConfig


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PacketRecorder:
    """Keeps the publisher's packets (as forwarded: header, 8-byte extension block, payload)
    with their arrival times, so that the floor replays the same sizes at the same pace."""

    def __init__(self) -> None:
        self.recording = False
        self.packets: list[tuple[float, bytes]] = []

    def tap(self, receiver: Any) -> None:
        handler = receiver._handle_rtp_packet

        async def record(packet: Any, arrival_time_ms: int) -> None:
            if self.recording:
                header = struct.pack(
                    "!BBHII",
                    0x90,
                    packet.payload_type,
                    packet.sequence_number,
                    packet.timestamp,
                    packet.ssrc,
                )
                ext = b"\xbe\xde\x00\x01\x22\x00\x00\x00"
                self.packets.append((time.monotonic(), header + ext + packet.payload))
            await handler(packet, arrival_time_ms)

        receiver._handle_rtp_packet = record


class BenchSfu:
    """Handles the load generator's requests."""

    def __init__(self) -> None:
        self.router = Router(SfuConfig(), router_id="bench")
        self.recorder = PacketRecorder()
        self.window: dict[str, float] = {}
        self.profile: cProfile.Profile | None = None

    def counters(self) -> dict[str, int]:
        transports = list(self.router.transports.values())
        producers = list(self.router.producers.values())
        return {
            "forwarded": self.forwarded(),
            "send_drops": sum(t.sink.dropped for t in transports),
            "publisher_received": sum(p._stats.packets_received for p in producers),
            "publisher_lost": sum(p._stats.packets_lost for p in producers),
            "socket_drops": udp_drops(os.getpid(), tree=False),
            "publisher_socket_drops": self.publisher_socket_drops(),
        }

    def publisher_socket_drops(self) -> int:
        transport = self.router.transports.get("publisher")
        pair = transport.sink._connection._nominated.get(1) if transport else None
        if pair is None:
            return 0
        port = pair.protocol.transport.get_extra_info("sockname")[1]
        return udp_drops_by_port(os.getpid(), tree=False).get(port, 0)

    def forwarded(self) -> int:
        return sum(
            c.packets_sent for t in self.router.transports.values() for c in t.consumers.values()
        )

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        handler = getattr(self, f"op_{op}")
        result: dict[str, Any] = await handler(request)
        return result

    async def op_publish(self, request: dict[str, Any]) -> dict[str, Any]:
        transport = await self.router.create_transport(request["peer"])
        answer = await transport.handle_offer(request["sdp"])
        for producer in transport.producers.values():
            self.recorder.tap(producer._transceiver.receiver)
        return {"sdp": answer}

    async def op_subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.router.producers:
            raise RuntimeError("the publisher is gone")
        transport = await self.router.create_transport(request["peer"])
        for producer in self.router.producers.values():
            await self.router.consume(producer, transport)
        return {"sdp": await transport.create_offer()}

    async def op_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.router.transports[request["peer"]].handle_answer(request["sdp"])
        return {}

    async def op_rss(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"rss_mb": rss_mb()}

    async def op_measure_start(self, request: dict[str, Any]) -> dict[str, Any]:
        self.window = {"cpu": time.process_time(), "wall": time.monotonic()}
        self.window.update(self.counters())
        self.recorder.packets = []
        self.recorder.recording = True
        if os.environ.get("SFU_PROFILE"):  # where the window's CPU goes (slows it down)
            self.profile = cProfile.Profile()
            self.profile.enable()
        return {}

    async def op_measure_stop(self, request: dict[str, Any]) -> dict[str, Any]:
        cpu = time.process_time() - self.window["cpu"]
        wall = time.monotonic() - self.window["wall"]
        now = self.counters()
        deltas = {k: v - int(self.window[k]) for k, v in now.items()}
        self.recorder.recording = False
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(os.environ["SFU_PROFILE"])
            self.profile = None
        return {"cpu_s": cpu, "wall_s": wall, "rss_mb": rss_mb(), **deltas}

    async def op_floor(self, request: dict[str, Any]) -> dict[str, Any]:
        packets = self.recorder.packets
        return await floor(packets, [tuple(a) for a in request["addresses"]])

    async def op_stats(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.router.stats()

    async def op_close_router(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.router.close()
        return {}

    async def op_close(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.router.close()
        return {}


async def floor(packets: list[tuple[float, bytes]], addresses: list[Any]) -> dict[str, Any]:
    """Protect and send each recorded packet to every address, at the recorded pace."""
    outs = []
    for address in addresses:
        policy = pylibsrtp.Policy(
            key=os.urandom(44),
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
        )
        policy.allow_repeat_tx = True
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        outs.append((pylibsrtp.Session(policy), sock, tuple(address)))
    if not packets:
        return {"cpu_s": 0.0, "sent": 0}
    start_rec, start = packets[0][0], time.monotonic()
    cpu0 = time.process_time()
    sent = 0
    for at, data in packets:
        delay = (at - start_rec) - (time.monotonic() - start)
        if delay > 0.001:
            await asyncio.sleep(delay)
        for session, sock, address in outs:
            try:
                sock.sendto(session.protect(data), address)
                sent += 1
            except BlockingIOError:
                pass
    cpu = time.process_time() - cpu0
    for _, sock, _ in outs:
        sock.close()
    return {"cpu_s": cpu, "sent": sent, "packets": len(packets), "copies": len(outs)}


async def serve(path: str) -> None:
    sfu = BenchSfu()
    done = asyncio.Event()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await serve_client(reader, writer)

    async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            try:
                reply = await sfu.handle(request)
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            if request["op"] == "close":
                done.set()
        writer.close()

    server = await asyncio.start_unix_server(client, path, limit=1 << 22)
    async with server:
        await done.wait()


def main() -> None:
    # no consent tolerance here: the SFU's transports keep the product's own rule (an answer
    # within 30 s, sfu/aiortc_hooks.patient_consent), which the measurement includes
    args = process_args(argparse.ArgumentParser())
    logging.basicConfig(level=logging.WARNING, format="sfu %(levelname)s %(name)s %(message)s")
    logging.getLogger("sfu").setLevel(logging.INFO)
    asyncio.run(serve(args.socket))


if __name__ == "__main__":
    main()
