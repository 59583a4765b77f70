"""NACK repair in both directions, sender reports, bandwidth estimates."""

import asyncio
import gc
import itertools
import time
from typing import Any

import pytest
from aiortc.rtp import RtcpPacket, RtcpSdesPacket, RtcpSrPacket, unpack_remb_fci

from sfu import Router
from sfu import router as router_module
from sfu.consumer import REPORTS_MAX_BYTES, SENDER_REPORT, _sdes_chunk, sender_report_compounds
from sfu.producer import REMB_CEILING

from .peers import (
    Publisher,
    Subscriber,
    SyntheticVideoTrack,
    ToneTrack,
    video_flowing,
    wait_for,
)


class DroppingSink:
    """Wraps a transport's sink and drops every `every`-th copy the fan-out sends (resends go
    through send_packet, which this leaves alone)."""

    def __init__(self, sink: Any, every: int) -> None:
        self.sink, self.every, self.count, self.dropped = sink, every, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def _send(self, packet: bytes) -> None:
        self.count += 1
        if self.count % self.every == 0:
            self.dropped += 1
            return  # it never leaves: the receiver must notice the gap
        self.sink._send(packet)


async def test_packets_dropped_towards_a_subscriber_are_recovered_by_nack() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack())
        consumers = await viewer.subscribe(*publisher.producers)
        dropper = DroppingSink(consumers[0]._sink, every=7)
        consumers[0]._sink = dropper
        await wait_for(
            lambda: consumers[0].packets_retransmitted >= 5 and viewer.total("video") >= 30,
            10,
            "NACKed packets to be retransmitted from the cache",
        )
        assert consumers[0].nacks_received > 0
        assert dropper.dropped > 0
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_packets_lost_from_the_publisher_are_nacked_and_repaired() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack())
        producer = publisher.producers[0]
        await viewer.subscribe(producer)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "first frames")
        receiver = producer._transceiver.receiver
        # the producer's packets come straight from the socket (receive_rtp_directly)
        original = receiver._sfu_on_rtp
        state = {"n": 0, "dropped": 0}

        def lossy(packet: Any, arrival_time_ms: int) -> None:
            state["n"] += 1
            if state["n"] % 9 == 0 and state["dropped"] < 20:
                state["dropped"] += 1
                return
            original(packet, arrival_time_ms)

        receiver._sfu_on_rtp = lossy
        await wait_for(lambda: state["dropped"] >= 20, 10, "20 packets dropped")
        await wait_for(lambda: producer.nacks_sent >= 5, 5, "NACKs to the publisher")
        # the publisher's retransmissions fill the gaps the SFU saw
        await wait_for(
            lambda: producer._nacks is not None and not producer._nacks.missing, 5, "repair"
        )
        frames = viewer.total("video")
        await wait_for(lambda: viewer.total("video") >= frames + 15, 5, "video carries on")
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_subscribers_get_sender_reports_and_the_publisher_gets_remb() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack(), ToneTrack())
        rembs: list[Any] = []
        sender = next(t.sender for t in publisher.pc.getTransceivers() if t.kind == "video")
        original = sender._handle_rtcp_packet

        async def spy(packet: Any) -> None:
            if getattr(packet, "fmt", None) == 15:  # PSFB application layer: REMB
                rembs.append(packet)
            await original(packet)

        sender._handle_rtcp_packet = spy
        consumers = await viewer.subscribe(*publisher.producers)
        video = next(c for c in consumers if c.kind == "video")
        await wait_for(lambda: video.remb_bps > 0, 10, "a REMB from the subscriber")
        estimates: set[int] = set()

        def passed_on() -> bool:
            estimates.add(min(video.remb_bps, REMB_CEILING))
            return any(unpack_remb_fci(p.fci)[0] in estimates for p in rembs)

        await wait_for(passed_on, 5, "the SFU to pass the subscriber's estimate to the publisher")
        # aiortc's receiver records each sender report as remote-outbound-rtp stats
        await wait_for(lambda: _remote_outbound(viewer) >= 2, 10, "SRs on both streams")
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


def _remote_outbound(viewer: Subscriber) -> int:
    count = 0
    for transceiver in viewer.pc.getTransceivers():
        stats = transceiver.receiver._RTCRtpReceiver__stats
        count += sum(1 for s in stats.values() if s.type == "remote-outbound-rtp")
    return count


async def test_a_hundred_keyframe_requests_at_once_cost_the_publisher_at_most_two() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack())
        (consumer,) = await viewer.subscribe(*publisher.producers)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "first frames")
        producer = publisher.producers[0]
        await asyncio.sleep(0.6)  # past the limiter's window of the subscriber's own start
        before = producer.keyframe_requests_sent
        for _ in range(100):  # as if 100 viewers joined in the same instant
            consumer.request_keyframe()
        await asyncio.sleep(0.7)
        assert 1 <= producer.keyframe_requests_sent - before <= 2
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_a_consumer_counts_what_it_forwarded_and_stops_counting_while_paused() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(ToneTrack())
        (audio,) = await viewer.subscribe(*publisher.producers)
        producer = audio.producer
        await wait_for(lambda: audio.packets_sent >= 20, 10, "audio forwarded")
        # every packet the producer handed on since the consumer started is counted once
        assert audio.bytes_sent > 0
        audio.pause()
        frozen = (audio.packets_sent, audio.bytes_sent)
        before = producer.forwarded
        await wait_for(lambda: producer.forwarded >= before + 10, 5, "the producer goes on")
        assert (audio.packets_sent, audio.bytes_sent) == frozen  # nothing counted while paused
        audio.resume()
        await wait_for(lambda: audio.packets_sent >= frozen[0] + 10, 5, "counting again")
        assert audio.packets_sent <= frozen[0] + producer.forwarded - before
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_the_nack_cache_holds_nothing_the_garbage_collector_keeps_scanning() -> None:
    # seven seconds of packets per video producer: were they tracked objects, every full
    # collection would walk them all (a pause of every room's packets)
    async with video_flowing() as (publisher, _viewer):
        entries = [e for e in publisher.producers[0]._cache if e is not None]
        assert entries
        gc.collect()
        assert not any(gc.is_tracked(entry) for entry in entries)
        seq = entries[-1][0]
        view = publisher.producers[0].cached(seq)  # what a NACK is answered from
        assert view is not None and view.sequence_number == seq


async def test_the_peers_reports_are_spread_over_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a hearing's peers all reported at once would hold every packet back meanwhile
    monkeypatch.setattr(router_module, "RTCP_INTERVAL", 0.4)
    router = Router()
    publisher = Publisher(router, "pub")
    viewers = [Subscriber(router, f"viewer{i}") for i in range(3)]
    calls: list[tuple[float, str]] = []
    try:
        await publisher.publish(SyntheticVideoTrack())
        for viewer in viewers:
            await viewer.subscribe(*publisher.producers)
        transports = [publisher.transport] + [v.transport for v in viewers]
        for transport in transports:
            assert transport is not None
            send = transport.send_reports

            def recording(send: Any = send, peer: str = transport.peer_id) -> None:
                calls.append((time.monotonic(), peer))
                send()

            monkeypatch.setattr(transport, "send_reports", recording)
        await wait_for(lambda: len(calls) >= 12, 5, "three rounds of reports")
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
        assert min(gaps) >= 0.4 / 4 * 0.9  # one peer at a time, a quarter interval apart
        assert {peer for _, peer in calls[-4:]} == {t.peer_id for t in transports if t}
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.close()
        await router.close()


class RecordingSink:
    """Wraps a transport's sink and keeps the RTCP packets it sends (before protection)."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.rtcp = sink, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def send_rtcp(self, data: bytes) -> bool:
        self.rtcp.append(data)
        return bool(self.sink.send_rtcp(data))


async def test_a_viewers_sender_reports_leave_together_in_one_compound_packet() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack(), ToneTrack())
        consumers = await viewer.subscribe(*publisher.producers)
        assert viewer.transport is not None
        recorder = RecordingSink(viewer.transport.sink)
        viewer.transport.sink = recorder
        await wait_for(lambda: len(recorder.rtcp) >= 2, 10, "two rounds of reports")
        ssrcs = {c._ssrc for c in consumers}
        for data in recorder.rtcp:
            packets = RtcpPacket.parse(data)
            reports = [p for p in packets if isinstance(p, RtcpSrPacket)]
            (sdes,) = [p for p in packets if isinstance(p, RtcpSdesPacket)]
            assert {r.ssrc for r in reports} == ssrcs  # audio and video in the same packet
            assert {c.ssrc for c in sdes.chunks} == ssrcs
            assert all(c.items[0][0] == 1 and c.items[0][1] for c in sdes.chunks)  # CNAMEs
        await wait_for(lambda: _remote_outbound(viewer) >= 2, 10, "aiortc reads both SRs")
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


def test_a_council_members_forty_reports_are_split_into_packets_that_fit() -> None:
    reports = [
        (
            SENDER_REPORT.pack(0x80, 200, 6, ssrc, 1 << 40, ssrc, 10, 1000),
            _sdes_chunk(ssrc, "c" * 36),
        )
        for ssrc in range(1, 41)
    ]
    compounds = sender_report_compounds(reports)
    assert 2 <= len(compounds) <= 4
    seen = []
    for data in compounds:
        assert len(data) <= REPORTS_MAX_BYTES
        packets = RtcpPacket.parse(data)
        assert isinstance(packets[0], RtcpSrPacket)  # a compound packet starts with a report
        srs = [p.ssrc for p in packets if isinstance(p, RtcpSrPacket)]
        (sdes,) = [p for p in packets if isinstance(p, RtcpSdesPacket)]
        assert [c.ssrc for c in sdes.chunks] == srs
        seen += srs
    assert seen == list(range(1, 41))
