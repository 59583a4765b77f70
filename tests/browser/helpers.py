"""Steps people take in the client, for the end-to-end tests."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import LiveServer
from tests.conftest import STAFF_PASSWORD

# the SFU glue of the signaling server (server/media.py); without it rooms carry no media
HAVE_MEDIA = importlib.util.find_spec("server.media") is not None


def local_link(server: LiveServer, link: str) -> str:
    """The personal link on the test server (the server writes its configured public URL)."""
    return f"{server.url}{urlsplit(link).path}"


async def enter_device_check(page: Page) -> None:
    """On the device check, wait for the camera (if any) and enter."""
    await expect(page.locator("h1")).to_have_text("カメラとマイクの確認")
    await page.get_by_role("button", name="この設定で入室する").click()


async def staff_enters(page: Page, server: LiveServer, consultation: str, role: str = "") -> None:
    """A staff member logs in, opens the consultation in the console and enters the room."""
    response = await page.request.post(
        f"{server.url}/api/login", data={"login": "clerk", "password": STAFF_PASSWORD}
    )
    assert response.ok, await response.text()
    await page.goto(f"{server.url}/staff#c={consultation}")
    await expect(page.locator("#consultation-id")).to_have_text(consultation)
    if role:
        await page.locator("#enter-role").select_option(role)
    await page.get_by_role("button", name="職員として入室する").click()
    await enter_device_check(page)
    await expect(page.locator(".room")).to_be_visible()


async def join_by_link(page: Page, server: LiveServer, link: str, name: str = "") -> None:
    """Open a personal link, give a name, pass the device check."""
    await page.goto(local_link(server, link))
    if name:
        await page.get_by_label("お名前（表示名）").fill(name)
    await page.get_by_role("button", name="次へ（カメラとマイクの確認）").click()
    await enter_device_check(page)


async def join_by_passcode(
    page: Page, server: LiveServer, join: dict[str, Any], name: str = "", mode: str = ""
) -> None:
    """Type the join ID and passcode, pass the device check (optionally voice only)."""
    await page.goto(f"{server.url}/join")
    await page.get_by_label("参加ID").fill(join["join_id"])
    await page.get_by_label("パスコード").fill(join["passcode"])
    if name:
        await page.get_by_label("お名前（表示名）").fill(name)
    await page.get_by_role("button", name="次へ（カメラとマイクの確認）").click()
    if mode:
        await page.get_by_label(mode).check()
    await enter_device_check(page)


async def open_panel(page: Page, button_id: str) -> None:
    """Open a side panel (people, chat, moderation) unless it is open."""
    button = page.locator(f"#{button_id}")
    if await button.get_attribute("aria-pressed") != "true":
        await button.click()


async def admit(staff: Page, name: str) -> None:
    """Staff let a person in from the waiting room."""
    await open_panel(staff, "btn-manage")
    await staff.get_by_role("button", name=f"入室を許可: {name}").click()


REMOTE_VIDEOS = """() => [...document.querySelectorAll('figure.tile:not(.self) video')]
  .filter(v => v.srcObject && v.videoWidth > 0 && !v.paused).length"""

FRAMES_DECODED = """async () => {
  const pc = window.madoguchi && window.madoguchi.pc;
  if (!pc) return {};
  const stats = await pc.getStats();
  const out = {};
  stats.forEach(s => {
    if (s.type === 'inbound-rtp') {
      out[s.mid || s.id] = {kind: s.kind, frames: s.framesDecoded || 0,
                            bytes: s.bytesReceived || 0, packets: s.packetsReceived || 0,
                            trackIdentifier: s.trackIdentifier};
    }
  });
  return out;
}"""


async def wait_until(page: Page, predicate: str, arg: Any = None) -> None:
    """Wait (up to 30 s) for a condition in the page."""
    await page.wait_for_function(predicate, arg=arg, timeout=30_000)


async def wait_remote_videos(page: Page, count: int) -> None:
    """Wait until `count` other people's videos play in the page."""
    await wait_until(page, f"(n) => ({REMOTE_VIDEOS})() >= n", count)


async def inbound(page: Page) -> dict[str, dict[str, Any]]:
    """Inbound RTP stats of the page's peer connection, by mid."""
    result: dict[str, dict[str, Any]] = await page.evaluate(FRAMES_DECODED)
    return result


async def remote_mids(page: Page, participant_name: str, kind: str) -> list[str]:
    """The mids that carry `participant_name`'s `kind` to this page, per the last server offer."""
    mids: list[str] = await page.evaluate(
        """([name, kind]) => {
          const s = window.madoguchi;
          const ids = [...s.participants.values()].filter(p => p.name === name).map(p => p.id);
          return [...s.tracksByMid.values()]
            .filter(t => ids.includes(t.participant) && t.kind === kind).map(t => String(t.mid));
        }""",
        [participant_name, kind],
    )
    return mids


async def packets_from(page: Page, participant_name: str, kind: str) -> int:
    """Packets received so far from one participant's `kind` track."""
    mids = set(await remote_mids(page, participant_name, kind))
    stats = await inbound(page)
    return sum(s["packets"] for mid, s in stats.items() if mid in mids and s["kind"] == kind)


async def wait_packets_flow(page: Page, participant_name: str, kind: str) -> int:
    """Wait until packets of that track arrive and keep arriving; returns the count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    first = await packets_from(page, participant_name, kind)
    while loop.time() < deadline:
        await asyncio.sleep(0.5)
        now = await packets_from(page, participant_name, kind)
        if now > first + 10:
            return now
    raise AssertionError(f"no {kind} packets from {participant_name} (stayed at {first})")


AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


async def assert_accessible(page: Page, screen: str) -> None:
    """axe-core (WCAG 2.1 A/AA rules) finds no serious or critical violation on the screen."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page, options=AXE_OPTIONS)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility problems on {screen}:\n" + "\n".join(bad)


class MediaChecks:
    """Media checks that do not stop the rest of a test: the first failure is raised at the end
    (so a media failure does not hide what the room logic does)."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    async def run(self, check: Awaitable[object]) -> bool:
        """Await one check; False if it (or an earlier one) failed."""
        if self.error is not None:
            if isinstance(check, Coroutine):
                check.close()
            return False
        try:
            await check
        except (AssertionError, PlaywrightTimeout) as exc:
            self.error = exc
            return False
        return True

    def finish(self) -> None:
        """Raise the first failure, if any."""
        if self.error is not None:
            raise self.error


OUTBOUND = """async () => {
  const pc = window.madoguchi && window.madoguchi.pc;
  if (!pc) return {};
  const out = {};
  (await pc.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp') out[s.kind] = (out[s.kind] || 0) + (s.packetsSent || 0);
  });
  return out;
}"""


async def wait_publishing(page: Page, kind: str) -> None:
    """Wait until the page's `kind` track sends packets to the SFU (its offer was answered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    first = (await page.evaluate(OUTBOUND)).get(kind, 0)
    while loop.time() < deadline:
        await asyncio.sleep(0.5)
        if (await page.evaluate(OUTBOUND)).get(kind, 0) > first + 10:
            return
    raise AssertionError(f"the page sends no {kind} to the SFU")


async def assert_fits_width(page: Page, width: int) -> None:
    """Nothing makes the page scroll sideways (reflow at phone width)."""
    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at a {width} px viewport"
