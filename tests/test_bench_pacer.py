"""The load generator's publisher paces video as browsers do, and its delay probes are spread.

Without pacing, a keyframe reaches the server as one burst and the delay figures measure the
burst, not the server; with probes only among the first viewers, they would see only the
first copies of each packet.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from bench.floor import VIDEO_SSRC, timeline
from bench.loadgen.peers import PACE_FACTOR, Pacer, probe_positions

BITRATE = 900_000
PACKET = 1_200


def test_a_keyframe_burst_leaves_at_the_pacing_rate() -> None:
    async def burst(pacer: Pacer, count: int) -> list[float]:
        times = []
        for _ in range(count):
            await pacer.wait(PACKET)
            times.append(time.monotonic())
        return times

    async def scenario() -> tuple[list[float], list[float]]:
        pacer = Pacer(BITRATE)
        keyframe = await burst(pacer, 20)
        await asyncio.sleep(0.2)  # the queue has drained: the next packet leaves at once
        start = time.monotonic()
        after = await burst(pacer, 1)
        return keyframe, [after[0] - start]

    keyframe, after = asyncio.run(scenario())
    spread = 19 * PACKET / (PACE_FACTOR * BITRATE / 8)  # 81 ms for 20 packets
    assert keyframe[-1] - keyframe[0] >= spread - 0.001
    assert after[0] < 0.001


def test_delay_probes_are_spread_over_the_join_order() -> None:
    assert probe_positions(2, 100, 4) == {2, 34, 67, 99}
    assert probe_positions(2, 5, 4) == {2, 3, 4}
    assert probe_positions(2, 3, 4) == {2}
    assert probe_positions(2, 2, 4) == set()
    assert probe_positions(0, 10, 0) == set()


def test_the_floor_replays_video_at_the_publishers_pace() -> None:
    # the floor's delay is compared with the servers': its video must not arrive in bursts
    rate = PACE_FACTOR * BITRATE / 8
    video = [(at, len(payload)) for at, ssrc, payload in timeline() if ssrc == VIDEO_SSRC]
    assert len(video) > 300
    gaps = [b[0] - a[0] - a[1] / rate for a, b in itertools.pairwise(video)]
    assert min(gaps) > -1e-9  # never before the previous packet's budget is spent
    assert sum(1 for g in gaps if g < 1e-9) > len(video) // 3  # keyframes leave back to back
