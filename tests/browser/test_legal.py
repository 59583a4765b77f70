"""Legal consultation: the lawyer's screen share arrives at the citizen's page."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage, screenshot
from tests.browser.helpers import (
    HAVE_MEDIA,
    admit,
    join_by_link,
    join_by_passcode,
    staff_enters,
    wait_until,
)

pytestmark = pytest.mark.browser

SCREEN_PLAYING = """() => [...document.querySelectorAll('figure.tile[data-source="screen"] video')]
  .some(v => v.srcObject && v.videoWidth > 0 && !v.paused)"""


async def test_the_lawyers_screen_share_arrives_at_the_citizens_page(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("legal", "法律相談（相続）")
    lawyer_invite = await live_server.invite(cid, "lawyer", "弁護士 田中")
    citizen_invite = await live_server.invite(cid, "citizen", "鈴木 一子")

    staff = await new_page(DESKTOP)
    await staff_enters(staff, live_server, cid)
    lawyer = await new_page(DESKTOP)
    await join_by_link(lawyer, live_server, lawyer_invite["join"]["link"])
    await expect(lawyer.locator(".room")).to_be_visible()
    citizen = await new_page(PHONE)
    await join_by_passcode(citizen, live_server, citizen_invite["join"], "鈴木 一子")
    await admit(staff, "鈴木 一子")
    await expect(citizen.locator(".room")).to_be_visible()

    await lawyer.get_by_role("button", name="画面共有").click()
    await expect(lawyer.get_by_role("button", name="共有をやめる")).to_be_visible()
    await expect(citizen.locator("#btn-people")).to_contain_text("(3)")
    if not HAVE_MEDIA:
        pytest.skip("server/media.py (the SFU glue) is not in this build: no media to check")
    await wait_until(citizen, SCREEN_PLAYING)
    await expect(citizen.locator('figure.tile[data-source="screen"]')).to_contain_text(
        "弁護士 田中 の画面"
    )
    await citizen.get_by_role("button", name="話者表示").click()
    await screenshot(citizen, "legal-screen-share-phone")
