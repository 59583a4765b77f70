"""Join failures become plain Japanese on the join page."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, LiveServer, NewPage, screenshot
from tests.browser.helpers import join_by_passcode

pytestmark = pytest.mark.browser


async def test_a_wrong_passcode_shows_the_japanese_error_on_the_join_page(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("bereavement", "山田家 おくやみ相談")
    heir = await live_server.invite(cid, "heir", "山田 花子")
    wrong = {"join_id": heir["join"]["join_id"], "passcode": "000000"}
    if wrong["passcode"] == heir["join"]["passcode"]:
        wrong["passcode"] = "999999"
    page = await new_page(PHONE)
    await join_by_passcode(page, live_server, wrong, "山田 花子")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("参加IDまたはパスコードが違います。")
    # what was typed stays, so only the passcode needs correcting
    await expect(page.get_by_label("参加ID")).to_have_value(heir["join"]["join_id"])
    await expect(page.locator("h1")).to_have_text("相談に参加する")
    await screenshot(page, "join-error-phone")


async def test_an_unknown_personal_link_says_what_to_do(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(PHONE)
    await page.goto(f"{live_server.url}/j/not-a-real-token")
    await page.get_by_role("button", name="次へ（カメラとマイクの確認）").click()
    await page.get_by_role("button", name="この設定で入室する").click()
    await expect(page.get_by_role("alert")).to_contain_text("このリンクは使えません。")
