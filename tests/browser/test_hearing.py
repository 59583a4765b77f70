"""Public hearing: a chair and two anonymous residents; hand, floor, and nobody's real name."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, NewPage, screenshot
from tests.browser.helpers import (
    HAVE_MEDIA,
    MediaChecks,
    admit,
    assert_accessible,
    join_by_passcode,
    open_panel,
    packets_from,
    staff_enters,
    wait_packets_flow,
)

pytestmark = pytest.mark.browser
VOICE_ONLY = "音声だけで参加する（カメラを使わない）"
REAL_NAMES = ("住民 一郎", "住民 二郎", "ichiro@example.jp", "jiro@example.jp")


def watch_frames(page: Page, frames: list[str]) -> None:
    """Keep every signaling frame the page receives."""
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))


async def assert_no_real_names(page: Page, frames: list[str]) -> None:
    html = await page.content()
    for name in REAL_NAMES:
        assert name not in html, f"{name!r} shown on a resident's page"
        assert not [f for f in frames if name in f], f"{name!r} sent to a resident's page"


async def test_a_resident_gets_the_floor_and_is_heard_only_while_holding_it(
    live_server: LiveServer, new_page: NewPage
) -> None:
    cid = await live_server.consultation("public_hearing", "駅前再開発についての意見交換会")
    body = {"role": "resident", "name": "住民 一郎", "email": "ichiro@example.jp"}
    path = f"/api/consultations/{cid}/participants"
    one = await live_server.call("POST", path, body)
    body = {"role": "resident", "name": "住民 二郎", "email": "jiro@example.jp"}
    two = await live_server.call("POST", path, body)
    pseudonym_one, pseudonym_two = one["display_name"], two["display_name"]

    chair = await new_page(DESKTOP)
    await staff_enters(chair, live_server, cid, role="chair")

    frames_one: list[str] = []
    frames_two: list[str] = []
    resident1 = await new_page(PHONE)
    watch_frames(resident1, frames_one)
    await join_by_passcode(resident1, live_server, one["join"], mode=VOICE_ONLY)
    resident2 = await new_page(PHONE)
    watch_frames(resident2, frames_two)
    await join_by_passcode(resident2, live_server, two["join"], mode=VOICE_ONLY)
    await expect(resident2.locator("h1")).to_have_text("待合室でお待ちください")
    await admit(chair, pseudonym_one)
    await admit(chair, pseudonym_two)
    for page in (resident1, resident2):
        await expect(page.locator("#hearing")).to_be_visible()
        # audio-only residents see the speaker and the queue, not a wall of empty tiles
        for pseudonym in (pseudonym_one, pseudonym_two):
            await expect(page.locator("figure.tile", has_text=pseudonym)).to_have_count(0)

    await resident1.get_by_role("button", name="手を挙げる").click()
    await expect(resident1.locator("#hand-position")).to_have_text("発言待ちの1番目です")
    await expect(resident2.locator("#queue-list")).to_contain_text(pseudonym_one)
    await open_panel(chair, "btn-manage")
    await expect(chair.locator("#hand-queue")).to_contain_text(pseudonym_one)
    await screenshot(chair, "hearing-chair-desktop")
    await screenshot(resident2, "hearing-queue-phone")

    await chair.get_by_role("button", name=f"発言を許可: {pseudonym_one}").click()
    await expect(resident1.locator("#floor-banner")).to_contain_text("あなたが発言中です。残り")
    await expect(resident2.locator("#floor-banner")).to_contain_text(f"発言中: {pseudonym_one}")
    await expect(resident2.locator("#hearing-countdown")).to_have_text(re.compile(r"^[0-3]:\d\d$"))
    await screenshot(resident1, "hearing-speaking-phone")
    await screenshot(resident2, "hearing-phone")
    await assert_accessible(resident2, "hearing view of a resident")
    await assert_accessible(chair, "hearing view of the chair")

    media = MediaChecks()
    heard = HAVE_MEDIA and await media.run(wait_packets_flow(chair, pseudonym_one, "audio"))

    await chair.locator("#btn-revoke").click()
    await expect(resident2.locator("#hearing-speaker-name")).to_have_text(
        "いま発言している人はいません。"
    )
    await expect(resident1.locator("#floor-banner")).to_be_hidden()
    if heard:
        # the producer is paused at the SFU: nothing more arrives (a few packets in flight)
        await asyncio.sleep(1.0)
        before = await packets_from(chair, pseudonym_one, "audio")
        await asyncio.sleep(2.0)
        after = await packets_from(chair, pseudonym_one, "audio")
        assert after - before <= 5, f"audio kept flowing after revoke: {before} -> {after}"

    # a private question to staff reaches the chair, not the other resident
    await resident2.get_by_role("button", name="チャット").click()
    await resident2.get_by_label("メッセージ").fill("駐輪場の台数について質問があります。")
    await resident2.get_by_label("送り先").select_option("staff")
    await resident2.get_by_role("button", name="送信する").click()
    await expect(resident2.locator("#chat-log")).to_contain_text("職員あて")
    await open_panel(chair, "btn-chat")
    await expect(chair.locator("#chat-log")).to_contain_text("駐輪場の台数について質問があります。")
    await expect(chair.locator("#chat-log")).to_contain_text(pseudonym_two)
    await resident1.get_by_role("button", name="チャット").click()
    await expect(resident1.locator("#chat-log")).to_have_text("まだメッセージはありません。")

    await assert_no_real_names(resident1, frames_one)
    await assert_no_real_names(resident2, frames_two)
    media.finish()
