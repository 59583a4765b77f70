"""`python -m bench --quick` runs the whole side-by-side benchmark small, so it cannot rot.

It asserts the shape of the results, never timings: a loaded CI machine must not fail it.
Janus runs when installed (scripts/install.sh --test installs it); otherwise the results say
`skipped: janus not installed` and the test still passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench_namespaces() -> set[str]:
    """The bench's network namespaces that exist now (another bench may be running)."""
    if shutil.which("ip") is None:
        return set()
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines() if "madoguchi-bench-" in line}


@pytest.mark.timeout(240)
def test_quick_bench_runs_every_system_and_reports_each_point(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    before = bench_namespaces()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-install", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())

    assert {"meta", "runs", "skipped", "summary", "scenarios"} <= results.keys()
    meta = results["meta"]
    assert meta["cores"] >= 1 and meta["cpu_model"] and meta["packages"]["aiortc"]
    ran = {r["system"] for r in results["runs"]}
    for system in ("madoguchi", "janus", "relay"):
        # every system either ran or says why not
        assert system in ran or system in results["skipped"], system
    if shutil.which("janus") is None:
        assert results["skipped"]["janus"].startswith("skipped: janus not installed")
    for run in results["runs"]:
        assert run["status"] in {"ok", "error", "server_failed", "server_crashed", "timeout"}
        if run["status"] == "ok":
            assert run["packets_received"] >= 0 and "server_us_per_packet" in run
            assert "generator_udp_drops" in run and "loss" in run
    assert "meetings" in results["scenarios"] and "join" in results["scenarios"]
    # the bench stops everything it started: no namespace of its own is left behind
    assert bench_namespaces() <= before


def test_quick_bench_reports_a_system_that_fails_to_start(tmp_path: Path) -> None:
    from bench.runner import Options, Placement, run_point

    class Broken:
        name = "relay"
        label = "a server that exits at once"

        def server_command(self, address: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
            return [sys.executable, "-c", "raise SystemExit(3)"], {}

        def url(self, address: str) -> str:
            return f"http://{address}:9"

    import asyncio

    record = asyncio.run(
        run_point(
            Broken(),
            1,
            0,
            Placement(None, "127.0.0.1", "127.0.0.1"),  # type: ignore[arg-type]
            Options(pin=False, workdir=tmp_path),
        )
    )
    assert record["status"] == "server_failed"
