"""Runs the side-by-side benchmark: starts each server, drives it with the load generator,
samples the server's CPU and memory from /proc, stops everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .loadgen import procstats
from .netns import CLIENT_ADDRESS, SERVER_ADDRESS, Netns
from .systems import System

SERVER_CORE, GENERATOR_CORE = "0", "1"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Options:
    """How long and how hard each run is."""

    warmup: float = 3.0
    duration: float = 10.0
    settle_limit: float = 20.0  # most seconds the generator waits for the server to catch up
    connect_timeout: float = 60.0
    full: int = 2
    probes: int = 4
    pin: bool = True
    log: Any = sys.stderr
    workdir: Path = Path("/tmp")


@dataclass
class Placement:
    """Where servers and the generator run: the bench namespace, or plain loopback."""

    netns: Netns | None
    server_address: str = SERVER_ADDRESS
    client_address: str = CLIENT_ADDRESS

    def prefix(self, core: str, pin: bool) -> list[str]:
        out = self.netns.prefix() if self.netns else []
        if pin and (os.cpu_count() or 1) > 1:
            out += ["taskset", "-c", core]
        return out


def machine_busy() -> tuple[float, float, float]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat.

    Steal is time this VM's CPUs wanted to run but the host ran something else: a noisy host
    slows every process here without showing as load on the machine itself.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0
    return sum(fields) - idle, sum(fields), steal


@dataclass
class Proc:
    """A process the bench started; only these are ever signalled."""

    proc: asyncio.subprocess.Process
    name: str
    log_path: Path | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.returncode is None

    async def stop(self, grace: float = 5.0) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    def log_tail(self, n: int = 8) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def _open_log(path: Path | None) -> Any:
    return open(path, "ab") if path else asyncio.subprocess.DEVNULL


async def spawn(
    argv: Sequence[str],
    name: str,
    env: dict[str, str],
    log_path: Path | None,
    stdout_pipe: bool = False,
) -> Proc:
    log = _open_log(log_path)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # a ^C of the bench reaches only the bench; it stops these
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    return Proc(proc, name, log_path)


async def run_point(
    system: System,
    subscribers: int,
    rep: int,
    where: Placement,
    opts: Options,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """One run: fresh server, N subscribers, one measurement window."""
    record: dict[str, Any] = {
        "system": system.name,
        "subscribers": subscribers,
        "rep": rep,
        "status": "ok",
        "started_at": time.time(),
    }
    workdir = opts.workdir / f"{system.name}-{subscribers}-{rep}-{int(time.time() * 1000)}"
    workdir.mkdir(parents=True, exist_ok=True)
    server: Proc | None = None
    gen: Proc | None = None
    try:
        argv, env = system.server_command(where.server_address, workdir)
        server = await spawn(
            where.prefix(SERVER_CORE, opts.pin) + argv, system.name, env, workdir / "server.log"
        )
        await asyncio.sleep(0.5)
        if not server.alive():
            record.update(
                status="server_failed", error=f"{system.label} exited at start: {server.log_tail()}"
            )
            return record
        gen_argv = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--system",
            system.name,
            "--url",
            system.url(where.server_address),
            "--ice-address",
            where.client_address,
            "--subscribers",
            str(subscribers),
            "--full",
            str(opts.full),
            "--probes",
            str(opts.probes),
            "--warmup",
            str(opts.warmup),
            "--duration",
            str(opts.duration),
            "--settle-limit",
            str(opts.settle_limit),
            "--connect-timeout",
            str(opts.connect_timeout),
            *extra,
        ]
        gen = await spawn(
            where.prefix(GENERATOR_CORE, opts.pin) + gen_argv,
            "loadgen",
            {"PYTHONPATH": str(ROOT)},
            workdir / "loadgen.log",
            stdout_pipe=True,
        )
        deadline = (
            time.monotonic()
            + 2 * opts.connect_timeout
            + subscribers * 2.0
            + opts.warmup
            + opts.settle_limit
            + opts.duration
            + 60
        )
        marks: dict[str, Any] = {}
        assert gen.proc.stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                record.update(status="timeout", error="load generator did not finish in time")
                break
            try:
                line = await asyncio.wait_for(gen.proc.stdout.readline(), left)
            except TimeoutError:
                continue
            if not line:
                if "result" not in marks and record["status"] == "ok":
                    record.update(
                        status="error",
                        error="load generator ended without a result: " + gen.log_tail(),
                    )
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.pop("event", "")
            now = time.monotonic()
            if kind == "published":
                marks["rss_base"] = procstats.rss_bytes(server.pid)
            elif kind == "connected":
                record["connect_seconds"] = event.get("seconds")
            elif kind == "measure_start":
                marks.update(
                    cpu0=procstats.cpu_seconds(server.pid),
                    t0=now,
                    drops0=procstats.udp_drops(server.pid),
                    busy0=machine_busy(),
                )
            elif kind == "measure_end":
                marks.update(
                    cpu1=procstats.cpu_seconds(server.pid),
                    t1=now,
                    drops1=procstats.udp_drops(server.pid),
                    busy1=machine_busy(),
                    rss=procstats.rss_bytes(server.pid),
                )
            elif kind == "result":
                record.update(event)
                marks["result"] = True
            elif kind == "error":
                record.update(status="error", error=event.get("message"))
            if not server.alive():
                record.update(
                    status="server_crashed", error=f"{system.label} exited: {server.log_tail()}"
                )
                break
        if "t1" in marks:
            _derive(record, marks, subscribers)
        if record["status"] != "ok" or record.get("failed"):
            # keep the server's last words: the workdir is temporary
            record["server_log_tail"] = server.log_tail(30)[-4000:]
        return record
    except Exception as exc:  # any failure is a result, and cleanup must run
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
        return record
    finally:
        if gen is not None:
            await gen.stop()
        if server is not None:
            await server.stop()


def _derive(record: dict[str, Any], m: dict[str, Any], subscribers: int) -> None:
    seconds = m["t1"] - m["t0"]
    cpu = m["cpu1"] - m["cpu0"]
    packets = record.get("packets_received") or 0
    jiffies = max(1, m["busy1"][1] - m["busy0"][1])
    busy = (m["busy1"][0] - m["busy0"][0]) / jiffies
    steal = (m["busy1"][2] - m["busy0"][2]) / jiffies
    ncpu = os.cpu_count() or 1
    record.update(
        server_cores=round(cpu / seconds, 4),
        server_us_per_packet=round(cpu * 1e6 / packets, 3) if packets else None,
        packets_per_second=round(packets / seconds, 1),
        packets_per_core_second=round(packets / cpu) if cpu > 0 else None,
        server_cores_per_subscriber=round(cpu / seconds / subscribers, 5),
        server_rss_mb=round(m["rss"] / 2**20, 1),
        server_rss_base_mb=round(m.get("rss_base", 0) / 2**20, 1),
        rss_mb_per_subscriber=round(
            (m["rss"] - m.get("rss_base", m["rss"])) / 2**20 / subscribers, 4
        ),
        server_udp_drops=m["drops1"] - m["drops0"],
        machine_busy_cores=round(busy * ncpu, 3),
        steal_cores=round(steal * ncpu, 3),
        # what neither the server nor the generator used: the other tenants of the machine
        other_load_cores=round(busy * ncpu - cpu / seconds - record.get("generator_cpu", 0), 3),
    )
