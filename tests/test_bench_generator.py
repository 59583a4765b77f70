"""The load generator's light subscriber, for real: a replaying publisher straight to it.

The light subscriber reads its socket itself once DTLS is up (bench/srtp_tap.py) and times
arrivals by the kernel's receive timestamp; if either broke, the side-by-side figures would
silently count nothing or time the generator instead of the server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aioice.ice
import pytest

from bench.loadgen.media import load_clip
from bench.loadgen.party_media import PartyMedia
from bench.loadgen.peers import LatencyProbe, Publisher, Subscriber, window

ROOT = Path(__file__).resolve().parent.parent


def test_a_tapped_light_subscriber_counts_every_packet_and_times_it_by_the_kernel() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--system",
            "direct",
            "--url",
            "none",
            "--ice-address",
            "127.0.0.1",
            "--subscribers",
            "1",
            "--full",
            "0",
            "--probes",
            "1",
            "--warmup",
            "1",
            "--duration",
            "2",
            "--connect-timeout",
            "30",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = next(e for e in events if e["event"] == "result")
    assert result["connected"] == 1 and result["failed"] == 0
    assert result["packets_received"] > 100 and result["streams_receiving"] == 2  # audio + video
    assert result["generator_decrypt_errors"] == 0
    # the sender reports (aiortc sends one per stream at most 1.5 s apart) are taken at the
    # socket too, authenticated, and not handed to aiortc
    assert result["generator_rtcp_taken"] >= 2
    # ... read by the generator's one epoll set, not by asyncio's transport
    assert result["generator_sockets_read_directly"] == 1
    assert result["delay_samples"] > 100
    assert result["delay_kernel_stamped"] == result["delay_samples"]
    # the window opened after one second in which every probe packet arrived in time
    assert result["settled"] is True and 1.0 <= result["settle_seconds"] < 3


def test_a_full_meeting_party_decodes_one_video_and_counts_the_rest_at_its_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # only the loopback address, for this test alone (aioice never gathers it by itself)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])

    async def scenario() -> tuple[Subscriber, float, int]:
        publisher = Publisher(load_clip())
        party = Subscriber(full=True, decode_videos=1)
        try:
            await publisher.accept_answer(await party.answer(await publisher.offer()))
            await asyncio.wait_for(party.connected.wait(), 30)
            await asyncio.sleep(3)  # a keyframe comes every second: the decoder has started
            before, start = party.counter.snapshot(), time.monotonic()
            await asyncio.sleep(2)
            end = time.monotonic()
            counted = window(before, party.counter.snapshot())[0]
            return party, party.fps(start, end), counted
        finally:
            await party.close()
            await publisher.close()

    party, fps, counted = asyncio.run(scenario())
    assert party.tapped  # the audio is counted at the socket ...
    assert len(party.decoded) == 1  # ... and the one video goes to aiortc's decoder
    assert fps > 20
    assert counted > 2 * 100  # both streams: ~50 audio and ~110 video packets a second


def test_a_meeting_party_sends_the_clip_from_the_shared_timer_as_a_valid_paced_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])

    async def scenario() -> tuple[Subscriber, float, tuple[int, int, int], int, list[int], int]:
        sending = Subscriber(full=False, publish=True)
        watching = Subscriber(full=True, decode_videos=1, probe=LatencyProbe())
        media = PartyMedia(load_clip())
        try:
            await sending.accept_answer(await watching.answer(await sending.offer()))
            await asyncio.wait_for(sending.connected.wait(), 30)
            await asyncio.wait_for(watching.connected.wait(), 30)
            media.add(sending.pc, watching.counter.probe)
            media.start()
            await asyncio.sleep(3)  # a keyframe comes every second: the decoder has started
            before, start = watching.counter.snapshot(), time.monotonic()
            watching.counter.probe.recording = True  # type: ignore[union-attr]
            await asyncio.sleep(2)
            end = time.monotonic()
            counts = window(before, watching.counter.snapshot())
            # what aiortc's sender puts in its sender reports: the packets sent from the timer
            reported = [
                s.packetsSent
                for t in sending.pc.getTransceivers()
                for s in (await t.sender.getStats()).values()
                if s.type == "outbound-rtp"
            ]
            delays = len(watching.counter.probe.delays)  # type: ignore[union-attr]
            return watching, watching.fps(start, end), counts, delays, reported, media.unsent()
        finally:
            await media.stop()
            await watching.close()
            await sending.close()

    watching, fps, (received, expected, gaps), delays, reported, unsent = asyncio.run(scenario())
    assert len(watching.decoded) == 1 and fps > 20  # the party's picture ids and VP8 decode
    assert received > 2 * 100 and received == expected and gaps == 0  # both streams, no holes
    assert delays > 100  # the probe timed the party's sends
    assert len(reported) == 2 and min(reported) > 100 and unsent == 0


def test_every_packet_of_the_clip_is_known_by_its_last_bytes() -> None:
    # the delay probe matches an arrival to its send by the payload's last 12 bytes: a packet
    # repeated within the clip would time a late arrival against a later send
    clip = load_clip()
    for packets in (clip.audio, clip.video):
        assert len({p[-12:] for p in packets}) == len(packets)
