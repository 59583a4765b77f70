"""Speaking and dominant-speaker events from RFC 6464 audio levels."""

from typing import Any

from sfu import Producer, Router, SpeakingEvent
from sfu.active_speaker_observer import ActiveSpeakerObserver

from .peers import Publisher, ToneTrack, wait_for


class FakeProducer:
    def __init__(self, name: str) -> None:
        self.id = name


def test_loudest_speaker_becomes_dominant_after_two_intervals() -> None:
    observer = ActiveSpeakerObserver()
    a: Any = FakeProducer("a")
    b: Any = FakeProducer("b")
    dominant: list[Any] = []
    observer.dominant_speaker_changed.connect(dominant.append)
    observer.feed(a, 20)
    observer.tick()
    assert dominant == [a]  # nobody was dominant: the first speaker takes it at once
    observer.feed(a, 40)
    observer.feed(b, 10)
    observer.tick()
    assert dominant == [a]  # b is louder once: not yet
    observer.feed(a, 40)
    observer.feed(b, 10)
    observer.tick()
    assert dominant == [a, b]


def test_silence_stops_speaking() -> None:
    observer = ActiveSpeakerObserver()
    a: Any = FakeProducer("a")
    events: list[SpeakingEvent] = []
    observer.speaking_changed.connect(events.append)
    observer.feed(a, 10)
    observer.tick()
    observer.feed(a, 127)
    observer.tick()
    assert [(e.speaking, e.level_dbov) for e in events] == [(True, -10.0), (False, -127.0)]


async def test_a_loud_publisher_is_reported_speaking_and_a_paused_one_is_not() -> None:
    router = Router()
    loud, quiet = Publisher(router, "loud"), Publisher(router, "quiet")
    speaking: list[tuple[str, bool]] = []
    dominant: list[Producer | None] = []
    router.active_speaker.speaking_changed.connect(
        lambda e: speaking.append((e.producer.peer_id, e.speaking))
    )
    router.active_speaker.dominant_speaker_changed.connect(dominant.append)
    try:
        await loud.publish(ToneTrack(0.5))
        await quiet.publish(ToneTrack(0.0))
        await wait_for(lambda: ("loud", True) in speaking, 5, "the loud publisher speaking")
        assert dominant and dominant[-1] is loud.producers[0]
        assert all(peer == "loud" for peer, _ in speaking)
        loud.producers[0].pause()  # the floor is taken away: not speaking any more
        assert speaking[-1] == ("loud", False)
        assert dominant[-1] is None
    finally:
        await loud.close()
        await quiet.close()
        await router.close()
