"""Bereavement: a staff page and two heir pages; each heir passes the lobby; all see each other."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DESKTOP, PHONE, TABLET, LiveServer, NewPage, screenshot
from tests.browser.helpers import (
    HAVE_MEDIA,
    admit,
    assert_accessible,
    assert_fits_width,
    inbound,
    join_by_link,
    join_by_passcode,
    staff_enters,
    wait_publishing,
    wait_remote_videos,
)

pytestmark = pytest.mark.browser


async def test_heirs_pass_the_lobby_and_everyone_sees_everyone(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("bereavement", "山田 太郎様 おくやみ相談")
    hanako = await live_server.invite(cid, "heir", "山田 花子")
    jiro = await live_server.invite(cid, "heir", "山田 次郎")

    staff = await new_page(DESKTOP)
    await staff_enters(staff, live_server, cid)

    heir1 = await new_page(PHONE)
    await join_by_link(heir1, live_server, hanako["join"]["link"], "山田 花子")
    await expect(heir1.locator("h1")).to_have_text("待合室でお待ちください")
    await expect(heir1.locator("#lobby-title")).to_have_text("山田 太郎様 おくやみ相談")
    await expect(heir1.locator("#checklist")).to_contain_text("死亡診断書")
    await screenshot(heir1, "lobby-phone")
    await assert_fits_width(heir1, PHONE["width"])

    await admit(staff, "山田 花子")
    await expect(heir1.locator(".room")).to_be_visible()

    heir2 = await new_page(DESKTOP)
    await join_by_passcode(heir2, live_server, jiro["join"], "山田 次郎")
    await expect(heir2.locator("h1")).to_have_text("待合室でお待ちください")
    await screenshot(heir2, "lobby-desktop")
    await admit(staff, "山田 次郎")
    await expect(heir2.locator(".room")).to_be_visible()

    for page in (staff, heir1, heir2):
        await expect(page.locator("#btn-people")).to_contain_text("(3)")
    await screenshot(staff, "staff-room-desktop")
    await screenshot(heir2, "room-desktop")
    await screenshot(heir1, "room-phone")
    await assert_accessible(staff, "room with the moderation panel")
    await assert_accessible(heir1, "room on a phone")
    await assert_fits_width(heir1, PHONE["width"])
    await heir2.set_viewport_size(TABLET)
    await screenshot(heir2, "room-tablet")
    await assert_fits_width(heir2, TABLET["width"])
    await heir2.set_viewport_size(DESKTOP)
    await heir2.get_by_role("button", name="チャット").click()
    await heir2.get_by_label("メッセージ").fill("戸籍謄本は2通あります。")
    await heir2.get_by_role("button", name="送信する").click()
    await expect(heir1.locator("#btn-chat")).to_contain_text("(1)")
    await assert_accessible(heir2, "room with the chat panel")
    await heir2.get_by_role("button", name="Switch to English").click()
    await expect(heir2.locator("#btn-leave")).to_have_text("Leave")
    await expect(heir2.locator("#chat-log")).to_contain_text("戸籍謄本は2通あります。")
    await screenshot(heir2, "room-english-desktop")
    await heir2.get_by_role("button", name="日本語に切り替える").click()
    await expect(heir2.locator("#btn-leave")).to_have_text("退室する")
    if not HAVE_MEDIA:
        pytest.skip("server/media.py (the SFU glue) is not in this build: no media to check")
    for page in (staff, heir1, heir2):
        # each page's offer was answered by the SFU and its camera flows there
        await wait_publishing(page, "video")
    for page in (staff, heir1, heir2):
        await wait_remote_videos(page, 2)
        stats = await inbound(page)
        video = [s for s in stats.values() if s["kind"] == "video" and s["frames"] > 0]
        assert len(video) >= 2, stats
    # the same screens, now with everyone's video
    await heir2.locator("#btn-chat").click()  # close the chat: the gallery alone
    await screenshot(staff, "staff-room-desktop")
    await screenshot(heir2, "room-desktop")
    await screenshot(heir1, "room-phone")
