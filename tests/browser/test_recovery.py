"""Failures people meet: a blocked camera, and a lost connection that comes back by itself."""

from __future__ import annotations

import pytest
from playwright.async_api import WebSocketRoute, expect

from server.rooms import ROOMS
from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage, screenshot
from tests.browser.helpers import join_by_link, staff_enters

pytestmark = pytest.mark.browser


def cut_connection(server: LiveServer, member: str) -> None:
    """Drop one participant's signaling connection like a broken network would."""
    for live in server.app[ROOMS].live.values():
        link = live.links.get(member)
        if link is not None:
            transport = link.request.transport  # type: ignore[attr-defined]
            assert transport is not None
            transport.abort()
            return
    raise AssertionError(f"{member} has no connection")


BLOCK_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


async def test_a_blocked_camera_explains_how_to_allow_it_and_offers_view_only(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(PHONE)
    await page.context.add_init_script(BLOCK_CAMERA)
    await page.goto(f"{live_server.url}/check")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("カメラまたはマイクが使えません")
    await expect(alert).to_contain_text("「カメラ」と「マイク」を「許可」にします。")
    await expect(alert).to_contain_text("見るだけで参加することもできます")
    await screenshot(page, "camera-blocked-phone")
    # the view-only path needs no device at all
    await page.get_by_label("見るだけ・聞くだけで参加する（カメラもマイクも使わない）").check()
    await expect(page.get_by_role("alert")).to_have_count(0)


async def test_a_lost_connection_shows_reconnecting_and_recovers_by_itself(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("legal", "法律相談")
    lawyer_invite = await live_server.invite(cid, "lawyer", "弁護士 田中")
    staff = await new_page(DESKTOP)
    await staff_enters(staff, live_server, cid)
    lawyer = await new_page(DESKTOP)
    await join_by_link(lawyer, live_server, lawyer_invite["join"]["link"])
    await expect(lawyer.locator("#btn-people")).to_contain_text("(2)")

    # the network goes down under the lawyer: new connections fail until it comes back
    network = {"up": False}

    async def route(ws: WebSocketRoute) -> None:
        if network["up"]:
            ws.connect_to_server()
        else:
            await ws.close(code=1011, reason="network down")

    await lawyer.route_web_socket("**/ws", route)
    member = await lawyer.evaluate("() => window.madoguchi.you.id")
    cut_connection(live_server, member)
    await expect(lawyer.locator("#reconnecting")).to_have_text(
        "接続が切れました。再接続しています…"
    )
    await expect(lawyer.locator("#reconnecting")).to_be_visible()
    await expect(staff.locator("#tiles")).to_contain_text("接続が切れています")
    await screenshot(lawyer, "reconnecting-desktop")
    network["up"] = True
    await expect(lawyer.locator("#reconnecting")).to_have_text("再接続しました。", timeout=20_000)
    await expect(lawyer.locator("#reconnecting")).to_be_hidden()
    # still in the same room, seen as connected again
    await expect(staff.locator("#tiles")).not_to_contain_text("接続が切れています")
    await expect(lawyer.locator("#btn-people")).to_contain_text("(2)")
