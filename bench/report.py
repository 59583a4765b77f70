"""Turns the runs of `python -m bench` into medians, ratios, capacities, and the docs section."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Side by side"
LOSS_LIMIT = 0.005
MIN_FPS = 25  # a load is held only if the decoding subscribers see at least this
SETTLED_DELAY = 0.1  # seconds: a second in which no probe packet took longer has caught up
FPS = 30  # the publisher's frame rate
LABELS = {
    "madoguchi": "Madoguchi",
    "janus": "Janus VideoRoom",
    "relay": "aiortc MediaRelay",
    "floor": "floor (protect + send, no SFU)",
}
METRICS = [
    "server_us_per_packet",
    "packets_per_core_second",
    "loss",
    "loss_net",
    "min_fps",
    "server_rss_mb",
    "rss_mb_per_subscriber",
    "server_cores",
    "server_cores_per_subscriber",
    "viewers_per_core",
    "delay_ms_p50",
    "delay_ms_p99",
    "generator_udp_drops",
    "other_load_cores",
    "failed",
]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
        commit = out.stdout.decode().strip()
        marker = ROOT / ".bench-commit"
        if not commit and marker.exists():
            commit = marker.read_text().strip()
        return commit or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine_meta(args: Any) -> dict[str, Any]:
    versions = {}
    for pkg in ("aiortc", "aioice", "pylibsrtp", "av", "aiohttp"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "missing"
    return {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": _git_commit(),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "quick": bool(args.quick),
        "reps": args.reps,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def one_line(r: dict[str, Any]) -> str:
    head = f"{LABELS.get(r['system'], r['system']):18} N={r['subscribers']:<4} rep {r['rep']}"
    if r["status"] != "ok" or r.get("server_us_per_packet") is None:
        return f"{head}  {r['status'].upper()}: {str(r.get('error', ''))[:200]}"
    loss = r.get("loss")
    return (
        f"{head}  {_fmt(r['server_us_per_packet'])} µs/pkt  "
        f"{_fmt(r['server_cores'], 2)} cores  "
        f"loss {_fmt(None if loss is None else loss * 100, 2)} %  "
        f"fps {r.get('full_fps')}  RSS {_fmt(r.get('server_rss_mb'))} MB  "
        f"delay p50/p99 {_fmt(r.get('delay_ms_p50'), 2)}/{_fmt(r.get('delay_ms_p99'), 2)} ms  "
        f"gen drops {r.get('generator_udp_drops')}  failed {r.get('failed')}  "
        f"other load {_fmt(r.get('other_load_cores'), 2)} cores "
        f"(steal {_fmt(r.get('steal_cores'), 2)})  gen {_fmt(r.get('generator_cpu'), 2)} cores"
    )


def _value(r: dict[str, Any], key: str) -> float | None:
    if key == "min_fps":
        return min(r["full_fps"]) if r.get("full_fps") else None
    if key == "loss_net":
        # sequence gaps minus what the generator's own sockets dropped: the server's share
        exp = r.get("packets_expected") or 0
        lost = exp - (r.get("packets_received") or 0) - (r.get("generator_udp_drops") or 0)
        return max(0, lost) / exp if exp else None
    if key == "viewers_per_core":
        cores = r.get("server_cores")
        return r["subscribers"] / cores if cores else None
    v = r.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _fit_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y against x (None if x does not vary)."""
    if len(points) < 2:
        return None
    xs, ys = zip(*points, strict=True)
    try:
        return statistics.linear_regression(xs, ys).slope
    except statistics.StatisticsError:  # every x the same
        return None


def _fed(n: int, fps: float) -> float:
    """Subscribers counted at 30 delivered frames a second.

    A decoder above 30 fps is catching up on frames already sent, not being sent more.
    """
    return n * min(fps, FPS) / FPS


def marginal_cores(runs: list[dict[str, Any]], held: Callable[[str, int], bool]) -> dict[str, Any]:
    """Server cores one more subscriber costs: each system's slope over every load it held.

    The server's fixed cost (its event loop, the publisher's stream) is spread over few
    subscribers at small loads; a slope leaves it out. The slope is a least-squares fit of
    server cores against subscribers (each counted at the frame rate it received, scaled to
    30 fps: a saturated relay sends fewer frames), through every run of every load the system
    held, so it does not rest on two small figures. Beside it, for comparison, the slope of
    the medians between the two smallest loads both held.
    """
    points: dict[str, list[tuple[int, float, float]]] = {"relay": [], "madoguchi": []}
    for r in runs:
        system, n = r["system"], r["subscribers"]
        if system not in points or r["status"] != "ok" or not held(system, n):
            continue
        cores, fps = r.get("server_cores"), _value(r, "min_fps")
        if cores is not None and fps:
            points[system].append((n, _fed(n, fps), cores))
    out: dict[str, Any] = {}
    for system, pts in points.items():
        slope = _fit_slope([(fed, cores) for _, fed, cores in pts])
        if slope is None or slope <= 0:
            return {}
        out[system] = slope
        out[f"{system}_loads"] = sorted({n for n, _, _ in pts})
    out["ratio"] = out["relay"] / out["madoguchi"]
    both = sorted(set(out["relay_loads"]) & set(out["madoguchi_loads"]))
    if len(both) >= 2:
        pair: dict[str, Any] = {"from": both[0], "to": both[1]}
        for system, pts in points.items():
            lo, hi = (
                [statistics.median(p[i] for p in pts if p[0] == n) for i in (1, 2)]
                for n in both[:2]
            )
            pair[system] = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else None
        if pair["relay"] and pair["madoguchi"] and pair["madoguchi"] > 0:
            pair["ratio"] = pair["relay"] / pair["madoguchi"]
        out["two_smallest"] = pair
    return out


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Median and spread per system and subscriber count, ratios, capacity, targets."""
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results["runs"]:
        table.setdefault(r["system"], {}).setdefault(r["subscribers"], {"runs": []})["runs"].append(
            r
        )
    for points in table.values():
        for cell in points.values():
            ok = [r for r in cell["runs"] if r["status"] == "ok" and r.get("server_us_per_packet")]
            cell["ok"] = len(ok)
            cell["statuses"] = sorted({r["status"] for r in cell["runs"]})
            for key in METRICS:
                cell[key] = _stats([v for r in ok if (v := _value(r, key)) is not None])
            del cell["runs"]
    summary: dict[str, Any] = {"table": table}

    def med(system: str, n: int, key: str) -> float | None:
        s = table.get(system, {}).get(n, {}).get(key)
        return s["median"] if s else None

    ratios: dict[str, dict[int, float]] = {
        "madoguchi_over_janus_us_per_packet": {},
        "madoguchi_over_janus_viewers_per_core": {},
        "relay_over_madoguchi_cores_per_subscriber": {},
        "relay_over_madoguchi_cores_per_subscriber_at_30fps": {},
        "floor_over_janus_us_per_packet": {},
    }

    def held(system: str, n: int) -> bool:
        loss = med(system, n, "loss")
        return loss is not None and loss < LOSS_LIMIT

    for n in sorted({n for pts in table.values() for n in pts}):
        # compare only where both systems held: a system that forwards nothing costs nothing
        a, b = med("floor", n, "server_us_per_packet"), med("janus", n, "server_us_per_packet")
        if a and b and held("janus", n):
            # what no server on these parts can go under, against Janus at the same load
            ratios["floor_over_janus_us_per_packet"][n] = a / b
        if not all(held(s, n) for s in ("madoguchi", "janus", "relay") if n in table.get(s, {})):
            continue
        a, b = med("madoguchi", n, "server_us_per_packet"), med("janus", n, "server_us_per_packet")
        if a and b:
            ratios["madoguchi_over_janus_us_per_packet"][n] = a / b
        a, b = med("madoguchi", n, "viewers_per_core"), med("janus", n, "viewers_per_core")
        if a and b:
            ratios["madoguchi_over_janus_viewers_per_core"][n] = a / b
        a = med("relay", n, "server_cores_per_subscriber")
        b = med("madoguchi", n, "server_cores_per_subscriber")
        if a and b:
            ratios["relay_over_madoguchi_cores_per_subscriber"][n] = a / b
            # a saturated relay sends fewer frames, so it also costs less per subscriber:
            # compare the CPU per subscriber scaled to 30 delivered frames a second
            fa, fb = med("relay", n, "min_fps"), med("madoguchi", n, "min_fps")
            if fa and fb:
                ratios["relay_over_madoguchi_cores_per_subscriber_at_30fps"][n] = (a * FPS / fa) / (
                    b * FPS / fb
                )
    summary["ratios"] = ratios
    summary["marginal"] = marginal_cores(results["runs"], held)
    capacity: dict[str, int | None] = {}
    for system, points in table.items():
        if system == "floor":
            continue  # not a server: it has no capacity
        held = [
            n
            for n, c in points.items()
            if c["loss"]
            and c["loss"]["median"] < LOSS_LIMIT
            and c["failed"] is not None
            and c["failed"]["median"] == 0
            and c["min_fps"]
            and c["min_fps"]["median"] >= MIN_FPS
        ]
        capacity[system] = max(held) if held else None
    summary["capacity"] = capacity
    return summary


def text_summary(results: dict[str, Any]) -> str:
    lines = [
        f"side by side: {results['meta']['started_at']} → {results['meta'].get('finished_at')}"
        f", {results['meta']['placement']}"
    ]
    for system, why in results.get("skipped", {}).items():
        lines.append(f"{LABELS.get(system, system)}: {why}")
    for system, why in results.get("stopped", {}).items():
        lines.append(f"{LABELS.get(system, system)}: stopped growing: {why}")
    summary = results.get("summary", {})
    for system, points in summary.get("table", {}).items():
        for n, c in sorted(points.items()):
            lines.append(
                f"{LABELS.get(system, system):18} N={n:<4} ok {c['ok']}  "
                f"µs/pkt {_med(c, 'server_us_per_packet')}  loss % {_med(c, 'loss', 100, 3)}  "
                f"fps {_med(c, 'min_fps')}  RSS MB {_med(c, 'server_rss_mb')}  "
                f"delay p50 {_med(c, 'delay_ms_p50', 1, 2)} ms"
            )
    for name, values in summary.get("ratios", {}).items():
        if values:
            lines.append(f"{name}: " + ", ".join(f"N={n}: {v:.2f}" for n, v in values.items()))
    for name, value in results.get("scenarios", {}).items():
        lines.append(f"{name}: {value.get('summary', value)}")
    lines.append(f"capacity (< 0.5 % loss): {summary.get('capacity')}")
    return "\n".join(lines)


def _med(cell: dict[str, Any], key: str, scale: float = 1.0, digits: int = 1) -> str:
    s = cell.get(key)
    return "–" if not s else f"{s['median'] * scale:.{digits}f}"


def write_docs(results: dict[str, Any], docs: Path) -> None:
    """Replace (or append) the "## Side by side" section of docs/benchmarks.md, and the plot."""
    from .plot import plot

    results = {**results, "summary": summarize(results)}
    png = docs / "benchmarks-side-by-side.png"
    plotted = plot(results, png)
    section = render_section(results, png.name if plotted else None)
    path = docs / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def render_section(results: dict[str, Any], png: str | None) -> str:
    from .report_doc import render

    return render(results, png)


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several invocations (e.g. the sweep, then the scenarios on their own)."""
    out: dict[str, Any] = {
        "meta": dict(parts[0]["meta"]),
        "runs": [],
        "skipped": {},
        "stopped": {},
        "scenarios": {},
    }
    for part in parts:
        out["runs"] += part.get("runs", [])
        for key in ("skipped", "stopped"):
            out[key].update(part.get(key) or {})
        for name, scenario in (part.get("scenarios") or {}).items():
            # a scenario that a later invocation skipped keeps the earlier result
            if not scenario.get("skipped") and (
                scenario.get("rows") != [] or name not in out["scenarios"]
            ):
                out["scenarios"][name] = scenario
            elif name not in out["scenarios"]:
                out["scenarios"][name] = scenario
        out["meta"].setdefault("versions", {}).update(part["meta"].get("versions", {}))
    out["meta"]["finished_at"] = parts[-1]["meta"].get("finished_at")
    if len(parts) > 1:
        out["meta"]["command"] = " ; ".join(p["meta"].get("command", "") for p in parts)
    return out


def main() -> None:
    """`python -m bench.report results.json [more.json ...]`: rewrite the docs section."""
    import json

    paths = [Path(a) for a in sys.argv[1:]] or [ROOT / "bench/results/side-by-side.json"]
    parts = [json.loads(p.read_text()) for p in paths]
    results = merge(parts)
    if len(paths) > 1:
        (ROOT / "bench/results/side-by-side.json").write_text(json.dumps(results, indent=1))
    write_docs(results, ROOT / "docs")


if __name__ == "__main__":
    main()
