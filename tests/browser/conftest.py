"""Fixtures for end-to-end tests: the real server on 127.0.0.1 and Debian's headless Chromium."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from server.app import create_app
from server.settings import Settings
from server.staff import add_staff
from server.state import DB
from tests.conftest import STAFF_PASSWORD

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("MADOGUCHI_CHROMIUM", "/usr/lib/chromium/chromium")
# flags from shared/webrtc-notes.md: fake camera and microphone, loopback only, nothing outside
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream=fps=15",
    "--use-fake-ui-for-media-stream",
    "--auto-accept-this-tab-capture",
    "--auto-select-desktop-capture-source=Entire screen",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]
HAVE_CHROMIUM = Path(CHROMIUM).exists()
# a loaded 2-core machine answers slowly: wait longer than Playwright's 5 s for the page
expect.set_options(timeout=15_000)
PHONE = {"width": 375, "height": 740}
TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1280, "height": 800}
# a loaded 2-core machine: keep the fake camera small (the page asks for 640x480)
SMALL_CAMERA = """
(() => {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    if (constraints && constraints.video) {
      const base = typeof constraints.video === "object" ? constraints.video : {};
      constraints = {...constraints, video: {...base, width: 320, height: 240, frameRate: 15}};
    }
    return original(constraints);
  };
})();
"""


@dataclass
class LiveServer:
    """The app served on a real port, and a logged-in staff REST session."""

    app: web.Application
    url: str
    staff: aiohttp.ClientSession = field(init=False)
    csrf: str = ""

    async def login(self) -> None:
        """Log the REST session in as staff `clerk`."""
        async with self.staff.post(
            f"{self.url}/api/login", json={"login": "clerk", "password": STAFF_PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            self.csrf = (await response.json())["csrf_token"]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """A staff REST call; asserts success and returns the JSON body."""
        headers = {"X-CSRF-Token": self.csrf}
        async with self.staff.request(
            method, f"{self.url}{path}", json=body, headers=headers
        ) as response:
            text = await response.text()
            assert response.status < 300, f"{method} {path}: {response.status} {text}"
            return json.loads(text)

    async def consultation(self, template: str, title: str) -> str:
        """Create a consultation starting now; returns its ID."""
        import datetime as dt

        starts = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        body = {"template": template, "title": title, "starts_at": starts}
        return str((await self.call("POST", "/api/consultations", body))["id"])

    async def invite(self, consultation: str, role: str, name: str = "") -> dict[str, Any]:
        """Add a participant; returns the Participant with its `join` (link, ID, passcode)."""
        body: dict[str, Any] = {"role": role}
        if name:
            body["name"] = name
        path = f"/api/consultations/{consultation}/participants"
        participant: dict[str, Any] = await self.call("POST", path, body)
        return participant

    def has_signaling(self) -> bool:
        """Whether the signaling WebSocket is mounted in this build."""
        return any(getattr(r.resource, "canonical", "") == "/ws" for r in self.app.router.routes())


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The whole app on 127.0.0.1 (a free port), with staff `clerk`; REST session logged in."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with app[DB].begin() as session:
        await add_staff(session, "clerk", "市民課 佐藤", STAFF_PASSWORD)
    server = LiveServer(app, f"http://127.0.0.1:{port}")
    server.staff = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    await server.login()
    try:
        yield server
    finally:
        await server.staff.close()
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with a fake camera and microphone (fresh profile)."""
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """Open a page in its own context (own cookies and storage), as one person would."""
    contexts = []
    errors: list[str] = []

    async def make(viewport: dict[str, int] | None = None, lang: str = "ja") -> Page:
        context = await browser.new_context(
            viewport=viewport or DESKTOP,
            locale="ja-JP",
            permissions=["camera", "microphone"],
        )
        contexts.append(context)
        await context.add_init_script(SMALL_CAMERA)
        if lang != "ja":
            await context.add_init_script(f"localStorage.setItem('madoguchi.lang', '{lang}')")
        page = await context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # shown by pytest when a test fails
        number = len(contexts)
        page.on("console", lambda m: print(f"[page {number}] {m.type}: {m.text}"))
        return page

    yield make
    for context in contexts:
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


async def screenshot(page: Page, name: str) -> None:
    """Save a screenshot to docs/screenshots/ for the README."""
    await page.screenshot(path=_screenshot_path(name), full_page=False)
