"""Where a forwarded copy's microseconds go: `python -m bench.forwarding_micro`.

Times, in one process on one core, per copy of a 1,100-byte packet sent to 100 local sockets:
the floor (pylibsrtp protect + socket.sendto), the SFU's in-place protect + sendto
(RtpSink.send_packet), and the whole fan-out (forward_group: header rewrite included).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import time
import types
from collections.abc import Callable
from typing import Any

import pylibsrtp

from sfu import aiortc_hooks as hooks
from sfu.consumer import Consumer, forward_group
from sfu.rtp_packet_view import RtpPacketView

DESTINATIONS = 100
ROUNDS = 200


def _session() -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=os.urandom(44),
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    )
    policy.allow_repeat_tx = True
    return pylibsrtp.Session(policy)


class _Transport:
    """The two attributes RtpSink reads from an asyncio datagram transport."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def is_closing(self) -> bool:
        return False


def _sink(sock: socket.socket, address: Any) -> hooks.RtpSink:
    pair = types.SimpleNamespace(
        protocol=types.SimpleNamespace(transport=_Transport(sock)), remote_addr=address
    )
    dtls = types.SimpleNamespace(
        _setup_srtp=lambda: None,  # the session is already made (RtpSink wraps this)
        _tx_srtp=_session(),
        transport=types.SimpleNamespace(_connection=types.SimpleNamespace(_nominated={1: pair})),
    )
    sink = hooks.RtpSink()
    sink.bind(dtls)
    return sink


def _interleaved(
    steps: dict[str, Callable[[int], None]], drain: Callable[[], None]
) -> dict[str, float]:
    """CPU µs per copy of each step, rounds interleaved so that all see the same neighbours.

    The median round of each: on a shared machine a preempted or cache-cold round says nothing.
    """
    rounds: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(ROUNDS):
        for name, step in steps.items():
            start = time.process_time()
            step(i)
            rounds[name].append(time.process_time() - start)
            drain()
    return {
        name: round(statistics.median(times) * 1e6 / DESTINATIONS, 2)
        for name, times in rounds.items()
    }


def main() -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    receivers = []
    for _ in range(DESTINATIONS):
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind(("127.0.0.1", 0))
        r.setblocking(False)
        receivers.append(r)

    def drain() -> None:
        for r in receivers:
            try:
                while True:
                    r.recv(2048)
            except BlockingIOError:
                pass

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    addresses = [r.getsockname() for r in receivers]
    payload = os.urandom(1100)
    packet = bytes.fromhex("9060000100000001cafebabe") + b"\xbe\xde\x00\x01\x32\x00\x00\x00"
    packet += payload
    sessions = [_session() for _ in addresses]

    def floor(i: int) -> None:
        for session, address in zip(sessions, addresses, strict=True):
            sender.sendto(session.protect(packet), address)

    # one socket per destination, as the server has (a sink connects its socket to its peer)
    sinks = [_sink(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), a) for a in addresses]
    tail = packet[12:]  # extensions + payload

    def in_place(i: int) -> None:
        for sink in sinks:
            sink.send_packet(0x90, 96, i, 1, 0xCAFE, tail)

    consumers = []
    for sink in sinks:
        consumer: Any = Consumer.__new__(Consumer)
        consumer.__dict__.update(
            _need_sync=False,
            _sync_seq=0,
            _seq_off=7,
            _ts_off=9,
            _sink=sink,
            _pt=96,
            _ssrc=0xCAFE,
            _layout=(3, 0),
            _counting=False,
            _counted=(0, 0),
            kind="video",
        )
        consumers.append(consumer)

    def forward(i: int) -> None:
        view = RtpPacketView(i, 3000 * i, 0, payload, 0, 0x123456, None, False)
        forward_group(view, consumers)

    def protect(i: int) -> None:
        for session in sessions:
            session.protect(packet)

    def send(i: int) -> None:
        for address in addresses:
            sender.sendto(packet, address)

    steps = {
        "floor_protect_sendto_us": floor,
        "sink_send_packet_us": in_place,
        "consumer_forward_us": forward,
        "pylibsrtp_protect_us": protect,
        "sendto_us": send,
    }
    result: dict[str, Any] = {"destinations": DESTINATIONS, **_interleaved(steps, drain)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
