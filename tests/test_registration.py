"""Public pre-registration with double opt-in, through the HTTP routes and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.db.models import Participant
from server.invitations import verify_passcode
from server.state import DB
from tests.smtpserver import SmtpServer, wait_until

Client = TestClient[Any, Any]


@pytest.fixture
def client(smtp_client: Client) -> Client:
    """The app mailing through the test SMTP server, logged in as staff."""
    return smtp_client


async def hearing(client: Client, template: str = "public_hearing", **extra: Any) -> str:
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    body = {"template": template, "title": "駅前再開発", "starts_at": starts.isoformat(), **extra}
    response = await client.post("/api/consultations", json=body)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


def text_of(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


async def mail_to(smtp: SmtpServer, address: str, count: int = 1) -> list[EmailMessage]:
    def matching() -> list[EmailMessage]:
        return [m for m in smtp.received() if m["To"] == address]

    await wait_until(lambda: len(matching()) >= count, what=f"{count} mail(s) to {address}")
    return matching()


async def test_register_confirm_and_join_with_the_mailed_id_and_passcode(
    client: Client, smtp: SmtpServer
) -> None:
    cid = await hearing(client)
    info = await (await client.get(f"/api/public/consultations/{cid}/registration")).json()
    assert info["open"] is True
    response = await client.post(
        f"/api/public/consultations/{cid}/registration",
        json={"email": "Taro@Example.org", "name": "田中 太郎"},
    )
    assert (response.status, await response.json()) == (202, {"status": "check_mail"})
    [confirm_mail] = await mail_to(smtp, "taro@example.org")
    token = re.search(r"/r/([\w-]+)", text_of(confirm_mail))
    assert token is not None
    # nothing exists until the link is confirmed
    async with client.app[DB]() as session:
        assert (await session.scalars(select(Participant))).all() == []

    confirmed = await client.post(
        "/api/public/registrations/confirm", json={"token": token.group(1)}
    )
    assert confirmed.status == 200, await confirmed.text()
    secrets = await confirmed.json()
    assert secrets["status"] == "confirmed"
    [_, invitation] = await mail_to(smtp, "taro@example.org", 2)
    assert secrets["passcode"] in text_of(invitation)

    async with client.app[DB]() as session:
        result = await verify_passcode(session, secrets["join_id"], secrets["passcode"])
        assert result.ok and result.participant is not None
        assert result.participant.display_name == "参加者 1"
        assert result.participant.role == "resident"

    again = await client.post("/api/public/registrations/confirm", json={"token": token.group(1)})
    assert (await again.json())["status"] == "already_confirmed"


async def test_the_answer_does_not_tell_who_registered_before(
    client: Client, smtp: SmtpServer
) -> None:
    cid = await hearing(client)
    url = f"/api/public/consultations/{cid}/registration"
    first = await client.post(url, json={"email": "hanako@example.org"})
    [mail] = await mail_to(smtp, "hanako@example.org")
    token = re.search(r"/r/([\w-]+)", text_of(mail))
    assert token is not None
    await client.post("/api/public/registrations/confirm", json={"token": token.group(1)})
    known = await client.post(url, json={"email": "hanako@example.org"})
    unknown = await client.post(url, json={"email": "jiro@example.org"})
    assert first.status == known.status == unknown.status == 202
    assert await known.read() == await unknown.read()
    # the registered address is told by mail, not on the page
    mails = await mail_to(smtp, "hanako@example.org", 3)
    assert "登録済み" in text_of(mails[-1])


@pytest.mark.parametrize(
    ("email", "status", "code"),
    [("not-an-address", 400, "invalid"), ("a b@example.org", 400, "invalid")],
)
async def test_an_invalid_address_is_refused(
    client: Client, email: str, status: int, code: str
) -> None:
    cid = await hearing(client)
    response = await client.post(
        f"/api/public/consultations/{cid}/registration", json={"email": email}
    )
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_registration_closes_at_its_time(client: Client) -> None:
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    cid = await hearing(client, registration_closes_at=past)
    info = await (await client.get(f"/api/public/consultations/{cid}/registration")).json()
    assert info["open"] is False
    response = await client.post(
        f"/api/public/consultations/{cid}/registration", json={"email": "late@example.org"}
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "registration_closed"


async def test_a_consultation_without_registration_has_no_registration_page(
    client: Client,
) -> None:
    cid = await hearing(client, template="bereavement")
    response = await client.get(f"/api/public/consultations/{cid}/registration")
    assert response.status == 404
    page = await client.get(f"/register/{cid}")
    assert page.status == 404
    assert "登録を受け付けていません" in await page.text()


async def test_a_wrong_confirmation_link_is_refused(client: Client) -> None:
    response = await client.post("/api/public/registrations/confirm", json={"token": "x" * 32})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "invalid_link"


async def test_the_plain_html_forms_walk_the_same_path(client: Client, smtp: SmtpServer) -> None:
    cid = await hearing(client)
    form = await client.get(f"/register/{cid}")
    assert form.status == 200
    assert 'type="email"' in await form.text()
    sent = await client.post(f"/register/{cid}", data={"email": "form@example.org", "name": ""})
    assert "メールをご確認ください" in await sent.text()
    [mail] = await mail_to(smtp, "form@example.org")
    token = re.search(r"/r/([\w-]+)", text_of(mail))
    assert token is not None
    # opening the link (as a mail scanner would) confirms nothing
    assert "登録を完了する" in await (await client.get(f"/r/{token.group(1)}")).text()
    async with client.app[DB]() as session:
        assert (await session.scalars(select(Participant))).all() == []
    done = await (await client.post(f"/r/{token.group(1)}")).text()
    assert "登録が完了しました" in done
    assert re.search(r"class='secret'>\d{8}<", done)


async def test_registrations_are_rate_limited_per_address(client: Client) -> None:
    cid = await hearing(client)
    url = f"/api/public/consultations/{cid}/registration"
    statuses = [
        (await client.post(url, json={"email": f"r{i}@example.org"})).status for i in range(11)
    ]
    assert statuses == [202] * 10 + [429]
