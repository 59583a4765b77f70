"""The load generator's light subscriber, for real: a replaying publisher straight to it.

The light subscriber reads its socket itself once DTLS is up (bench/srtp_tap.py) and times
arrivals by the kernel's receive timestamp; if either broke, the side-by-side figures would
silently count nothing or time the generator instead of the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_tapped_light_subscriber_counts_every_packet_and_times_it_by_the_kernel() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--system",
            "direct",
            "--url",
            "none",
            "--ice-address",
            "127.0.0.1",
            "--subscribers",
            "1",
            "--full",
            "0",
            "--probes",
            "1",
            "--warmup",
            "1",
            "--duration",
            "2",
            "--connect-timeout",
            "30",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = next(e for e in events if e["event"] == "result")
    assert result["connected"] == 1 and result["failed"] == 0
    assert result["packets_received"] > 100 and result["streams_receiving"] == 2  # audio + video
    assert result["generator_decrypt_errors"] == 0
    assert result["delay_samples"] > 100
    assert result["delay_kernel_stamped"] == result["delay_samples"]
