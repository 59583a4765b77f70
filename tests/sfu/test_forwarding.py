"""Forwarding between real aiortc peers on 127.0.0.1."""

import pytest

from sfu import Router, producer

from .peers import Publisher, Subscriber, SyntheticVideoTrack, ToneTrack, wait_for


@pytest.mark.parametrize("group", [producer.FANOUT_GROUP, 2])
async def test_vp8_opus_publisher_reaches_three_subscribers_that_decode(
    group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with groups of 2, the fan-out protects and sends the three copies in two batches
    monkeypatch.setattr(producer, "FANOUT_GROUP", group)
    router = Router()
    publisher = Publisher(router, "alice")
    subscribers = [Subscriber(router, f"viewer{i}") for i in range(3)]
    try:
        await publisher.publish(SyntheticVideoTrack(), ToneTrack())
        assert {p.mime_type for p in publisher.producers} == {"video/vp8", "audio/opus"}
        for subscriber in subscribers:
            await subscriber.subscribe(*publisher.producers)
        await wait_for(
            lambda: all(s.total("video") >= 10 and s.total("audio") >= 10 for s in subscribers),
            10,
            "3 subscribers to decode 10 video frames and 10 audio frames each",
        )
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await publisher.close()
        await router.close()
