"""Offers, answers, late joiners, several publishers, codecs."""

import time

import pytest

from sfu import GlareError, IncompatibleCodecError, NegotiationError, NoUsableCodecError, Router

from .peers import (
    Publisher,
    Subscriber,
    SyntheticVideoTrack,
    ToneTrack,
    client_pc,
    set_local,
    wait_for,
)


async def test_two_publishers_each_subscriber_receives_both() -> None:
    router = Router()
    alice, bob = Publisher(router, "alice"), Publisher(router, "bob")
    viewers = [Subscriber(router, "v1"), Subscriber(router, "v2")]
    try:
        await alice.publish(SyntheticVideoTrack(), ToneTrack())
        await bob.publish(SyntheticVideoTrack(), ToneTrack())
        assert len(router.producers) == 4
        for viewer in viewers:
            await viewer.subscribe(*router.producers.values())
        await wait_for(
            lambda: all(
                len(v.frames) == 4 and all(n >= 5 for n in v.frames.values()) for v in viewers
            ),
            10,
            "every viewer to decode both publishers' audio and video",
        )
        msids = {c.producer.peer_id for v in viewers for c in v.transport.consumers.values()}
        assert msids == {"alice", "bob"}
    finally:
        for peer in [*viewers, alice, bob]:
            await peer.close()
        await router.close()


async def test_late_consumer_gets_a_picture_within_1s() -> None:
    router = Router()
    publisher = Publisher(router, "presenter")
    early, late = Subscriber(router, "early"), Subscriber(router, "late")
    try:
        await publisher.publish(SyntheticVideoTrack())
        await early.subscribe(*publisher.producers)
        await wait_for(lambda: early.total("video") >= 30, 10, "a second of video")
        started = time.monotonic()
        await late.subscribe(*publisher.producers)
        await wait_for(lambda: late.total("video") >= 1, 1.0, "the late joiner's first frame")
        assert time.monotonic() - started < 1.0
    finally:
        for peer in (early, late, publisher):
            await peer.close()
        await router.close()


async def test_sfu_offer_adds_a_consumer_to_a_connected_subscriber() -> None:
    router = Router()
    alice, bob = Publisher(router, "alice"), Publisher(router, "bob")
    viewer = Subscriber(router, "viewer")
    try:
        await alice.publish(SyntheticVideoTrack())
        await viewer.subscribe(*alice.producers)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "alice's video")
        needed = []
        assert viewer.transport is not None
        viewer.transport.negotiation_needed.connect(needed.append)
        await bob.publish(SyntheticVideoTrack())
        await router.consume(bob.producers[0], viewer.transport)
        assert needed == [viewer.transport]
        await viewer.negotiate()
        await wait_for(
            lambda: len(viewer.frames) == 2 and min(viewer.frames.values()) >= 5,
            3,
            "bob's video on the renegotiated connection",
        )
    finally:
        for peer in (viewer, alice, bob):
            await peer.close()
        await router.close()


async def test_h264_publisher_reaches_a_subscriber_that_decodes() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "h264"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack(), video_codec="video/H264")
        assert publisher.producers[0].mime_type == "video/h264"
        await viewer.subscribe(*publisher.producers)
        await wait_for(lambda: viewer.total("video") >= 10, 10, "10 decoded H.264 frames")
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_offer_without_a_forwardable_codec_is_refused_and_changes_nothing() -> None:
    router = Router()
    pc = client_pc()
    try:
        transport = await router.create_transport("pcmu-only")
        transceiver = pc.addTransceiver(ToneTrack(), direction="sendonly")
        caps = [c for c in transceiver.sender.getCapabilities("audio").codecs]
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == "audio/PCMU"])
        await set_local(pc, await pc.createOffer())
        with pytest.raises(NoUsableCodecError, match="PCMU"):
            await transport.handle_offer(pc.localDescription.sdp)
        assert transport.signaling_state == "stable"
        assert not transport.producers
    finally:
        await pc.close()
        await router.close()


async def test_consume_in_a_codec_the_client_lacks_raises_incompatible_codec() -> None:
    router = Router()
    publisher = Publisher(router, "h264")
    try:
        await publisher.publish(SyntheticVideoTrack(), video_codec="video/H264")
        transport = await router.create_transport("vp8-only")
        transport.set_receive_codecs(["video/VP8", "audio/opus"])
        with pytest.raises(IncompatibleCodecError, match="video/h264"):
            await router.consume(publisher.producers[0], transport)
    finally:
        await publisher.close()
        await router.close()


async def test_client_offer_during_an_sfu_offer_is_glare_and_the_sfu_offer_stands() -> None:
    router = Router()
    alice = Publisher(router, "alice")
    pc = client_pc()
    try:
        await alice.publish(SyntheticVideoTrack())
        transport = await router.create_transport("viewer")
        await router.consume(alice.producers[0], transport)
        sfu_offer = await transport.create_offer()
        pc.addTransceiver(ToneTrack(), direction="sendonly")
        await set_local(pc, await pc.createOffer())
        with pytest.raises(GlareError):
            await transport.handle_offer(pc.localDescription.sdp)
        assert transport.signaling_state == "have-local-offer"
        assert "a=sendonly" in sfu_offer
    finally:
        await pc.close()
        await alice.close()
        await router.close()


async def test_answer_without_offer_is_a_negotiation_error() -> None:
    router = Router()
    try:
        transport = await router.create_transport("x")
        with pytest.raises(NegotiationError):
            await transport.handle_answer("v=0\r\n")
        with pytest.raises(NegotiationError):
            await transport.handle_offer("this is not sdp")
    finally:
        await router.close()


async def test_sfu_answer_has_only_the_configured_candidates_and_no_public_stun() -> None:
    router = Router()
    publisher = Publisher(router, "pub")
    try:
        await publisher.publish(ToneTrack())
        assert publisher.transport is not None
        pc = publisher.transport._pc
        gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        assert gatherer._connection.stun_server is None  # iceServers=[]: never Google STUN
        answer = pc.localDescription.sdp
        candidates = [line.split() for line in answer.splitlines() if "a=candidate" in line]
        assert [(c[4], c[7]) for c in candidates] == [("127.0.0.1", "host")]
        assert 40000 <= int(candidates[0][5]) <= 49999
        assert "a=setup:passive" in answer  # the SFU is the DTLS server
        assert "a=group:BUNDLE" in answer
    finally:
        await publisher.close()
        await router.close()
