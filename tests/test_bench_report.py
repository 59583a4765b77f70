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
    pair = marginal["two_smallest"]
    assert (pair["from"], pair["to"]) == (1, 10)
    # relay: 0.362 more cores for 10 x 5/30 - 1 = 0.667 more 30-fps subscribers
    assert pair["relay"] == pytest.approx(0.362 / (10 * 5 / 30 - 1))
    assert pair["madoguchi"] == pytest.approx(0.056 / 9)
    # with two points the fitted slope is the same line
    assert marginal["relay"] == pytest.approx(pair["relay"])
    assert marginal["ratio"] == pytest.approx(marginal["relay"] / marginal["madoguchi"])


def test_the_slope_is_fitted_through_every_run_of_every_load_held() -> None:
    # Madoguchi costs 0.030 cores plus 0.0015 per subscriber; the small loads are noisy
    # (as measured: 0.027-0.042 at one subscriber) and a load it did not hold is left out
    runs = [
        run("madoguchi", n, 0.030 + 0.0015 * n + noise, 30.0)
        for n, noise in (
            (1, 0.012),
            (1, -0.003),
            (10, -0.004),
            (10, 0.0),
            (100, 0.0),
            (100, 0.0),
            (200, 0.0),
            (200, 0.0),
        )
    ]
    lossy = run("madoguchi", 350, 0.9, 30.0) | {"loss": 0.1}
    runs += [lossy, run("relay", 1, 0.26, 30.0), run("relay", 10, 2.06, 30.0)]
    marginal = summarize({"runs": runs})["marginal"]
    assert marginal["madoguchi_loads"] == [1, 10, 100, 200]
    assert marginal["relay_loads"] == [1, 10]
    assert marginal["madoguchi"] == pytest.approx(0.0015, rel=0.02)
    assert marginal["relay"] == pytest.approx(0.2)
    assert marginal["ratio"] == pytest.approx(0.2 / marginal["madoguchi"])
    # the two smallest loads alone, medians: (0.043 - 0.036) / 9
    assert marginal["two_smallest"]["madoguchi"] == pytest.approx(0.007 / 9)


def test_a_decoder_catching_up_above_30_fps_does_not_count_as_more_subscribers() -> None:
    runs = [
        run("madoguchi", 10, 0.05, 30.0),
        run("madoguchi", 100, 0.14, 36.0),
        run("relay", 1, 0.26, 30.0),
        run("relay", 10, 2.06, 30.0),
    ]
    marginal = summarize({"runs": runs})["marginal"]
    assert marginal["madoguchi"] == pytest.approx(0.09 / 90)


def test_the_meetings_table_shows_a_load_that_ran_nothing_and_rows_of_older_runs() -> None:
    from bench.report_doc import _meetings

    held = {"rooms": 18, "ok": 3, "server_cores": 0.964, "us_per_packet": 11.1, "loss_pct": 0.0}
    held |= {"generator_drops": 0, "generator_cpu": 0.84, "generator_unsent": 0, "min_fps": 30.0}
    older = {k: v for k, v in held.items() if k not in ("generator_unsent", "min_fps")}
    rows = [held | {"streams": "1080 / 1080"}, older | {"rooms": 10, "streams": "600 / 600"}]
    rows.append({"rooms": 20, "ok": 0})  # every run of the load failed: no figures at all
    meet = {"rows": rows, "capacity": 18, "limit": "runs failed at 20: timeout", "runs": []}
    lines = _meetings({"scenarios": {"meetings": meet}})
    assert "| 18 | 3 | 0.964 | 11.1 | 0.0 | 30.0 | 0.84 | 0 / 0 | 1080 / 1080 |" in lines
    assert "| 10 | 3 | 0.964 | 11.1 | 0.0 | – | 0.84 | 0 / – | 600 / 600 |" in lines
    assert "| 20 | 0 | – | – | – | – | – | – | – |" in lines
    assert any("**18** (runs failed at 20: timeout)" in line for line in lines)
