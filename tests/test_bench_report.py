"""The side-by-side figures are computed as docs/benchmarks.md says they are."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import summarize


def run(system: str, n: int, cores: float, fps: float) -> dict[str, Any]:
    return {
        "system": system,
        "subscribers": n,
        "rep": 0,
        "status": "ok",
        "server_cores": cores,
        "server_cores_per_subscriber": cores / n,
        "server_us_per_packet": 1e6 * cores / (n * 160),
        "full_fps": [fps],
        "packets_received": 1000,
        "packets_expected": 1000,
        "loss": 0.0,
        "failed": 0,
    }


def test_a_relay_that_falls_behind_is_compared_at_the_frame_rate_it_delivered() -> None:
    runs = [
        run("madoguchi", 1, 0.064, 30.0),
        run("madoguchi", 10, 0.120, 30.0),
        run("relay", 1, 0.637, 30.0),
        run("relay", 10, 0.999, 5.0),  # saturated: one frame in six
    ]
    summary = summarize({"runs": runs})
    ratios = summary["ratios"]
    assert ratios["relay_over_madoguchi_cores_per_subscriber"][10] == pytest.approx(8.325)
    # scaled to 30 fps the relay's subscriber costs 6x what it cost sending 5 fps
    assert ratios["relay_over_madoguchi_cores_per_subscriber_at_30fps"][10] == pytest.approx(49.95)
    marginal = summary["marginal"]
    assert (marginal["from"], marginal["to"]) == (1, 10)
    # relay: 0.362 more cores for 10 x 5/30 - 1 = 0.667 more 30-fps subscribers
    assert marginal["relay"] == pytest.approx(0.362 / (10 * 5 / 30 - 1))
    assert marginal["madoguchi"] == pytest.approx(0.056 / 9)
    assert marginal["ratio"] == pytest.approx(marginal["relay"] / marginal["madoguchi"])
