"""Forwarding benchmark: `python -m bench.forwarding --subscribers N --seconds S --json`.

Runs the SFU (bench/forwarding_sfu.py) and the load generator (bench/forwarding_load.py) as two
processes pinned to separate cores, then prints one JSON object (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


def run_once(subscribers: int, seconds: float, warmup: float) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    sfu_cpu, load_cpu = (cores[0], cores[1]) if len(cores) > 1 else (cores[0], cores[0])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sfu.sock")
        sfu = subprocess.Popen(
            [sys.executable, "-m", "bench.forwarding_sfu", "--socket", path, "--cpu", str(sfu_cpu)]
        )
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(path):
                if time.monotonic() > deadline or sfu.poll() is not None:
                    raise RuntimeError("the SFU process did not start")
                time.sleep(0.05)
            load = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.forwarding_load",
                    "--socket",
                    path,
                    "--cpu",
                    str(load_cpu),
                    "--subscribers",
                    str(subscribers),
                    "--seconds",
                    str(seconds),
                    "--warmup",
                    str(warmup),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if load.returncode != 0:
                raise RuntimeError(f"load generator failed:\n{load.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
            sfu.wait(timeout=20)
        finally:
            if sfu.poll() is None:
                sfu.kill()
                sfu.wait()
    result["sfu_cpu"], result["load_cpu"] = sfu_cpu, load_cpu
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run as is; several: the median of each figure, with every run kept under "runs"."""
    if len(runs) == 1:
        return runs[0]
    result: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(value, int | float) and all(isinstance(v, int | float) for v in values):
            result[key] = statistics.median(values)
            result[f"{key}_range"] = [min(values), max(values)]
        else:
            result[key] = value
    result["runs"] = runs
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    runs = [run_once(args.subscribers, args.seconds, args.warmup) for _ in range(args.repeat)]
    result = summarise(runs)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
