"""The pages that need no live room: start, join form, device check, staff console."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage, screenshot

pytestmark = pytest.mark.browser


async def test_join_page_is_japanese_first_and_switches_to_english(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(PHONE)
    await page.goto(f"{live_server.url}/join")
    await expect(page.locator("h1")).to_have_text("相談に参加する")
    assert await page.evaluate("document.documentElement.lang") == "ja"
    await expect(page.get_by_label("参加ID")).to_be_visible()
    await screenshot(page, "join-phone")
    await page.get_by_role("button", name="Switch to English").click()
    await expect(page.locator("h1")).to_have_text("Join a consultation")
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.reload()
    await expect(page.locator("h1")).to_have_text("Join a consultation")


async def test_join_page_asks_for_a_missing_passcode_in_japanese(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(PHONE)
    await page.goto(f"{live_server.url}/join")
    await page.get_by_label("参加ID").fill("12345678")
    await page.get_by_role("button", name="次へ（カメラとマイクの確認）").click()
    await expect(page.get_by_role("alert")).to_contain_text("パスコードを入力してください。")
    await expect(page.get_by_label("パスコード")).to_have_attribute("aria-invalid", "true")


async def test_device_check_shows_the_camera_and_the_microphone_level(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(DESKTOP)
    await page.goto(f"{live_server.url}/check")
    await expect(page.locator("h1")).to_have_text("カメラとマイクの確認")
    video = page.locator(".preview video")
    await page.wait_for_function(
        "() => document.querySelector('.preview video').videoWidth > 0", timeout=15_000
    )
    await expect(video).to_be_visible()
    # the fake microphone beeps: the meter moves and says so in words
    await expect(page.get_by_text("マイクの音が届いています。")).to_be_visible(timeout=15_000)
    await screenshot(page, "device-check-desktop")
    await page.get_by_label("音声だけで参加する（カメラを使わない）").check()
    await expect(page.get_by_text("カメラは使いません")).to_be_visible()
    await page.get_by_label("見るだけ・聞くだけで参加する（カメラもマイクも使わない）").check()
    await expect(page.get_by_label("マイク", exact=True)).to_be_hidden()


async def test_device_check_on_a_phone(live_server: LiveServer, new_page: NewPage) -> None:
    page = await new_page(PHONE)
    await page.goto(f"{live_server.url}/check")
    await page.wait_for_function(
        "() => document.querySelector('.preview video').videoWidth > 0", timeout=15_000
    )
    await screenshot(page, "device-check-phone")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at 375 px ({width} px)"


async def test_staff_console_creates_a_consultation_and_invites_an_heir(
    live_server: LiveServer, new_page: NewPage
) -> None:
    page = await new_page(DESKTOP)
    await page.goto(f"{live_server.url}/staff")
    await page.get_by_label("ログイン名").fill("clerk")
    await page.get_by_label("パスワード").fill("wrong password")
    await page.get_by_role("button", name="ログインする").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("ログイン名またはパスワードが違います。")
    await page.get_by_label("パスワード").fill("correct horse battery")
    await page.get_by_role("button", name="ログインする").click()
    await expect(page.get_by_role("heading", name="相談を作る")).to_be_visible()
    await page.get_by_label("相談の種類").select_option("bereavement")
    await page.get_by_label("件名").fill("山田家 おくやみ相談")
    await page.get_by_role("button", name="この内容で作る").click()
    await expect(page.locator("h1")).to_have_text("山田家 おくやみ相談")
    await page.get_by_label("役割", exact=True).select_option("heir")
    await page.get_by_label("氏名").fill("山田 花子")
    await page.get_by_role("button", name="招待する").click()
    await expect(page.locator("#invite-passcode")).not_to_be_empty()
    await expect(page.locator("#invite-join-id")).not_to_be_empty()
    await expect(page.locator("#invite-link")).to_contain_text("/j/")
    await expect(page.locator("#participant-list")).to_contain_text("山田 花子")
    await screenshot(page, "staff-console-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "staff-console-phone")
