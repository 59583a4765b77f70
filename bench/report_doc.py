"""Markdown for the "## Side by side" section of docs/benchmarks.md, from the results JSON."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .report import LABELS, LOSS_LIMIT, MIN_FPS, SETTLED_DELAY

FULL_COMMAND = "sudo .venv/bin/python -m bench"
QUICK_COMMAND = "sudo .venv/bin/python -m bench --quick"


def _m(
    cell: dict[str, Any], key: str, scale: float = 1.0, digits: int = 1, spread: bool = True
) -> str:
    s = cell.get(key)
    if not s:
        return "–"
    med = f"{s['median'] * scale:.{digits}f}"
    if spread and s["n"] > 1 and s["min"] != s["max"]:
        return f"{med} ({s['min'] * scale:.{digits}f}–{s['max'] * scale:.{digits}f})"
    return med


def _per_system(summary: dict[str, Any]) -> list[str]:
    out = []
    for system, points in summary["table"].items():
        out += [
            f"#### {LABELS.get(system, system)}",
            "",
            "| subscribers | runs ok | server CPU µs / forwarded packet | forwarded packets/s "
            "per core | server cores | loss % | loss % net of generator drops | "
            "decoded fps (full subs, min) | RSS MB | "
            "RSS MB / subscriber | delay p50 / p99 ms | generator drops |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n, c in sorted(points.items(), key=lambda kv: int(kv[0])):
            runs = f"{c['ok']}" + (
                "" if c["statuses"] == ["ok"] else f" ({', '.join(c['statuses'])})"
            )
            out.append(
                f"| {n} | {runs} | {_m(c, 'server_us_per_packet')} | "
                f"{_m(c, 'packets_per_core_second', 1, 0)} | {_m(c, 'server_cores', 1, 3)} | "
                f"{_m(c, 'loss', 100, 3)} | {_m(c, 'loss_net', 100, 3, spread=False)} | "
                f"{_m(c, 'min_fps')} | {_m(c, 'server_rss_mb', 1, 0)} | "
                f"{_m(c, 'rss_mb_per_subscriber', 1, 3, spread=False)} | "
                f"{_m(c, 'delay_ms_p50', 1, 2, False)} / {_m(c, 'delay_ms_p99', 1, 2, False)} | "
                f"{_m(c, 'generator_udp_drops', 1, 0, False)} |"
            )
        out.append("")
    return out


def _ratio_lines(summary: dict[str, Any]) -> list[str]:
    r = summary["ratios"]
    names = {
        "madoguchi_over_janus_us_per_packet": "Madoguchi / Janus, CPU per forwarded packet",
        "madoguchi_over_janus_viewers_per_core": "Madoguchi / Janus, viewers per core",
        "relay_over_madoguchi_cores_per_subscriber": "MediaRelay / Madoguchi, CPU per subscriber",
        "relay_over_madoguchi_cores_per_subscriber_at_30fps": (
            "MediaRelay / Madoguchi, CPU per subscriber at 30 fps delivered"
        ),
        "floor_over_janus_us_per_packet": "floor (protect + send) / Janus, CPU per packet",
    }
    ns = sorted({int(n) for v in r.values() for n in v})
    if not ns:
        return ["No ratio could be formed: a system was missing at every load.", ""]
    out = ["| ratio | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---:|" * len(ns)]
    for key, label in names.items():
        vals = {int(k): v for k, v in r.get(key, {}).items()}
        out.append(
            f"| {label} | " + " | ".join(f"{vals[n]:.2f}" if n in vals else "–" for n in ns) + " |"
        )
    m = summary.get("marginal") or {}
    if m.get("ratio"):
        loads = {k: ", ".join(str(n) for n in m[f"{k}_loads"]) for k in ("relay", "madoguchi")}
        out += [
            "",
            f"One more subscriber (least-squares slope of server cores against subscribers at "
            f"30 fps delivered, through every run of every load held: MediaRelay N = "
            f"{loads['relay']}; Madoguchi N = {loads['madoguchi']}): MediaRelay "
            f"{m['relay']:.3f} cores, Madoguchi {m['madoguchi']:.4f} cores: "
            f"**{m['ratio']:.0f}×**. At small loads Madoguchi's fixed cost (event loop, the "
            "publisher's stream) is most of its CPU per subscriber; a slope leaves it out.",
        ]
        pair = m.get("two_smallest") or {}
        if pair.get("ratio"):
            out[-1] += (
                f" The slope of the medians between the two smallest loads both held alone "
                f"(N={pair['from']} → {pair['to']}): MediaRelay {pair['relay']:.3f}, Madoguchi "
                f"{pair['madoguchi']:.4f} cores, {pair['ratio']:.0f}×: Madoguchi's part there is "
                "the difference of two small figures, the least steady of the table."
            )
    return [*out, ""]


def _targets(summary: dict[str, Any], results: dict[str, Any]) -> list[str]:
    table, r = summary["table"], summary["ratios"]

    def ratio(key: str, n: int) -> float | None:
        v = r.get(key, {})
        return v.get(n, v.get(str(n)))

    def cell(system: str, n: int) -> dict[str, Any]:
        pts = table.get(system, {})
        return pts.get(n, pts.get(str(n), {}))

    rows = []
    for n in (100, 200):
        v = ratio("madoguchi_over_janus_us_per_packet", n)
        floor = ratio("floor_over_janus_us_per_packet", n)
        rows.append(
            (
                f"CPU per forwarded packet ≤ 0.5× Janus at {n} subscribers",
                ("–" if v is None else f"{v:.2f}×")
                + ("" if floor is None else f" (floor {floor:.2f}×)"),
                None if v is None else v <= 0.5,
            )
        )
    vpc = {int(n): v for n, v in r.get("madoguchi_over_janus_viewers_per_core", {}).items()}
    top = max(vpc) if vpc else None
    v = vpc[top] if top is not None else None
    rows.append(
        (
            f"viewers per core ≥ 2× Janus (at the most viewers both held: N={top})",
            "–" if v is None else f"{v:.2f}×",
            None if v is None else v >= 2,
        )
    )
    mems = [
        c["rss_mb_per_subscriber"]["median"]
        for n, c in table.get("madoguchi", {}).items()
        if int(n) >= 50 and c.get("rss_mb_per_subscriber")
    ]
    v = max(mems) if mems else None
    rows.append(
        (
            "memory per subscriber ≤ 0.35 MB (worst at ≥ 50 subscribers)",
            "–" if v is None else f"{v:.3f} MB",
            None if v is None else v <= 0.35,
        )
    )
    rel = r.get("relay_over_madoguchi_cores_per_subscriber_at_30fps", {})
    equal = ", ".join(f"{v:.0f}× at N={n}" for n, v in rel.items())
    slope = (summary.get("marginal") or {}).get("ratio")
    rows.append(
        (
            "MediaRelay / Madoguchi CPU per subscriber ≥ 100× (fitted slopes; at equal loads)",
            "–" if slope is None else f"{slope:.0f}× ({equal})",
            None if slope is None else slope >= 100,
        )
    )
    base = results.get("scenarios", {}).get("delay_baseline", {})
    janus_held = (summary.get("capacity") or {}).get("janus")
    for label, n, cellv in _delay_points(table.get("madoguchi", {}), janus_held):
        floor_cell = cell("floor", n)
        for q, limit in (("p50", 2.0), ("p99", 10.0)):
            raw = cellv[f"delay_ms_{q}"]["median"]
            added = raw - base[f"delay_ms_{q}"] if base.get(f"delay_ms_{q}") is not None else raw
            how = "measured − no-server baseline" if base.get(f"delay_ms_{q}") else "measured"
            floor = floor_cell.get(f"delay_ms_{q}")
            rows.append(
                (
                    f"added delay {q} < {limit:g} ms, {label} (N={n}; {how})",
                    f"{added:.2f} ms (raw {raw:.2f}"
                    + ("" if not floor else f"; floor {floor['median']:.2f}")
                    + ")",
                    added < limit,
                )
            )
    join = results.get("scenarios", {}).get("join", {})
    v = join.get("p50_s")
    cold = (join.get("cold") or {}).get("p50_s")
    rows.append(
        (
            "browser join p50 ≤ 0.8 s",
            "–"
            if v is None
            else f"{v:.2f} s" + (f" (cold browser {cold:.2f} s)" if cold is not None else ""),
            None if v is None else v <= 0.8,
        )
    )
    out = ["| target | measured | met |", "|---|---:|---|"]
    for name, value, ok in rows:
        out.append(
            f"| {name} | {value} | {'yes' if ok else 'not measured' if ok is None else '**no**'} |"
        )
    return [*out, ""]


ISSUE_HEAVIEST = 350  # subscribers: issue 11's loads run 1 -> 350; the full run also tries 500


def _delay_points(
    points: dict[Any, dict[str, Any]], janus_held: int | None = None
) -> list[tuple[str, int, dict[str, Any]]]:
    """The lightest and the heaviest load with delay figures that was held, and between them
    the most viewers Janus held (where the two servers last compare) and the heaviest load the
    issue names (ISSUE_HEAVIEST), when they lie between.

    Held as for capacity: < 0.5 % loss and the decoding subscribers at >= 25 fps (a run whose
    generator fell behind loses nothing yet delays everything: not a server figure).
    """
    held = sorted(
        (int(n), c)
        for n, c in points.items()
        if c.get("delay_ms_p50")
        and c.get("loss")
        and c["loss"]["median"] < LOSS_LIMIT
        and c.get("min_fps")
        and c["min_fps"]["median"] >= MIN_FPS
    )
    if not held:
        return []
    out = [("light load", held[0][0], held[0][1])]
    between = {janus_held: "at the most viewers Janus held"}
    between.setdefault(ISSUE_HEAVIEST, "at the heaviest load issue 11 names")
    out += [(between[n], n, c) for n, c in held if n in between and held[0][0] < n < held[-1][0]]
    if held[-1][0] != held[0][0]:
        out.append(("heavy load", held[-1][0], held[-1][1]))
    return out


def _delay_lines(results: dict[str, Any]) -> list[str]:
    base = results.get("scenarios", {}).get("delay_baseline", {})
    if base.get("delay_ms_p50") is None:
        return [f"No-server delay baseline: {base.get('skipped', 'not run')}.", ""]
    return [
        f"No-server baseline (publisher straight to one subscriber in the generator, same "
        f"cores): p50 {base['delay_ms_p50']:.2f} ms, p99 {base['delay_ms_p99']:.2f} ms. "
        "The server-added delay is the delay through the server minus this baseline.",
        "",
        "The floor's delay (its table's column): from each packet's due time to just after its "
        "copy's send, at the same 4 positions among the subscribers. It is what sending one "
        "packet's copies one after the other costs on these parts, before any server work: with "
        "N subscribers a packet's last copy leaves N × (protect + send) after its first.",
        "",
    ]


NOTES = Path(__file__).resolve().parent / "results" / "side-by-side-notes.md"


def _notes() -> list[str]:
    """What a person concluded from this run (bench/results/side-by-side-notes.md), if any."""
    if not NOTES.exists():
        return []
    return ["### Findings of this run", "", NOTES.read_text().strip(), ""]


def _conditions(results: dict[str, Any]) -> list[str]:
    other = [
        r["other_load_cores"] for r in results["runs"] if r.get("other_load_cores") is not None
    ]
    if not other:
        return []
    med, top = statistics.median(other), max(other)
    steal = [r["steal_cores"] for r in results["runs"] if r.get("steal_cores") is not None]
    stolen = (
        f"Time the host took from this VM's CPUs (steal, included above): median "
        f"{statistics.median(steal):.2f} cores, at most {max(steal):.2f} cores. "
        if steal
        else ""
    )
    quiet = med < 0.15
    return [
        f"Other work on the machine during the measured windows (machine busy time minus "
        f"server and generator): median {med:.2f} cores, at most {top:.2f} cores. "
        + stolen
        + (
            "The machine was quiet."
            if quiet
            else "**These figures were taken under load** from other work on the same 2 cores; "
            "treat absolute figures as pessimistic and compare systems within this run "
            "only."
        ),
        "",
    ]


def _meetings(results: dict[str, Any]) -> list[str]:
    meet = results.get("scenarios", {}).get("meetings")
    if not meet or meet.get("skipped"):
        return [f"Not run{': ' + meet['skipped'] if meet else ''}.", ""]
    out = [
        "| meetings × 6 | runs ok | server cores | µs / forwarded packet | loss % | "
        "decoding parties' fps | generator cores | generator drops (received / unsent) | "
        "streams receiving / expected |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in meet["rows"]:
        if not row["ok"]:
            out.append(f"| {row['rooms']} | 0 | – | – | – | – | – | – | – |")
            continue
        out.append(
            f"| {row['rooms']} | {row['ok']} | {row['server_cores']} | "
            f"{row['us_per_packet']} | {row['loss_pct']} | {row.get('min_fps', '–')} | "
            f"{row.get('generator_cpu', '–')} | "
            f"{row['generator_drops']} / {row.get('generator_unsent', '–')} | "
            f"{row['streams']} |"
        )
    out += [
        "",
        f"Most concurrent 6-party meetings held (< {LOSS_LIMIT * 100:g} % loss, every party "
        f"connected, the decoding parties ≥ {MIN_FPS} fps, the server caught up): "
        f"**{meet.get('capacity')}**" + (f" ({meet['limit']})" if meet.get("limit") else ""),
        "",
    ]
    return out


def _join(results: dict[str, Any]) -> list[str]:
    join = results.get("scenarios", {}).get("join")
    if not join:
        return ["Not run.", ""]
    if join.get("skipped"):
        return [join["skipped"], ""]
    times = ", ".join(f"{t:.2f}" for t in join.get("times_s", []))
    out = [
        f"{join.get('joins')} joins in one running browser (a fresh context each: no cache), "
        f"{join.get('failed', 0)} failed"
        + (f" ({join['error']})" if join.get("error") else "")
        + ": "
        + (
            f"p50 **{join['p50_s']:.2f} s**, p90 **{join['p90_s']:.2f} s** (each: {times})."
            if join.get("times_s")
            else "no join completed."
        ),
        "",
    ]
    cold = join.get("cold") or {}
    if cold.get("times_s"):
        out += [
            f"Each in a browser launched for it (its start-up inside the time): p50 "
            f"{cold['p50_s']:.2f} s, p90 {cold['p90_s']:.2f} s (each: "
            + ", ".join(f"{t:.2f}" for t in cold["times_s"])
            + ").",
            "",
        ]
    if join.get("workaround"):
        out += [f"**Caveat:** {join['workaround']}.", ""]
    marks = join.get("marks_ms") or []
    steps = ["ws_open", "joined", "answer", "offer", "ice_connected", "track"]
    if marks:
        med = {
            k: statistics.median(m[k] for m in marks if k in m)
            for k in steps
            if any(k in m for m in marks)
        }
        out += [
            "Where the time goes (median ms after navigation start): "
            + ", ".join(f"{k} {v:.0f}" for k, v in med.items())
            + f", first frame {1000 * join['p50_s']:.0f}.",
            "",
        ]
    if join.get("errors"):
        out += ["Failed joins: " + "; ".join(e[:160] for e in join["errors"][:3]), ""]
    return out


def render(results: dict[str, Any], png: str | None) -> str:
    meta, summary = results["meta"], results["summary"]
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())
    systems = "; ".join(meta.get("versions", {}).values())
    clip = meta.get("clip", {})
    lines = [
        "## Side by side",
        "",
        "Madoguchi, Janus VideoRoom and aiortc's MediaRelay driven by the same load generator "
        "(bench/loadgen/) on one machine, by `python -m bench` (one run, or the invocations under "
        "*Command*, merged with `python -m bench.report a.json b.json …`) "
        "(bench/report_doc.py writes this section; do not edit it by hand).",
        "",
        f"- **Date:** {meta['started_at']} → {meta.get('finished_at')}",
        f"- **Machine:** {meta['cpu_model']}, {meta['cores']} cores, Linux {meta['kernel']}, "
        f"Python {meta['python']}",
        f"- **Software:** {systems}; {versions}; bench code at commit {meta.get('git_commit')}",
        f"- **Command:** `{meta.get('command')}` (as root; full run `{FULL_COMMAND}`, "
        f"small run in the test suite `{QUICK_COMMAND}`). "
        "Results: `bench/results/side-by-side.json`.",
        f"- **Placement:** {meta.get('placement')}; server pinned to core 0, generator to core 1; "
        f"{meta['reps']} runs per point, systems interleaved; {meta['warmup_s']} s warm-up, "
        f"{meta['duration_s']} s measured per run"
        + (
            ", once the server has caught up with the joins (see Method)."
            if "settle_limit_s" in meta
            else "."
        ),
        "",
        *_conditions(results),
        *_notes(),
        "### Method",
        "",
        "- Publisher: aiortc replaying a pre-encoded clip (VP8 640x480@30, "
        f"≈ {clip.get('video_kbps', 930)} kbps, keyframe every second, + Opus "
        f"≈ {clip.get('audio_kbps', 70)} kbps), ≈ 150 packets/s"
        + (
            ", no two packets of it alike (since 2026-12-06; before, the audio was a steady "
            "tone whose packets repeated every 100 ms, and the delay probe, which knows a "
            "packet by its last bytes, timed arrivals over 100 ms late against a later send). "
            if "clip" in meta
            else ". "
        )
        + "Its video is paced at 2.5× the "
        "target bitrate, as browsers' WebRTC pacer does (audio unpaced); aiortc alone sends a "
        "keyframe's ~20 packets back to back, as the runs of sessions 1–3 did. "
        "Subscribers: light ones take each packet at their socket "
        "once DTLS is up, decrypt it in place and count it (SSRC, sequence gaps) without "
        "decoding (bench/srtp_tap.py; since 2026-12-06 every tapped socket is read through one "
        "epoll set straight into its SRTP buffer, not through asyncio's transport, which took "
        "the generator's core at 300 viewers); two full ones decode (their fps proves the "
        "stream is a real picture).",
        "- Six-party meetings: every party is an aiortc peer that joins over `/ws` like a "
        "viewer, receives the other five as light (two parties of the first meeting: full, "
        "decoding one video) and sends the same clip, at a random point of it and a random "
        "phase, paced the same way. Since 2026-12-06 (session 14) the parties' packets leave "
        "from one timer for all of them (bench/loadgen/party_media.py: the clip packetized "
        "once, each party's header and VP8 picture id written, protected in place, sent on the "
        "party's selected pair), not through aiortc's sender, which took ≈ 30 µs of the "
        "generator's core per packet and made the generator, not the server, fail first at 12 "
        "meetings.",
        "- Madoguchi is joined as a client would: staff log in over REST, schedule a consultation "
        "from `bench_hearing` (the shipped public_hearing template with the lobby off and the "
        "resident limit raised above 300), add one participant per viewer, and each peer joins "
        "over `/ws` (docs/protocol.md). Janus: HTTP API, `joinandconfigure` / subscriber `join` + "
        "`start`, shipped config except addresses, loaded plugins (VideoRoom, HTTP) and log "
        "level. MediaRelay: bench/mediarelay.py, decoding once and encoding per subscriber.",
        "- Floor (bench/floor.py), run in turn with the servers at each load: a process on the "
        "server's core and address that only writes each packet's header, protects it in place "
        "with libsrtp (AES-256-GCM, as aiortc peers negotiate) and sends it on one connected "
        "socket per subscriber, for the same clip at the same pace; receivers drain on the "
        "generator's core. No server on these parts can forward for less per packet.",
        "- Server CPU: utime + stime of the server process (all threads) from /proc over the "
        "measured window, divided by packets the subscribers received. Loss: sequence gaps at "
        "the subscribers; the generator's own socket drops (from /proc/net/udp) are listed "
        "apart. Delay: the publisher's send time of each packet (just before its stack protects "
        "and sends it, after the pacer) matched by payload at 4 light subscribers spread over "
        "the join order (first, last and between: an SFU sends the last viewer's copy last), "
        "against the kernel's receive "
        "timestamp at the subscriber's socket (SIOCGSTAMPNS), so the generator's own receive "
        "backlog is not counted (before 2026-12-04 it was, and was most of the delay measured "
        "at 100 viewers). RSS per subscriber: (RSS at the end − RSS "
        "after the publisher joined) / subscribers. CPU per subscriber (MediaRelay against "
        "Madoguchi): the least-squares slope of server cores against subscribers, through every "
        "run of every load the system held (before 2026-12-06: the slope between the medians "
        "at 1 and 10 subscribers, which for Madoguchi is the difference of two small figures).",
        "- The measured window opens after the warm-up and then after a whole second in which no "
        f"probe packet took {SETTLED_DELAY * 1000:.0f} ms or more (at most the settle limit; "
        "each run records "
        "`settle_seconds` and `settled`). Since 2026-12-06: before, at 300 viewers the last "
        "joins could keep the server's core full into the window, and the packets queued "
        "meanwhile, leaving up to 3 s late, made the delay p99 and the decoders' fps (above 30) "
        "of those runs.",
        "",
        "### Results",
        "",
        "Median over the runs, (min–max) when they differ.",
        "",
    ]
    if png:
        lines += [f"![CPU per packet and loss against subscribers]({png})", ""]
    lines += _per_system(summary)
    for system, why in results.get("skipped", {}).items():
        lines += [f"- {LABELS.get(system, system)}: {why}"]
    for system, why in results.get("stopped", {}).items():
        lines += [f"- {LABELS.get(system, system)} was not tried beyond this: {why}"]
    lines += ["", "### Ratios at equal load", "", *_ratio_lines(summary)]
    cap = summary.get("capacity", {})
    lines += [
        "### Capacity",
        "",
        "Most viewers of one hearing at < 0.5 % loss (of the loads tried; all connected, "
        "full subscribers ≥ 25 fps): "
        + ", ".join(
            f"{LABELS.get(s, s)} **{v if v is not None else 'none'}**" for s, v in cap.items()
        ),
        "",
        "### Six-party meetings (Madoguchi)",
        "",
        *_meetings(results),
        "### Server-added delay",
        "",
        *_delay_lines(results),
        "### Join time in a browser",
        "",
        *_join(results),
        "### Targets (issue 11)",
        "",
        *_targets(summary, results),
    ]
    return "\n".join(lines) + "\n"
