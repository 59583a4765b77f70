"""From invitation mail to the room: what a mail says lets its reader in, through /ws."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.signaling_client import SignalingClient
from tests.smtpserver import SmtpServer, wait_until
from tests.test_registration import text_of

Client = TestClient[Any, Any]


@pytest.fixture
def client(smtp_client: Client) -> Client:
    """The app mailing through the test SMTP server, logged in as staff."""
    return smtp_client


async def test_the_link_and_the_id_with_passcode_in_the_mail_both_let_the_heir_in(
    client: Client, smtp: SmtpServer
) -> None:
    starts = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    body = {"template": "bereavement", "title": "山田家", "starts_at": starts}
    cid = (await (await client.post("/api/consultations", json=body)).json())["id"]
    await client.post(
        f"/api/consultations/{cid}/participants",
        json={"role": "heir", "name": "山田 花子", "email": "hanako@example.org"},
    )
    await wait_until(lambda: len(smtp.received()) == 1, what="the invitation mail")
    text = text_of(smtp.received()[0])
    link = re.search(r"/j/([\w-]+)", text)
    join_id = re.search(r"ID：([\d ]+)", text)
    passcode = re.search(r"パスコード：(\d+)", text)
    assert link and join_id and passcode, text

    url = str(client.make_url("/ws"))
    by_link = await SignalingClient.connect(url)
    by_passcode = await SignalingClient.connect(url)
    try:
        lobby = await by_link.join(expect="lobby", via="link", token=link.group(1))
        assert lobby["consultation"]["id"] == cid
        await by_link.close()
        # the ID as printed (with spaces), typed by hand
        await by_passcode.join(
            expect="lobby", via="passcode", join_id=join_id.group(1), passcode=passcode.group(1)
        )
        wrong = {"type": "join", "via": "passcode", "join_id": join_id.group(1), "passcode": "1"}
        await by_passcode.expect_error(wrong, "already_joined")
    finally:
        await by_passcode.close()
        await by_link.close()
