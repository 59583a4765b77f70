"""The signaling WebSocket against a real server on 127.0.0.1 (no media in this file)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server import signaling
from server.db.models import Consultation, Event
from server.media import ice_servers
from server.rooms import ROOMS
from server.settings import load_settings
from server.signaling import MAX_FRAME
from server.staff import add_staff
from server.state import DB
from tests.conftest import STAFF_PASSWORD, AiohttpClient
from tests.signaling_client import Invitee, SignalingClient, credentials, seed

Client = TestClient[Any, Any]


@pytest.fixture
async def server(app: web.Application, aiohttp_client: AiohttpClient) -> Client:
    """The app served on 127.0.0.1 with a staff account `clerk`."""
    client = await aiohttp_client(app)
    async with app[DB].begin() as session:
        await add_staff(session, "clerk", "市民課 佐藤", STAFF_PASSWORD)
    return client


class Clients:
    """Opens signaling clients and closes them all at the end of a test."""

    def __init__(self, server: Client) -> None:
        self.server = server
        self.url = str(server.make_url("/ws"))
        self.opened: list[SignalingClient] = []
        self.logged_in = False

    async def anonymous(self, local_ip: str | None = None) -> SignalingClient:
        client = await SignalingClient.connect(self.url, local_ip=local_ip)
        self.opened.append(client)
        return client

    async def invitee(self, who: Invitee, via: str = "passcode", **kw: Any) -> SignalingClient:
        client = await self.anonymous(kw.pop("local_ip", None))
        await client.join(expect=kw.pop("expect", "joined"), **credentials(who, via), **kw)
        return client

    async def staff(self, consultation: str, role: str | None = None) -> SignalingClient:
        if not self.logged_in:
            response = await self.server.post(
                "/api/login", json={"login": "clerk", "password": STAFF_PASSWORD}
            )
            assert response.status == 200
            self.logged_in = True
        ws = await self.server.session.ws_connect(self.url)
        client = SignalingClient(self.server.session, ws, owns_session=False)
        self.opened.append(client)
        fields: dict[str, Any] = {"via": "staff", "consultation": consultation}
        if role is not None:
            fields["role"] = role
        await client.join(**fields)
        return client


async def flush(server: Client) -> None:
    """Write the event logs of every live room now."""
    for live in list(server.app[ROOMS].live.values()):
        await live.settle()


@pytest.fixture
async def clients(server: Client) -> AsyncIterator[Clients]:
    opened = Clients(server)
    yield opened
    for client in opened.opened:
        await client.close()


async def test_join_by_passcode_and_by_link(server: Client, clients: Clients) -> None:
    public_id, (heir_a, heir_b) = await seed(
        server.app, "bereavement", [("heir", "鈴木 一郎"), ("heir", "鈴木 花子")]
    )
    staff = await clients.staff(public_id)
    assert staff.me["role"] == "staff"
    a = await clients.invitee(heir_a, "passcode", expect="lobby")
    b = await clients.invitee(heir_b, "link", expect="lobby")
    lobby = await staff.wait("lobby_changed", lambda m: len(m["lobby"]) == 2)
    assert [v["name"] for v in lobby["lobby"]] == ["鈴木 一郎", "鈴木 花子"]
    for member in lobby["lobby"]:
        await staff.send({"type": "admit", "id": member["id"]})
    joined = await a.wait("joined")
    assert joined["consultation"]["id"] == public_id
    assert joined["ice_servers"] == []  # never a public STUN server
    await b.wait("joined")
    await staff.wait("participant_joined")
    async with server.app[DB]() as session:
        consultation = await session.scalar(
            select(Consultation).where(Consultation.public_id == public_id)
        )
        assert consultation is not None and consultation.state == "live"


async def test_the_server_declines_compression_that_browsers_offer(server: Client) -> None:
    # a zlib state per connection would cost the server ~0.1 MB per participant
    ws = await server.session.ws_connect(server.make_url("/ws"), compress=15)
    try:
        assert ws.compress == 0
        await ws.send_json({"type": "ping", "ref": 1})
        reply = await ws.receive_json(timeout=5)
        assert reply == {"type": "pong", "ref": 1}
    finally:
        await ws.close()


async def test_lobby_deny_closes_the_connection(server: Client, clients: Clients) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    staff = await clients.staff(public_id)
    waiting = await clients.invitee(heir, expect="lobby")
    lobby = await staff.wait("lobby_changed", lambda m: bool(m["lobby"]))
    await staff.send({"type": "deny", "id": lobby["lobby"][0]["id"]})
    assert await waiting.wait("denied") == {"type": "denied"}
    assert await waiting.closed() == 1000
    await staff.wait("lobby_changed", lambda m: not m["lobby"])


async def test_wrong_credentials_are_refused_clearly(server: Client, clients: Clients) -> None:
    _, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    client = await clients.anonymous()
    wrong = {"type": "join", "via": "passcode", "join_id": heir.join_id, "passcode": "000000x"}
    await client.expect_error(wrong, "bad_credentials")
    await client.expect_error({"type": "join", "via": "link", "token": "nope"}, "bad_credentials")
    await client.expect_error({"type": "join", "via": "carrier-pigeon"}, "bad_field")
    # the connection stays open for another attempt
    await client.join(**credentials(heir), expect="lobby")


async def test_expired_invitation_is_refused(server: Client, clients: Clients) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    _, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")], expires_at=past)
    client = await clients.anonymous()
    await client.expect_error({"type": "join", **credentials(heir, "link")}, "expired")


async def test_participants_wait_until_the_room_opens_but_hosts_may_come_early(
    server: Client, clients: Clients
) -> None:
    public_id, (staff, heir) = await seed(
        server.app, "bereavement", [("staff", "職員 佐藤"), ("heir", "鈴木")]
    )
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    async with server.app[DB].begin() as session:
        consultation = await session.scalar(
            select(Consultation).where(Consultation.public_id == public_id)
        )
        assert consultation is not None
        consultation.starts_at = starts
    client = await clients.anonymous()
    refused = await client.expect_error({"type": "join", **credentials(heir)}, "too_early")
    assert refused["opens_at"] == int((starts - dt.timedelta(minutes=30)).timestamp() * 1000)
    host = await clients.anonymous()
    await host.join(**credentials(staff, "link"))


async def test_five_wrong_passcodes_lock_the_invitation_out(
    server: Client, clients: Clients
) -> None:
    _, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    wrong = {"type": "join", "via": "passcode", "join_id": heir.join_id, "passcode": "999999"}
    for _ in range(5):
        client = await clients.anonymous()
        await client.expect_error(wrong, "bad_credentials")
    # locked: even the right passcode is refused, with the same answer as a wrong one
    client = await clients.anonymous()
    await client.expect_error({"type": "join", **credentials(heir)}, "bad_credentials")


async def test_many_failures_from_one_address_lock_it_out(server: Client, clients: Clients) -> None:
    for _ in range(4):
        client = await clients.anonymous()
        for _ in range(4):
            await client.expect_error(
                {"type": "join", "via": "link", "token": "guess"}, "bad_credentials"
            )
    client = await clients.anonymous()
    for _ in range(4):
        await client.expect_error(
            {"type": "join", "via": "link", "token": "guess"}, "bad_credentials"
        )
    error = await client.expect_error({"type": "join", "via": "link", "token": "x"}, "locked_out")
    assert error["retry_after"] > 0


async def test_five_failed_joins_close_the_connection(server: Client, clients: Clients) -> None:
    client = await clients.anonymous()
    for _ in range(4):
        await client.expect_error({"type": "join", "via": "link", "token": "x"}, "bad_credentials")
    error = await client.expect_error(
        {"type": "join", "via": "link", "token": "x"}, "too_many_attempts"
    )
    assert error["fatal"] is True
    assert await client.closed() == 4000


async def test_the_template_decides_how_each_role_joins(server: Client, clients: Clients) -> None:
    _, (resident,) = await seed(server.app, "public_hearing", [("resident", "住民")])
    client = await clients.anonymous()
    await client.expect_error(
        {"type": "join", **credentials(resident, "link")}, "join_method_not_allowed"
    )


async def test_staff_join_needs_a_login(server: Client, clients: Clients) -> None:
    public_id, _ = await seed(server.app, "bereavement", [])
    client = await clients.anonymous()
    await client.expect_error(
        {"type": "join", "via": "staff", "consultation": public_id}, "login_required"
    )


async def hearing(
    server: Client, clients: Clients, residents: int = 4
) -> tuple[SignalingClient, SignalingClient, list[SignalingClient], list[Invitee]]:
    people = [("panel", "説明者 高橋")] + [("resident", f"住民 {i}") for i in range(residents)]
    public_id, invitees = await seed(server.app, "public_hearing", people)
    chair = await clients.staff(public_id, "chair")
    panel = await clients.invitee(invitees[0])
    joined = []
    for index, who in enumerate(invitees[1:]):
        client = await clients.invitee(who, expect="lobby", local_ip=f"127.0.3.{index + 1}")
        joined.append(client)
    lobby = await chair.wait("lobby_changed", lambda m: len(m["lobby"]) == residents)
    for view in lobby["lobby"]:
        await chair.send({"type": "admit", "id": view["id"]})
    for client in joined:
        joined_message = await client.wait("joined")
        client.me = joined_message["you"]
    return chair, panel, joined, invitees[1:]


async def test_hands_queue_in_order_and_the_floor_moves(server: Client, clients: Clients) -> None:
    chair, panel, (a, b, c, _d), _ = await hearing(server, clients)
    for client in (b, c, a):
        await client.send({"type": "raise_hand"})
        await chair.wait("hands", lambda m, me=client.me["id"]: m["queue"][-1:] == [me])
    order = [b.me["id"], c.me["id"], a.me["id"]]
    for viewer in (panel, a, b, c):
        await viewer.wait("hands", lambda m: m["queue"] == order)
    await chair.send({"type": "grant_floor"})
    floor = await a.wait("floor", lambda m: m["holder"] is not None)
    assert floor["holder"] == b.me["id"]
    assert floor["turn_seconds"] == 180 and floor["ends_at"] > 0
    await a.wait("hands", lambda m: m["queue"] == order[1:])
    await chair.send({"type": "revoke_floor"})
    ended = await c.wait("floor", lambda m: m["holder"] is None)
    assert ended["reason"] == "revoked"
    await flush(server)
    async with server.app[DB]() as session:
        kinds = list(await session.scalars(select(Event.kind)))
    assert kinds.count("hand_raised") == 3
    assert "floor_granted" in kinds and "floor_ended" in kinds


FORBIDDEN = [
    ("resident", {"type": "grant_floor"}, "grant_floor"),
    ("resident", {"type": "revoke_floor"}, "grant_floor"),
    ("resident", {"type": "admit", "id": "TARGET"}, "admit"),
    ("resident", {"type": "deny", "id": "TARGET"}, "admit"),
    ("resident", {"type": "mute", "id": "TARGET", "kind": "audio"}, "mute_others"),
    ("resident", {"type": "ask_unmute", "id": "TARGET", "kind": "audio"}, "mute_others"),
    ("resident", {"type": "remove", "id": "TARGET"}, "remove"),
    ("resident", {"type": "lock", "locked": True}, "admit"),
    ("resident", {"type": "end"}, "remove"),
    ("resident", {"type": "set_media", "video": True}, "publish_video"),
    ("resident", {"type": "lower_hand", "id": "TARGET"}, "grant_floor"),
    ("panel", {"type": "grant_floor", "id": "TARGET"}, "grant_floor"),
    ("panel", {"type": "mute", "id": "TARGET", "kind": "audio"}, "mute_others"),
    ("panel", {"type": "remove", "id": "TARGET"}, "remove"),
    ("panel", {"type": "end"}, "remove"),
]


async def test_forbidden_actions_per_role_are_refused_with_their_code(
    server: Client, clients: Clients
) -> None:
    chair, panel, (a, b, _c, _d), _ = await hearing(server, clients)
    actors = {"resident": a, "panel": panel}
    for role, message, permission in FORBIDDEN:
        if message.get("id") == "TARGET":
            message = {**message, "id": b.me["id"]}
        error = await actors[role].expect_error(message, "forbidden")
        assert error["permission"] == permission, (role, message)
    # and the room carries on
    await a.send({"type": "raise_hand"})
    await chair.wait("hands", lambda m: m["queue"] == [a.me["id"]])


async def test_malformed_messages_do_not_break_a_room(server: Client, clients: Clients) -> None:
    chair, _panel, (a, b, _c, _d), _ = await hearing(server, clients)
    for raw, code in [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"no": "type"}', "bad_message"),
        ('{"type": 7}', "bad_message"),
        ("[" * 30000 + "]" * 30000, "bad_json"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "chat"}', "bad_field"),
        ('{"type": "chat", "text": "x", "to": "everyone"}', "bad_field"),
        ('{"type": "mute", "id": 5, "kind": "audio"}', "bad_field"),
        ('{"type": "set_media", "audio": "yes"}', "bad_field"),
        ('{"type": "join", "via": "link", "token": "x"}', "already_joined"),
        ('{"type": "offer", "sdp": "garbage", "sources": []}', "bad_field"),
        ('{"type": "ping", "ref": {"x": 1}}', "bad_field"),
        (json.dumps({"type": "chat", "text": "x" * (MAX_FRAME + 1)}), "too_large"),
        (json.dumps({"type": "chat", "text": "あ" * 2001}), "chat_too_long"),
    ]:
        await a.send_raw(raw)
        error = await a.wait("error")
        assert error["code"] == code, (raw[:60], error)
    await a.ws.send_bytes(b"\x00\x01")
    assert (await a.wait("error"))["code"] == "bad_message"
    # still connected, and the room works for everyone
    assert (await a.request({"type": "ping"}, "pong"))["type"] == "pong"
    await a.send({"type": "chat", "text": "こんにちは"})
    assert (await b.wait("chat"))["text"] == "こんにちは"
    assert (await chair.wait("chat"))["from"] == a.me["id"]


async def test_messages_before_join_are_refused(server: Client, clients: Clients) -> None:
    client = await clients.anonymous()
    await client.expect_error({"type": "raise_hand"}, "not_joined")
    assert (await client.request({"type": "ping"}, "pong"))["type"] == "pong"


async def test_a_flood_is_rate_limited_and_the_connection_stays(
    server: Client, clients: Clients
) -> None:
    chair, _panel, (a, b, _c, _d), _ = await hearing(server, clients)
    await asyncio.gather(*(a.send({"type": "ping"}) for _ in range(150)))
    error = await a.wait("error")
    assert error["code"] == "rate_limited"
    pongs = [m for m in a.messages if m["type"] == "pong"]
    assert len(pongs) <= 61
    await asyncio.sleep(0.3)  # let the bucket refill: this is waiting, not asserting
    assert (await a.request({"type": "ping"}, "pong"))["type"] == "pong"
    await b.send({"type": "raise_hand"})
    await chair.wait("hands", lambda m: m["queue"] == [b.me["id"]])


async def test_reconnect_keeps_role_admission_and_hand_position(
    server: Client, clients: Clients
) -> None:
    chair, _panel, (a, b, c, _d), _ = await hearing(server, clients)
    for client in (a, b, c):
        await client.send({"type": "raise_hand"})
        await chair.wait("hands", lambda m, me=client.me["id"]: m["queue"][-1:] == [me])
    queue = [a.me["id"], b.me["id"], c.me["id"]]
    token = (next(m for m in b.messages if m["type"] == "joined"))["resume_token"]
    await b.ws.close()
    left = await chair.wait("participant_updated", lambda m: not m["participant"]["connected"])
    assert left["participant"]["id"] == b.me["id"]
    again = await clients.anonymous()
    joined = await again.join(via="resume", token=token)
    assert joined["you"]["id"] == b.me["id"] and joined["you"]["role"] == "resident"
    assert joined["hands"] == queue
    back = await chair.wait(
        "participant_updated",
        lambda m: m["participant"]["id"] == b.me["id"] and m["participant"]["connected"],
    )
    assert back["participant"]["hand"] == 2


async def test_a_second_connection_replaces_the_first(server: Client, clients: Clients) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    staff = await clients.staff(public_id)
    first = await clients.invitee(heir, expect="lobby")
    lobby = await staff.wait("lobby_changed", lambda m: bool(m["lobby"]))
    await staff.send({"type": "admit", "id": lobby["lobby"][0]["id"]})
    await first.wait("joined")
    second = await clients.invitee(heir)  # admitted already: no lobby again
    assert second.me["id"] == lobby["lobby"][0]["id"]
    assert await first.closed() == 4001


async def test_chat_to_staff_is_private_and_stored(server: Client, clients: Clients) -> None:
    chair, panel, (a, b, _c, _d), _ = await hearing(server, clients)
    await a.send({"type": "chat", "text": "質問です", "to": "staff"})
    got = await chair.wait("chat")
    assert got["to"] == "staff" and got["name"] == a.me["name"]
    await a.wait("chat")
    await a.send({"type": "chat", "text": "全員へ"})
    assert (await b.wait("chat"))["text"] == "全員へ"
    assert [m["text"] for m in b.messages if m["type"] == "chat"] == ["全員へ"]
    assert [m["text"] for m in panel.messages if m["type"] == "chat"] in ([], ["全員へ"])
    await flush(server)
    async with server.app[DB]() as session:
        texts = [e.data["text"] for e in await session.scalars(select(Event)) if e.kind == "chat"]
    assert "質問です" in texts


async def test_remove_lock_and_end(server: Client, clients: Clients) -> None:
    chair, _panel, (a, b, c, _d), invitees = await hearing(server, clients)
    await chair.expect_error({"type": "grant_floor", "id": "m-nobody"}, "not_found")
    await chair.send({"type": "remove", "id": a.me["id"]})
    assert (await a.wait("removed")) == {"type": "removed"}
    assert await a.closed() == 1000
    await b.wait("participant_left", lambda m: m["reason"] == "removed")
    again = await clients.anonymous()
    await again.expect_error({"type": "join", **credentials(invitees[0])}, "removed")
    await chair.send({"type": "lock", "locked": True})
    await b.wait("locked", lambda m: m["locked"])
    await flush(server)
    async with server.app[DB]() as session:
        assert await session.scalar(select(Consultation.locked)) is True
    await chair.send({"type": "end"})
    await c.wait("ended")
    assert await c.closed() == 1000
    later = await clients.anonymous()
    await later.expect_error({"type": "join", **credentials(invitees[3])}, "consultation_closed")


async def test_no_frame_to_another_participant_names_an_anonymous_resident(
    server: Client, clients: Clients
) -> None:
    chair, panel, residents, invitees = await hearing(server, clients)
    for client in residents:
        await client.send({"type": "raise_hand"})
        await client.send({"type": "chat", "text": "意見があります"})
    await chair.send({"type": "grant_floor"})
    await chair.wait("hands", lambda m: len(m["queue"]) == len(residents) - 1)
    for client in (panel, *residents):
        await client.wait("hands", lambda m: len(m["queue"]) == len(residents) - 1)
    forbidden = [w for who in invitees for w in (who.name, who.email)]
    forbidden += [f"127.0.3.{i + 1}" for i in range(len(residents))]
    forbidden += [who.join_id for who in invitees]
    for client in (chair, panel, *residents):
        for frame in client.frames:
            for word in forbidden:
                assert word not in frame, (word, frame[:200])
    # the registrar (see_identities) does see who is behind each pseudonym
    public_id = (next(m for m in chair.messages if m["type"] == "joined"))["consultation"]["id"]
    registrar = await clients.staff(public_id, "registrar")
    joined = next(m for m in registrar.messages if m["type"] == "joined")
    seen = {v["identity"]["email"] for v in joined["participants"] if "identity" in v}
    assert seen == {who.email for who in invitees}


def test_turn_credentials_are_time_limited_and_signed() -> None:
    settings = load_settings(turn_urls="turn:10.0.0.5:3478", turn_secret="s3cret")
    (server,) = ice_servers(settings, now=1000)
    assert server["urls"] == ["turn:10.0.0.5:3478"]
    assert server["username"] == f"{1000 + 12 * 3600}:madoguchi"
    digest = hmac.new(b"s3cret", server["username"].encode(), hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(digest).decode()


async def test_a_role_that_asks_for_a_display_name_is_shown_by_it(
    server: Client, clients: Clients
) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木 一郎")])
    staff = await clients.staff(public_id)
    await clients.invitee(heir, expect="lobby", display_name="いちろう（長男）")
    lobby = await staff.wait("lobby_changed", lambda m: bool(m["lobby"]))
    assert lobby["lobby"][0]["name"] == "いちろう（長男）"


async def test_a_frame_over_one_mebibyte_closes_with_1009(server: Client, clients: Clients) -> None:
    client = await clients.anonymous()
    await client.send_raw(json.dumps({"type": "ping", "pad": "x" * (1024 * 1024 + 10)}))
    assert await client.closed() == 1009


async def test_a_connection_that_does_not_join_is_closed(
    server: Client, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signaling, "JOIN_TIMEOUT", 0.3)
    client = await clients.anonymous()
    error = await client.wait("error")
    assert error["code"] == "join_timeout" and error["fatal"] is True
    assert await client.closed() == 4000


async def test_a_flood_that_goes_on_closes_the_connection(server: Client, clients: Clients) -> None:
    client = await clients.anonymous()
    await asyncio.gather(*(client.send({"type": "ping"}) for _ in range(700)))
    error = await client.wait("error", lambda m: m["code"] == "flood")
    assert error["fatal"] is True
    assert await client.closed() == 4000
