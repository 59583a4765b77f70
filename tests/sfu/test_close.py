"""close() is idempotent, cascades, and leaves nothing running."""

import asyncio
import os

import pytest

from sfu import ClosedError, Router

from .peers import Publisher, Subscriber, SyntheticVideoTrack, ToneTrack, wait_for


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_router_close_cascades_and_leaves_no_task() -> None:
    fds = _open_fds()
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    await publisher.publish(SyntheticVideoTrack(), ToneTrack())
    consumers = await viewer.subscribe(*publisher.producers)
    await wait_for(lambda: viewer.total("video") >= 5, 10, "first frames")
    producers = list(publisher.producers)
    closed = []
    consumers[0].closed_signal.connect(closed.append)

    await router.close()
    await router.close()  # idempotent
    assert all(p.closed for p in producers) and all(c.closed for c in consumers)
    assert closed == [consumers[0]]
    assert not router.transports and not router.producers
    with pytest.raises(ClosedError):
        await router.create_transport("late")
    with pytest.raises(ClosedError):
        producers[0].pause()

    await viewer.close()
    await publisher.close()
    await asyncio.sleep(0.1)  # let cancelled callbacks run
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert left == []
    assert _open_fds() <= fds  # every media socket closed


async def test_closing_a_producer_closes_its_consumers_everywhere() -> None:
    router = Router()
    publisher = Publisher(router, "pub")
    viewers = [Subscriber(router, "a"), Subscriber(router, "b")]
    try:
        await publisher.publish(SyntheticVideoTrack())
        for viewer in viewers:
            await viewer.subscribe(*publisher.producers)
        producer = publisher.producers[0]
        needed = []
        for viewer in viewers:
            assert viewer.transport is not None
            viewer.transport.negotiation_needed.connect(needed.append)
        await producer.close()
        await producer.close()
        assert all(not v.transport.consumers for v in viewers if v.transport)
        assert len(needed) == 2  # each viewer's m-line goes inactive at the next offer
        assert producer.id not in router.producers
    finally:
        for peer in [*viewers, publisher]:
            await peer.close()
        await router.close()
