"""axe-core on every screen that needs no live room (the room screens are checked in the
bereavement and hearing tests), in Japanese and in English, at phone and desktop widths."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage
from tests.browser.helpers import assert_accessible

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_start_join_and_device_check_pass_axe(
    live_server: LiveServer, new_page: NewPage, lang: str
) -> None:
    page = await new_page(PHONE, lang=lang)
    for path in ("/", "/join", "/j/some-token", "/check"):
        await page.goto(f"{live_server.url}{path}")
        await expect(page.locator("main h1")).to_be_visible()
        await assert_accessible(page, f"{path} ({lang})")
    await page.goto(f"{live_server.url}/join")
    await page.locator("button[type=submit]").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await assert_accessible(page, f"/join with an error ({lang})")


async def test_staff_console_passes_axe(live_server: LiveServer, new_page: NewPage) -> None:
    cid = await live_server.consultation("public_hearing", "意見交換会")
    page = await new_page(DESKTOP)
    await page.goto(f"{live_server.url}/staff")
    await expect(page.get_by_label("ログイン名")).to_be_visible()
    await assert_accessible(page, "staff login")
    await page.get_by_label("ログイン名").fill("clerk")
    await page.get_by_label("パスワード").fill("correct horse battery")
    await page.get_by_role("button", name="ログインする").click()
    await expect(page.get_by_role("heading", name="相談を作る")).to_be_visible()
    await assert_accessible(page, "staff dashboard")
    await page.goto(f"{live_server.url}/staff#c={cid}")
    await expect(page.locator("#consultation-id")).to_have_text(cid)
    await assert_accessible(page, "staff consultation")
