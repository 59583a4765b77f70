"""Join time in a real browser: page open -> first decoded remote frame, headless Chromium.

Madoguchi runs in the bench namespace with one live-encoding aiortc publisher (so that the
SFU's keyframe request is answered at once, as a camera's encoder would). Each join opens a
minimal page (bench/join_page.html, served by the load generator from 127.0.0.3) that speaks
docs/protocol.md: join with an ID and passcode, answer the server's offer, show the video. The
time is `performance.now()` (from the start of navigation) at the first
`requestVideoFrameCallback` of the remote video.

Two series: the headline one opens each page in a fresh context (no cache, cookies or storage)
of one running Chromium, as when a citizen opens the link from a mail; the second launches a
Chromium (own profile) per join, so its start-up work falls inside the timed window. Chromium
runs on the load generator's core, never on the server's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .runner import GENERATOR_CORE, ROOT, SERVER_CORE, Options, Placement, Proc, spawn
from .systems import System

CHROMIUM = Path("/usr/lib/chromium/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream=fps=30",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , "
    "EXCLUDE 127.0.0.2 , EXCLUDE 127.0.0.3",
]
PAGE = Path(__file__).with_name("join_page.html")
PAGE_PORT = 8091
EXTMAP_BUG = "RTP extension ID reassignment not supported"


def unavailable() -> str | None:
    if not CHROMIUM.exists():
        return "skipped: chromium not installed (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "skipped: playwright (Python package) not installed"
    return None


async def _read_event(gen: Proc, kind: str, limit: float) -> dict[str, Any]:
    assert gen.proc.stdout is not None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(gen.proc.stdout.readline(), deadline - time.monotonic())
        if not line:
            break
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == kind:
            return event
        if event.get("event") == "error":
            raise RuntimeError(event.get("message"))
    raise RuntimeError(f"load generator gave no `{kind}`: {gen.log_tail()}")


async def _one_join(
    pw: Any, browser: Any, executable: str, url: str, limit: float, marks: dict[str, float]
) -> float:
    """Time one join: in a fresh context of `browser`, or in a browser launched for it (None)."""
    profile = None
    if browser is None:
        profile = tempfile.mkdtemp(prefix="madoguchi-bench-chromium-")
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=FLAGS
        )
    else:
        # a fresh context: no cache, cookies or storage from the joins before (a first visit)
        context = await browser.new_context()
    try:
        page = await context.new_page()
        if os.environ.get("BENCH_DEBUG"):
            page.on("console", lambda m: print("console:", m.text, file=sys.stderr))
        await page.goto(url)
        await page.wait_for_function("window.firstFrame || window.joinError", timeout=limit * 1000)
        error = await page.evaluate("window.joinError || null")
        if error:
            raise RuntimeError(f"join refused: {error}")
        marks.update(await page.evaluate("window.marks"))
        return float(await page.evaluate("window.firstFrame")) / 1000
    finally:
        await context.close()
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)


def _quantiles(times: list[float]) -> dict[str, float]:
    if not times:
        return {}
    ordered = sorted(times)
    return {
        "p50_s": statistics.median(ordered),
        "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
    }


async def measure_join(
    system: System, joins: int, where: Placement, opts: Options, say: Any
) -> dict[str, Any]:
    """Start Madoguchi and a publisher, then time `joins` browser joins one after the other."""
    why = unavailable()
    if why:
        return {"skipped": why}
    from playwright.async_api import async_playwright

    workdir = opts.workdir / f"join-{int(time.time() * 1000)}"
    workdir.mkdir(parents=True)
    executable = str(CHROMIUM)
    prefix = where.prefix(GENERATOR_CORE, opts.pin)
    if prefix:
        # Chromium is a client: it runs on the load generator's core (and in the namespace),
        # never on the server's: its start-up work would otherwise be timed as the server's
        wrapper = workdir / "chromium-placed"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(prefix)} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)
    server = gen = None
    result: dict[str, Any] = {
        "joins": joins,
        "times_s": [],
        "marks_ms": [],
        "failed": 0,
        "errors": [],
        # the same joins, each in a browser launched for it: its start-up is in the time
        "cold": {"times_s": []},
    }
    try:
        argv, env = system.server_command(where.server_address, workdir)
        server = await spawn(
            where.prefix(SERVER_CORE, opts.pin) + argv, system.name, env, workdir / "server.log"
        )
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
            "--live-publisher",
            "--links",
            str(2 * joins),
            "--hold",
            "600",
            "--page-port",
            str(PAGE_PORT),
        ]
        gen = await spawn(
            where.prefix(GENERATOR_CORE, opts.pin) + gen_argv,
            "loadgen",
            {"PYTHONPATH": str(ROOT)},
            workdir / "loadgen.log",
            stdout_pipe=True,
        )
        links = (await _read_event(gen, "links", opts.connect_timeout + 30))["joins"]
        server_host = system.url(where.server_address).split("://", 1)[1]
        base = f"http://{where.client_address}:{PAGE_PORT}/join"
        async with async_playwright() as pw:
            # first `joins` in one running browser, as a citizen's is when they open the link
            # from a mail; then `joins` more, each in a browser launched for it (cold start)
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=FLAGS
            )
            for n, creds in enumerate(links):
                cold = n >= joins
                url = f"{base}?ws={server_host}&id={creds['join_id']}&p={creds['passcode']}"
                if result.get("workaround"):
                    url += "&strip_extmap=1"
                try:
                    marks: dict[str, float] = {}
                    t = await _one_join(pw, None if cold else browser, executable, url, 20, marks)
                    if cold:
                        result["cold"]["times_s"].append(round(t, 3))
                    else:
                        result["times_s"].append(round(t, 3))
                        result["marks_ms"].append({k: round(v) for k, v in marks.items()})
                    say(f"browser join{' (cold)' if cold else ''}: first frame after {t:.3f} s")
                except Exception as exc:  # a failed join is a result, the others go on
                    if EXTMAP_BUG in str(exc) and not result.get("workaround"):
                        # say so plainly, then time the rest with the page's workaround
                        result["workaround"] = (
                            "the first browser join failed on the SFU's re-offer (Chromium: "
                            f"'{EXTMAP_BUG}'); the other joins strip header extensions from "
                            "the viewer's first offer (bench/join_page.html, strip_extmap)"
                        )
                    result["failed"] += 1
                    result["errors"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    say(f"browser join failed: {exc}")
            await browser.close()
    except Exception as exc:  # the scenario fails, the bench goes on and cleans up
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if gen is not None:
            await gen.stop()
        if server is not None:
            await server.stop()
    result.update(_quantiles(result["times_s"]))
    result["cold"].update(_quantiles(result["cold"]["times_s"]))
    result["chromium"] = _chromium_version()
    return result


def _chromium_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "chromium"], capture_output=True, timeout=10
        )
        return f"chromium {out.stdout.decode() or 'unknown'}"
    except (OSError, subprocess.TimeoutExpired):
        return "chromium unknown"
