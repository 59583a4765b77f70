"""Staff moderation from the room: deny at the lobby, remove, end for all."""

from __future__ import annotations

import pytest
from playwright.async_api import Dialog, expect

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage, screenshot
from tests.browser.helpers import admit, join_by_link, open_panel, staff_enters

pytestmark = pytest.mark.browser


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_staff_deny_remove_and_end_for_all(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("bereavement", "佐藤家 おくやみ相談")
    first = await live_server.invite(cid, "heir", "佐藤 一郎")
    second = await live_server.invite(cid, "heir", "佐藤 二郎")
    staff = await new_page(DESKTOP)
    staff.on("dialog", accept)
    await staff_enters(staff, live_server, cid)

    heir1 = await new_page(PHONE)
    await join_by_link(heir1, live_server, first["join"]["link"], "佐藤 一郎")
    heir2 = await new_page(PHONE)
    await join_by_link(heir2, live_server, second["join"]["link"], "佐藤 二郎")
    await open_panel(staff, "btn-manage")
    await expect(staff.locator("#lobby-list")).to_contain_text("佐藤 二郎")
    await staff.get_by_role("button", name="お断りする: 佐藤 二郎").click()
    await expect(heir2.locator("#ended-reason")).to_have_text(
        "職員により入室がお断りされました。ご不明な点は担当窓口へお問い合わせください。"
    )
    await screenshot(heir2, "denied-phone")

    await admit(staff, "佐藤 一郎")
    await expect(heir1.locator(".room")).to_be_visible()
    # mute, then ask to unmute: the heir decides
    await open_panel(staff, "btn-people")
    await staff.get_by_role("button", name="マイクを止める: 佐藤 一郎").click()
    await expect(heir1.locator("#room-notice")).to_have_text("職員がマイクをオフにしました。")
    await expect(heir1.locator("#btn-mic")).to_have_attribute("aria-pressed", "false")
    await expect(staff.locator("#people-list")).to_contain_text("職員がミュート")
    await staff.get_by_role("button", name="マイクを戻すよう依頼: 佐藤 一郎").click()
    notice = heir1.locator("#room-notice")
    await expect(notice).to_contain_text("マイクをオンにするよう求めています")
    await heir1.get_by_role("button", name="マイクをオンにする").click()
    await expect(heir1.locator("#btn-mic")).to_have_attribute("aria-pressed", "true")
    await expect(staff.locator("#people-list")).not_to_contain_text("職員がミュート")
    await staff.locator("#btn-people").click()

    # keyboard: open the people panel with Enter, close it with Escape
    await staff.locator("#btn-people").focus()
    await staff.keyboard.press("Enter")
    await expect(staff.locator("#people-list")).to_be_visible()
    await staff.get_by_role("button", name="閉じる").focus()
    await staff.keyboard.press("Escape")
    await expect(staff.locator("#side-panel")).to_be_hidden()
    await expect(staff.locator("#btn-people")).to_be_focused()
    await staff.keyboard.press("Enter")
    await staff.get_by_role("button", name="退出させる: 佐藤 一郎").click()
    await expect(heir1.locator("#ended-reason")).to_have_text(
        "職員の操作により、相談から退出しました。"
    )
    await expect(staff.locator("#btn-people")).to_contain_text("(1)")

    await open_panel(staff, "btn-manage")
    await staff.get_by_role("button", name="全員の相談を終了する").click()
    await expect(staff.locator("#ended-reason")).to_have_text(
        "職員が相談を終了しました。ご利用ありがとうございました。"
    )
    await expect(staff.get_by_role("link", name="もう一度参加する")).to_have_count(0)
    await expect(staff.get_by_role("link", name="最初の画面へ")).to_be_visible()
