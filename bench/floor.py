"""The floor of forwarding, measured in the side-by-side run: protect and send each copy, no SFU.

Any SFU in this placement pays, for every copy it forwards, one SRTP protect (libsrtp, AES-256-
GCM as aiortc peers negotiate) and one UDP send to that subscriber's address (plus the kernel
delivering it on the same machine). This program does exactly that and nothing else: the same
packets (the bench's clip, at its pace: ≈ 110 video and 50 audio packets a second), the same
addresses and cores as the servers, one connected socket and one SRTP session per subscriber,
the header written and the packet protected in place in one buffer for all subscribers, as
Madoguchi's fan-out does. Its CPU per packet is what no server written on these parts can go
under; the report sets it beside Janus.

    python -m bench.floor receive --address A --count N     (generator core: drains N sockets
                                                             until SIGTERM)
    python -m bench.floor send --address A --to B --ports P,... --warmup W --duration D
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import socket
import sys
import time
from typing import Any

import pylibsrtp

from bench.loadgen import procstats
from bench.loadgen.media import AUDIO_PTIME, FPS, VIDEO_BITRATE, load_clip
from bench.loadgen.peers import PACE_FACTOR, milliseconds, percentile, probe_positions
from bench.runner import GENERATOR_CORE, ROOT, SERVER_CORE, Options, Placement, Proc, spawn
from sfu.aiortc_hooks import RTP_HEADER, SRTP_BUFFER, srtp_ffi, srtp_protect

PROBES = 4  # copies timed per packet, spread over the subscribers as the servers' probes are
PAYLOAD = 1100  # bytes of VP8 per RTP packet, about what aiortc's packetiser makes
VIDEO_SSRC, AUDIO_SSRC = 0x1111, 0x2222


def timeline() -> list[tuple[float, int, bytes]]:
    """One loop of the clip as (send time, SSRC, payload), in time order.

    Video is paced as the bench's publisher paces it (loadgen.peers.Pacer: 2.5x the bitrate,
    each packet when the previous one's budget is spent); audio is not.
    """
    clip = load_clip()
    out: list[tuple[float, int, bytes]] = []
    bytes_per_second = PACE_FACTOR * VIDEO_BITRATE / 8
    free_at = 0.0
    for i, frame in enumerate(clip.video):
        for start in range(0, len(frame), PAYLOAD):
            at = max(i / FPS, free_at)
            payload = frame[start : start + PAYLOAD]
            free_at = at + len(payload) / bytes_per_second
            out.append((at, VIDEO_SSRC, payload))
    for i, packet in enumerate(clip.audio):
        out.append((i * AUDIO_PTIME, AUDIO_SSRC, packet))
    out.sort(key=lambda item: item[0])
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def send(args: argparse.Namespace) -> dict[str, object]:
    ports = [int(p) for p in args.ports.split(",")]
    copies, socks = [], []
    for port in ports:
        policy = pylibsrtp.Policy(
            key=os.urandom(44),
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
        )
        session = pylibsrtp.Session(policy)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((args.address, 0))
        sock.connect((args.to, port))
        sock.setblocking(False)
        copies.append((session._srtp[0], sock.send))
        socks.append((session, sock))  # both live until the end
    # the delay each copy adds at these positions, from the packet's due time to just after
    # its send (on loopback the kernel has delivered it by then), as the servers' probes do
    probes = probe_positions(0, len(copies), PROBES)
    copies = [(srtp, send_to, i in probes) for i, (srtp, send_to) in enumerate(copies)]
    delays: list[float] = []
    packets = timeline()
    loop_seconds = packets[-1][0] + 1 / FPS
    buffer = srtp_ffi.new("char[]", SRTP_BUFFER)
    view = srtp_ffi.buffer(buffer)
    len_p = srtp_ffi.new("int *")
    seq = {VIDEO_SSRC: 0, AUDIO_SSRC: 0}
    start = time.monotonic()
    measure_at, stop_at = start + args.warmup, start + args.warmup + args.duration
    cpu0 = t0 = None
    sent = refused = 0
    index = 0
    while True:
        at, ssrc, payload = packets[index % len(packets)]
        due = start + (index // len(packets)) * loop_seconds + at
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            now = due
        if cpu0 is None and now >= measure_at:
            cpu0, t0, sent, refused = cpu_seconds(), time.monotonic(), 0, 0
            delays.clear()
        if now >= stop_at:
            break
        index += 1
        number = seq[ssrc] = (seq[ssrc] + 1) & 0xFFFF
        stamp = int(at * 90_000) & 0xFFFFFFFF
        end = 12 + len(payload)
        for srtp, send_to, probe in copies:
            RTP_HEADER.pack_into(view, 0, 0x80, 96, number, stamp, ssrc)
            view[12:end] = payload
            len_p[0] = end
            if srtp_protect(srtp, buffer, len_p):
                refused += 1
                continue
            try:
                send_to(view[: len_p[0]])
                sent += 1
            except OSError:
                refused += 1
            if probe:
                delays.append(time.monotonic() - due)
    assert cpu0 is not None and t0 is not None
    cpu, seconds = cpu_seconds() - cpu0, time.monotonic() - t0
    return {
        "subscribers": len(ports),
        "seconds": round(seconds, 3),
        "packets_sent": sent,
        "packets_refused": refused,
        "cpu_seconds": round(cpu, 4),
        "delay_samples": len(delays),
        "delay_ms_p50": milliseconds(percentile(delays, 0.5)),
        "delay_ms_p99": milliseconds(percentile(delays, 0.99)),
    }


def receive(args: argparse.Namespace) -> None:
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((args.address, 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
    while True:  # until the bench stops it (SIGTERM)
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                while True:
                    sock.recv(2048)
            except BlockingIOError:
                pass


async def run_floor(subscribers: int, rep: int, where: Placement, opts: Options) -> dict[str, Any]:
    """One floor run beside the servers' runs: same cores, addresses, window and packets."""
    record: dict[str, Any] = {
        "system": "floor",
        "subscribers": subscribers,
        "rep": rep,
        "status": "ok",
        "started_at": time.time(),
    }
    env = {"PYTHONPATH": str(ROOT)}
    module = [sys.executable, "-m", "bench.floor"]
    receiver: Proc | None = None
    sender: Proc | None = None
    try:
        receive_args = ["receive", "--address", where.client_address, "--count", str(subscribers)]
        receiver = await spawn(
            [*where.prefix(GENERATOR_CORE, opts.pin), *module, *receive_args],
            "floor-receiver",
            env,
            None,
            stdout_pipe=True,
        )
        assert receiver.proc.stdout is not None
        line = await asyncio.wait_for(receiver.proc.stdout.readline(), 30)
        ports = json.loads(line)["ports"]
        send_args = ["send", "--address", where.server_address, "--to", where.client_address]
        send_args += ["--ports", ",".join(map(str, ports))]
        send_args += ["--warmup", str(opts.warmup), "--duration", str(opts.duration)]
        sender = await spawn(
            [*where.prefix(SERVER_CORE, opts.pin), *module, *send_args],
            "floor-sender",
            env,
            None,
            stdout_pipe=True,
        )
        assert sender.proc.stdout is not None
        limit = opts.warmup + opts.duration + 60
        out = await asyncio.wait_for(sender.proc.stdout.readline(), limit)
        result = json.loads(out)
        # what the receiving sockets could not take (over warm-up and window): not the floor's
        result["generator_udp_drops"] = procstats.udp_drops(receiver.pid)
        sent, cpu, seconds = result["packets_sent"], result["cpu_seconds"], result["seconds"]
        record.update(
            result,
            packets_received=sent,
            packets_expected=sent + result["packets_refused"],
            loss=result["packets_refused"] / max(1, sent + result["packets_refused"]),
            server_cores=round(cpu / seconds, 4),
            server_us_per_packet=round(cpu * 1e6 / sent, 3) if sent else None,
            packets_per_core_second=round(sent / cpu) if cpu > 0 else None,
            server_cores_per_subscriber=round(cpu / seconds / subscribers, 5),
            failed=0,
        )
    except Exception as exc:  # a failed floor run is reported, the bench goes on
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
    finally:
        for proc in (sender, receiver):
            if proc is not None:
                await proc.stop()
    return record


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.floor")
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("receive")
    r.add_argument("--address", required=True)
    r.add_argument("--count", type=int, required=True)
    s = sub.add_parser("send")
    s.add_argument("--address", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--ports", required=True)
    s.add_argument("--warmup", type=float, default=2)
    s.add_argument("--duration", type=float, default=10)
    args = p.parse_args()
    if args.mode == "receive":
        receive(args)
    else:
        print(json.dumps(send(args)), flush=True)


if __name__ == "__main__":
    main()
