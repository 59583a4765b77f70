"""Pause and resume, at producer and consumer level, with real peers."""

import asyncio
import time

from sfu import Router

from .peers import Publisher, Subscriber, SyntheticVideoTrack, ToneTrack, packets_received, wait_for


async def _setup(router: Router, viewers: int) -> tuple[Publisher, list[Subscriber]]:
    publisher = Publisher(router, "speaker")
    await publisher.publish(SyntheticVideoTrack(), ToneTrack())
    subscribers = [Subscriber(router, f"viewer{i}") for i in range(viewers)]
    for subscriber in subscribers:
        await subscriber.subscribe(*publisher.producers)
    await wait_for(lambda: all(s.total("video") >= 5 for s in subscribers), 10, "first frames")
    return publisher, subscribers


async def _close(router: Router, publisher: Publisher, subscribers: list[Subscriber]) -> None:
    for subscriber in subscribers:
        await subscriber.close()
    await publisher.close()
    await router.close()


async def test_paused_producer_sends_nothing_then_a_keyframe_within_1s_of_resume() -> None:
    router = Router()
    publisher, subscribers = await _setup(router, 2)
    try:
        for producer in publisher.producers:
            producer.pause()
        await asyncio.sleep(0.2)  # let packets already in flight land
        before = [await packets_received(s.pc, "video") for s in subscribers]
        before_audio = [await packets_received(s.pc, "audio") for s in subscribers]
        await asyncio.sleep(1.0)
        assert [await packets_received(s.pc, "video") for s in subscribers] == before
        assert [await packets_received(s.pc, "audio") for s in subscribers] == before_audio

        frames = [s.total("video") for s in subscribers]
        resumed_at = time.monotonic()
        for producer in publisher.producers:
            producer.resume()
        await wait_for(
            lambda: all(s.total("video") > n for s, n in zip(subscribers, frames, strict=True)),
            1.0,
            "a decoded picture on every subscriber within 1 s of resume",
        )
        assert time.monotonic() - resumed_at < 1.0
        video = next(p for p in publisher.producers if p.kind == "video")
        # two consumers resuming at once cost the publisher one keyframe request, not two
        assert video.keyframe_requests_sent <= 3
    finally:
        await _close(router, publisher, subscribers)


async def test_paused_consumer_stops_only_its_own_receiver() -> None:
    router = Router()
    publisher, subscribers = await _setup(router, 2)
    try:
        paused, other = subscribers
        video_consumer = next(c for c in paused.transport.consumers.values() if c.kind == "video")
        video_consumer.pause()
        await asyncio.sleep(0.2)
        before = await packets_received(paused.pc, "video")
        other_frames = other.total("video")
        await asyncio.sleep(1.0)
        assert await packets_received(paused.pc, "video") == before
        assert other.total("video") > other_frames + 10

        frames = paused.total("video")
        video_consumer.resume()
        await wait_for(lambda: paused.total("video") > frames, 1.0, "picture after resume")
        # the outgoing stream continued: the decoder saw no sequence jump it had to NACK
        assert video_consumer.nacks_received == 0
    finally:
        await _close(router, publisher, subscribers)


async def test_switching_source_keeps_one_continuous_stream() -> None:
    router = Router()
    alice, bob = Publisher(router, "alice"), Publisher(router, "bob")
    viewer = Subscriber(router, "viewer")
    try:
        await alice.publish(SyntheticVideoTrack())
        await bob.publish(SyntheticVideoTrack())
        (consumer,) = await viewer.subscribe(alice.producers[0])
        await wait_for(lambda: viewer.total("video") >= 10, 10, "alice's video")
        consumer.switch_producer(bob.producers[0])
        assert consumer.producer is bob.producers[0]
        assert not alice.producers[0].consumers
        frames = viewer.total("video")
        await wait_for(lambda: viewer.total("video") >= frames + 10, 3, "bob's video, same track")
        assert len(viewer.frames) == 1  # still one track on the receiving side
        assert consumer.nacks_received == 0  # no sequence gap at the switch
    finally:
        for peer in (viewer, alice, bob):
            await peer.close()
        await router.close()
