"""The SFU's periodic work runs in media's wake-ups, and without media still runs."""

import asyncio
import time

from sfu import ticker as ticker_module
from sfu.ticker import ticker

from .peers import video_flowing, wait_for


async def test_while_media_flows_the_ticks_ride_on_incoming_packets() -> None:
    async with video_flowing():
        clock = ticker()
        await wait_for(lambda: clock.ticks >= 3, 5, "the router's report ticks")
        ticks, woken = clock.ticks, clock.woken
        await wait_for(lambda: clock.ticks >= ticks + 10, 5, "ten more ticks")
        # a synthetic camera's 30 frames a second come in well inside the grace period: the
        # loop is (nearly) never woken for a tick of its own
        assert clock.woken - woken <= 3


async def test_without_media_a_sleeper_is_woken_and_the_ticker_then_stops() -> None:
    clock = ticker()
    started = time.monotonic()
    await asyncio.wait_for(clock.sleep(0.25), 2)
    assert time.monotonic() - started >= 0.25
    assert clock.woken >= 1
    # nothing left to do: the ticker wakes the loop no more
    assert ticker_module._due[0] == float("inf")


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    clock = ticker()
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("broken report")

    def working() -> None:
        calls.append("working")

    clock.add(failing)
    clock.add(working)
    try:
        await wait_for(lambda: calls.count("working") >= 3, 3, "three ticks")
        assert calls.count("failing") >= 3
    finally:
        clock.discard(failing)
        clock.discard(working)
