"""The staff REST API, through aiohttp's test client against a real SQLite file."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.db.models import Consultation
from server.state import DB

Client = TestClient[Any, Any]
HEARING = {
    "template": "public_hearing",
    "title": "駅前再開発 公聴会",
    "starts_at": "2026-12-01T10:00:00+09:00",
}


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.json()
    assert "error" in body, body
    return dict(body["error"])


async def test_front_page_is_served(client: Client) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert "窓口" in await response.text()
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_unknown_api_route_is_a_json_404(client: Client) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status == 404
    assert (await error_of(response))["code"] == "not_found"


async def test_api_needs_login(client: Client) -> None:
    response = await client.get("/api/consultations")
    assert response.status == 401
    assert (await error_of(response))["code"] == "login_required"


async def test_wrong_password_is_refused_without_saying_which_part(client: Client) -> None:
    response = await client.post("/api/login", json={"login": "nobody", "password": "x" * 12})
    assert response.status == 401
    assert (await error_of(response))["message"] == "Wrong login or password."


async def test_login_is_rate_limited_per_address(client: Client) -> None:
    statuses = []
    for _ in range(12):
        response = await client.post("/api/login", json={"login": "a", "password": "b" * 12})
        statuses.append(response.status)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


async def test_state_change_without_csrf_token_is_refused(staff_client: Client) -> None:
    del staff_client.session.headers["X-CSRF-Token"]
    response = await staff_client.post("/api/consultations", json=HEARING)
    assert response.status == 403
    assert (await error_of(response))["code"] == "csrf"


async def test_create_list_view_and_cancel_a_consultation(staff_client: Client) -> None:
    response = await staff_client.post("/api/consultations", json=HEARING)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["state"] == "scheduled"
    assert created["template_label"]["ja"]
    assert len(created["id"]) == 8

    listing = await (await staff_client.get("/api/consultations")).json()
    assert [c["id"] for c in listing["consultations"]] == [created["id"]]

    detail = await (await staff_client.get(f"/api/consultations/{created['id']}")).json()
    assert detail["participants"] == []

    cancelled = await staff_client.post(f"/api/consultations/{created['id']}/cancel")
    assert (await cancelled.json())["state"] == "cancelled"
    again = await staff_client.post(f"/api/consultations/{created['id']}/cancel")
    assert again.status == 409


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**HEARING, "template": "publc_hearing"}, 400, "template"),
        ({k: v for k, v in HEARING.items() if k != "title"}, 400, "title"),
        ({**HEARING, "title": "   "}, 400, "title"),
        ({**HEARING, "starts_at": "tomorrow"}, 400, "starts_at"),
        ({**HEARING, "starts_at": "2026-12-01T10:00:00"}, 400, "starts_at"),
        ({**HEARING, "duration_minutes": "60"}, 400, "duration_minutes"),
        ({**HEARING, "duration_minutes": 100000}, 400, "duration_minutes"),
    ],
)
async def test_invalid_consultation_names_the_field_and_stores_nothing(
    staff_client: Client, body: dict[str, Any], status: int, field: str
) -> None:
    response = await staff_client.post("/api/consultations", json=body)
    assert response.status == status
    assert (await error_of(response))["field"] == field
    async with staff_client.app[DB]() as session:
        assert await session.scalar(select(func.count(Consultation.id))) == 0


async def test_malformed_json_is_a_clear_error(staff_client: Client) -> None:
    response = await staff_client.post(
        "/api/consultations", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "not valid JSON" in (await error_of(response))["message"]


async def test_unknown_consultation_is_404(staff_client: Client) -> None:
    response = await staff_client.get("/api/consultations/00000000")
    assert response.status == 404


async def create(client: Client, template: str, title: str = "テスト") -> str:
    body = {"template": template, "title": title, "starts_at": "2026-12-01T10:00:00+09:00"}
    response = await client.post("/api/consultations", json=body)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_adding_participants_returns_their_secrets_once(staff_client: Client) -> None:
    cid = await create(staff_client, "bereavement")
    response = await staff_client.post(
        f"/api/consultations/{cid}/participants",
        json={"role": "heir", "name": "山田 花子", "email": "hanako@example.org"},
    )
    assert response.status == 201, await response.text()
    heir = await response.json()
    assert heir["display_name"] == "山田 花子"
    assert heir["join"]["link"].startswith("http://127.0.0.1:8080/j/")
    assert len(heir["join"]["passcode"]) >= 6
    detail = await (await staff_client.get(f"/api/consultations/{cid}")).json()
    [listed] = detail["participants"]
    assert listed["email"] == "hanako@example.org"
    assert listed["invitation"]["join_id"] == heir["join"]["join_id"]
    # the secrets are shown once: never in a later response
    assert heir["join"]["passcode"] not in str(detail)
    assert heir["join"]["link"].rsplit("/", 1)[1] not in str(detail)


async def test_anonymous_residents_get_numbered_pseudonyms(staff_client: Client) -> None:
    cid = await create(staff_client, "public_hearing")
    names = []
    for who in ("田中 太郎", "鈴木 次郎"):
        response = await staff_client.post(
            f"/api/consultations/{cid}/participants", json={"role": "resident", "name": who}
        )
        assert response.status == 201, await response.text()
        names.append((await response.json())["display_name"])
    assert names == ["参加者 1", "参加者 2"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"role": "hier"}, 400, "invalid", "role"),
        ({"role": "heir", "email": "not an address"}, 400, "invalid", "email"),
        ({"role": "heir", "display_name": "x" * 101}, 400, "invalid", "display_name"),
        ({}, 400, "invalid", "role"),
    ],
)
async def test_invalid_participant_is_refused(
    staff_client: Client, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    cid = await create(staff_client, "bereavement")
    response = await staff_client.post(f"/api/consultations/{cid}/participants", json=body)
    assert response.status == status
    error = await error_of(response)
    assert (error["code"], error.get("field")) == (code, field)


async def test_role_limit_from_the_template(staff_client: Client) -> None:
    cid = await create(staff_client, "bereavement")
    statuses = [
        (
            await staff_client.post(f"/api/consultations/{cid}/participants", json={"role": "heir"})
        ).status
        for _ in range(7)
    ]
    assert statuses == [201] * 6 + [409]


async def test_no_participants_join_a_cancelled_consultation(staff_client: Client) -> None:
    cid = await create(staff_client, "legal")
    await staff_client.post(f"/api/consultations/{cid}/cancel")
    response = await staff_client.post(
        f"/api/consultations/{cid}/participants", json={"role": "citizen"}
    )
    assert response.status == 409
    assert (await error_of(response))["code"] == "consultation_closed"


async def test_minutes_list_the_event_log_oldest_first(staff_client: Client) -> None:
    cid = await create(staff_client, "council")
    await staff_client.post(f"/api/consultations/{cid}/cancel")
    minutes = await (await staff_client.get(f"/api/consultations/{cid}/minutes")).json()
    assert [e["kind"] for e in minutes["events"]] == ["created", "cancelled"]
    assert minutes["events"][0]["data"] == {"template": "council"}
