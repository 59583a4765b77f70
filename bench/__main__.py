"""Side-by-side benchmark: Madoguchi vs Janus VideoRoom vs aiortc MediaRelay.

    python -m bench --quick          # small version of everything, < 2 minutes (the test suite)
    python -m bench                  # the full run; writes bench/results/ and docs/benchmarks.md

Every server and generator process is started by the bench, pinned (server on core 0,
generator on core 1), and stopped by it; the network namespace it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .floor import run_floor
from .join import measure_join
from .loadgen.media import load_clip
from .madoguchi import MadoguchiSystem
from .netns import Netns, NetnsError
from .runner import Options, Placement, run_point
from .systems import DirectSystem, JanusSystem, RelaySystem, System

# the loads, and 500: on a faster machine Madoguchi held 350 on 0.38 cores, so 350
# no longer finds its capacity
FULL_SUBSCRIBERS = [1, 10, 50, 100, 200, 300, 350, 500]
QUICK_SUBSCRIBERS = [3]
FULL_ROOMS, QUICK_ROOMS = [1, 4, 8, 12, 16, 18, 20, 22], [1]
PARTIES = 6
LOSS_LIMIT, MIN_FPS = report.LOSS_LIMIT, report.MIN_FPS
ROOT = Path(__file__).resolve().parent.parent


def all_systems(madoguchi_commit: str | None = None) -> list[System]:
    return [MadoguchiSystem(madoguchi_commit), JanusSystem(), RelaySystem()]


def collapsed(runs: list[dict[str, Any]], subscribers: int) -> str | None:
    """Why a system should not be tried with more subscribers, or None if it held."""
    if not runs:
        return None
    bad = [r for r in runs if r["status"] != "ok"]
    if len(bad) * 2 > len(runs):
        return f"{bad[0]['status']}: {bad[0].get('error', '')}"[:300]
    ok = [r for r in runs if r["status"] == "ok"]
    losses = sorted(r["loss"] if r.get("loss") is not None else 1.0 for r in ok)
    loss = losses[len(losses) // 2]
    fps = sorted(min(r.get("full_fps") or [0.0]) for r in ok)[len(ok) // 2]
    failed = sorted(r.get("failed", 0) for r in ok)[len(ok) // 2]
    if loss > 0.05:
        return f"loss {loss:.1%} at {subscribers} subscribers"
    if fps < 15:
        return f"full subscribers decode {fps:.0f} fps at {subscribers} subscribers"
    if failed > subscribers * 0.1:
        return f"{failed} of {subscribers} subscribers never connected"
    return None


async def sweep(
    systems: list[System],
    points: list[int],
    reps: int,
    where: Placement,
    opts: Options,
    say: Any,
    stop: bool = True,
    floor: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    runs: list[dict[str, Any]] = []
    stopped: dict[str, str] = {}
    for n in points:
        active = [s for s in systems if s.name not in stopped]
        if not active:
            break
        for rep in range(reps):
            # interleave: each repetition starts with another system; the floor takes its turn
            turns: list[System | None] = [*active, None] if floor else list(active)
            order = turns[rep % len(turns) :] + turns[: rep % len(turns)]
            for system in order:
                if system is None:
                    record = await run_floor(n, rep, where, opts)
                else:
                    record = await run_point(system, n, rep, where, opts)
                runs.append(record)
                say(report.one_line(record), record)
        for system in active if stop else []:
            why = collapsed(
                [r for r in runs if r["system"] == system.name and r["subscribers"] == n], n
            )
            if why is not None:
                stopped[system.name] = why
                say(f"  {system.label}: stops here ({why})")
    return runs, stopped


async def delay_baseline(
    args: argparse.Namespace, where: Placement, opts: Options, say: Any
) -> dict[str, Any]:
    """Delay with no server: publisher -> subscriber straight, same generator, same cores."""
    runs = []
    for rep in range(args.reps):
        rec = await run_point(
            DirectSystem(), 1, rep, where, opts, extra=["--full", "0", "--probes", "1"]
        )
        say("baseline " + report.one_line(rec))
        runs.append(rec)
    ok = [r for r in runs if r["status"] == "ok" and r.get("delay_ms_p50") is not None]
    if not ok:
        return {"skipped": f"no baseline run succeeded: {runs[0].get('error', '')}"[:300]}
    return {
        "delay_ms_p50": round(_median(ok, "delay_ms_p50"), 3),
        "delay_ms_p99": round(_median(ok, "delay_ms_p99"), 3),
        "runs": len(ok),
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r.get(key) or 0 for r in runs))


async def meetings(
    system: System, counts: list[int], reps: int, where: Placement, opts: Options, say: Any
) -> dict[str, Any]:
    """Concurrent 6-party meetings, growing until one is not held (Madoguchi only).

    Held, as a hearing's viewers are: loss under 0.5 %, every party connected, the decoding
    parties at 25 fps or more; and the server caught up (the run settled: a server that queues
    what it cannot send loses nothing, yet delivers seconds late).
    """
    rows, runs = [], []
    capacity, limit = 0, ""
    for k in counts:
        recs = []
        for rep in range(reps):
            rec = await run_point(
                system,
                k * PARTIES,
                rep,
                where,
                opts,
                extra=["--rooms", str(k), "--parties", str(PARTIES)],
            )
            rec["rooms"] = k
            say("meetings " + report.one_line(rec), rec)
            recs.append(rec)
        runs += recs
        ok = [r for r in recs if r["status"] == "ok" and r.get("loss") is not None]
        row = {"rooms": k, "ok": len(ok)}
        if ok:
            expected_streams = k * PARTIES * (PARTIES - 1) * 2
            row.update(
                server_cores=round(_median(ok, "server_cores"), 3),
                us_per_packet=round(_median(ok, "server_us_per_packet"), 1),
                loss_pct=round(_median(ok, "loss") * 100, 3),
                generator_drops=int(_median(ok, "generator_udp_drops")),
                generator_cpu=round(_median(ok, "generator_cpu"), 2),
                generator_unsent=int(_median(ok, "generator_unsent")),
                min_fps=float(statistics.median(min(r["full_fps"] or [0]) for r in ok)),
                settled=all(r.get("settled", True) for r in ok),
                streams=f"{int(_median(ok, 'streams_receiving'))} / {expected_streams}",
            )
        rows.append(row)
        if not ok:
            limit = f"runs failed at {k}: {recs[0].get('error', '')}"[:300]
            break
        if not row["settled"] or row["min_fps"] < MIN_FPS:
            # lossless, but late: the server queued what it could not send in time
            limit = (
                f"at {k} meetings the server fell behind: decoding parties at "
                f"{row['min_fps']} fps, delay p50 {_median(ok, 'delay_ms_p50'):.0f} ms"
            )
            break
        if row["loss_pct"] >= LOSS_LIMIT * 100 or _median(ok, "failed") > 0:
            limit = f"{row['loss_pct']} % loss at {k} meetings"
            if (
                row["generator_drops"] > 0
                or row["generator_unsent"] > 0
                or row["generator_cpu"] > 0.9
            ):
                limit += " (the load generator was saturated: its socket drops or CPU)"
            break
        capacity = k
        if row["generator_cpu"] > 0.9:
            limit = f"stopped at {k}: the load generator's core is saturated"
            break
    return {"rows": rows, "capacity": capacity, "limit": limit, "runs": runs}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    partial = args.out.with_suffix(".partial.json")
    kept: list[dict[str, Any]] = []

    def say(text: str, record: dict[str, Any] | None = None) -> None:
        print(text, flush=True)
        if record is not None:
            # an interrupted run keeps what it measured
            kept.append(record)
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({"meta": results["meta"], "runs": kept}, indent=1))

    opts = Options(
        warmup=args.warmup,
        duration=args.duration,
        connect_timeout=args.connect_timeout,
        pin=not args.no_pin,
    )
    points = [int(v) for v in args.subscribers.split(",") if v.strip()]
    wanted = set(args.systems.split(","))
    results: dict[str, Any] = {"meta": report.machine_meta(args), "skipped": {}, "runs": []}
    results["meta"]["settle_limit_s"] = opts.settle_limit
    clip = load_clip()  # encoded on this machine the first time: its rates go with the figures
    results["meta"]["clip"] = {
        "video_kbps": round(clip.video_kbps),
        "audio_kbps": round(clip.audio_kbps),
    }
    netns_reason = "asked for (--loopback)" if args.loopback else Netns.available()
    netns = None
    if netns_reason is None:
        netns = Netns()
        try:
            netns.create()
        except NetnsError as exc:
            netns_reason, netns = str(exc), None
    where = Placement(netns) if netns else Placement(None, "127.0.0.1", "127.0.0.1")
    results["meta"]["placement"] = (
        f"network namespace {netns.name}" if netns else f"plain loopback ({netns_reason})"
    )
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as tmp:
        opts.workdir = Path(tmp)
        all_systems_started = all_systems(args.madoguchi_commit)
        try:
            systems: list[System] = []
            for system in all_systems_started:
                if system.name not in wanted:
                    continue
                reason = system.prepare(install=not args.no_install)
                if reason is None and system.name == "janus" and netns is None:
                    reason = f"janus needs the bench's network namespace ({netns_reason})"
                if reason is not None:
                    results["skipped"][system.name] = f"skipped: {reason}"
                    say(f"{system.label}: skipped: {reason}")
                else:
                    systems.append(system)
                    results["meta"].setdefault("versions", {})[system.name] = system.version()
            runs, stopped = await sweep(
                systems, points, args.reps, where, opts, say, stop=not args.quick
            )
            results["runs"], results["stopped"] = runs, stopped
            madoguchi = next((s for s in systems if s.name == "madoguchi"), None)
            scenarios: dict[str, Any] = {
                "delay_baseline": await delay_baseline(args, where, opts, say)
            }
            if madoguchi is None:
                scenarios["meetings"] = scenarios["join"] = {"skipped": "Madoguchi not run"}
            else:
                rooms = [int(v) for v in args.rooms.split(",") if v.strip() and int(v) > 0]
                scenarios["meetings"] = (
                    await meetings(madoguchi, rooms, args.reps, where, opts, say)
                    if rooms
                    else {"skipped": "not asked for (--rooms 0)"}
                )
                scenarios["join"] = (
                    await measure_join(madoguchi, args.joins, where, opts, say)
                    if args.joins
                    else {"skipped": "not asked for (--joins 0)"}
                )
            results["scenarios"] = scenarios
            results["summary"] = report.summarize(results)
        finally:
            for system in all_systems_started:
                cleanup = getattr(system, "cleanup", None)
                if cleanup is not None:
                    cleanup()
            if netns is not None:
                netns.delete()
    results["meta"]["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small version of everything (< 2 min)")
    p.add_argument("--systems", default="madoguchi,janus,relay")
    p.add_argument("--subscribers", default=None, help="comma-separated subscriber counts")
    p.add_argument("--rooms", default=None, help="comma-separated counts of 6-party meetings")
    p.add_argument("--joins", type=int, default=None, help="browser joins to time")
    p.add_argument("--reps", type=int, default=None, help="repetitions of each point (>= 3)")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds measured per run")
    p.add_argument("--connect-timeout", type=float, default=None)
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    p.add_argument(
        "--madoguchi-commit",
        default=None,
        help="run this commit's server (git archive) instead of the working tree",
    )
    p.add_argument("--no-install", action="store_true", help="never apt-get install janus")
    p.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    p.add_argument(
        "--loopback",
        action="store_true",
        help="run on 127.0.0.1 without the bench's namespace (Janus cannot run there)",
    )
    p.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "subscribers": ",".join(map(str, QUICK_SUBSCRIBERS if quick else FULL_SUBSCRIBERS)),
        "reps": 1 if quick else 3,
        "rooms": ",".join(map(str, QUICK_ROOMS if quick else FULL_ROOMS)),
        "joins": 2 if quick else 10,
        "warmup": 1.0 if quick else 3.0,
        "duration": 2.5 if quick else 10.0,
        "connect_timeout": 20.0 if quick else 60.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = (
            Path(tempfile.gettempdir()) / "madoguchi-bench-quick.json"
            if quick
            else ROOT / "bench" / "results" / "side-by-side.json"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loop = asyncio.new_event_loop()
    task = loop.create_task(main_async(args))
    for sig in (signal.SIGTERM, signal.SIGINT):
        # stop cleanly: the runner's finally blocks stop every process and the namespace
        loop.add_signal_handler(sig, task.cancel)
    try:
        results = loop.run_until_complete(task)
    except asyncio.CancelledError:
        print("interrupted; every process the bench started was stopped", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(report.text_summary(results))
    print(f"results: {args.out}")
    if not args.quick and not args.no_docs:
        report.write_docs(results, ROOT / "docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
