"""Invitations through the REST API: mailed by a real SMTP server, or kept in the local outbox."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from icalendar import Calendar

from server.app import create_app
from server.settings import Settings
from tests.conftest import AiohttpClient, logged_in
from tests.smtpserver import SmtpServer, wait_until

Client = TestClient[Any, Any]


async def new_heir(client: Client, email: str = "hanako@example.org") -> tuple[str, dict[str, Any]]:
    body = {"template": "bereavement", "title": "山田家", "starts_at": "2026-12-01T10:00:00+09:00"}
    cid = (await (await client.post("/api/consultations", json=body)).json())["id"]
    response = await client.post(
        f"/api/consultations/{cid}/participants",
        json={"role": "heir", "name": "山田 花子", "email": email},
    )
    assert response.status == 201, await response.text()
    return cid, await response.json()


async def test_invitation_is_mailed_with_link_id_passcode_checklist_and_ics(
    smtp_client: Client, smtp: SmtpServer
) -> None:
    _, heir = await new_heir(smtp_client)
    await wait_until(lambda: len(smtp.received()) == 1, what="the invitation mail")
    [message] = smtp.received()
    assert message["To"] == "hanako@example.org"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert heir["join"]["link"] in text
    assert heir["join"]["passcode"] in text
    assert "戸籍謄本" in text  # from the bereavement template's checklist
    [ics] = [
        part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"
    ]
    calendar = Calendar.from_ical(ics.get_content())
    [event] = calendar.walk("VEVENT")
    assert event["DTSTART"].dt.isoformat() == "2026-12-01T01:00:00+00:00"


async def test_resend_issues_new_secrets_and_mails_them_again(
    smtp_client: Client, smtp: SmtpServer
) -> None:
    cid, heir = await new_heir(smtp_client)
    await wait_until(lambda: len(smtp.received()) == 1, what="the first mail")
    response = await smtp_client.post(f"/api/consultations/{cid}/participants/{heir['id']}/resend")
    assert response.status == 200, await response.text()
    again = await response.json()
    assert again["join"]["join_id"] == heir["join"]["join_id"]
    assert again["join"]["link"] != heir["join"]["link"]
    await wait_until(lambda: len(smtp.received()) == 2, what="the second mail")
    second = smtp.received()[1].get_body(("plain",))
    assert again["join"]["passcode"] in second.get_content()  # type: ignore[union-attr]

    async def both_sent() -> bool:
        mails = (await (await smtp_client.get("/api/mail?status=sent")).json())["mail"]
        return len(mails) == 2

    await wait_until(both_sent, what="both mails marked sent")


async def test_revoke_then_revoke_again(smtp_client: Client) -> None:
    cid, heir = await new_heir(smtp_client)
    url = f"/api/consultations/{cid}/participants/{heir['id']}/revoke"
    assert (await (await smtp_client.post(url)).json()) == {"revoked": True}
    assert (await (await smtp_client.post(url)).json()) == {"revoked": False}
    detail = await (await smtp_client.get(f"/api/consultations/{cid}")).json()
    assert detail["participants"][0]["invitation"]["revoked"] is True


async def test_unknown_participant_is_404(smtp_client: Client) -> None:
    cid, _ = await new_heir(smtp_client)
    response = await smtp_client.post(f"/api/consultations/{cid}/participants/999999/resend")
    assert response.status == 404


async def test_without_smtp_the_mail_waits_in_the_outbox_for_staff(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(create_app(settings))
    anonymous = await client.get("/outbox", allow_redirects=False)
    assert anonymous.status == 302
    await logged_in(client)
    _, heir = await new_heir(client)

    async def in_outbox() -> bool:
        page = await (await client.get("/outbox")).text()
        return heir["join"]["link"] in page

    await wait_until(in_outbox, what="the invitation in the outbox")
    page = await (await client.get("/outbox")).text()
    assert "hanako@example.org" in page
    mails = (await (await client.get("/api/mail?status=outbox")).json())["mail"]
    assert [m["to"] for m in mails] == ["hanako@example.org"]


async def test_mail_list_rejects_an_unknown_status(staff_client: Client) -> None:
    response = await staff_client.get("/api/mail?status=lost")
    assert response.status == 400
