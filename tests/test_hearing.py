"""Live consultations with media: real aiortc clients, the documented protocol, a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import RTCSessionDescription

from server.app import create_app
from server.media import SfuMedia
from server.rooms import ROOMS
from server.settings import Settings
from server.staff import add_staff
from server.state import DB
from server.templates import Floor, load_templates
from tests.conftest import REPO, STAFF_PASSWORD, AiohttpClient
from tests.signaling_client import (
    BarTrack,
    MediaPeer,
    SignalingClient,
    ToneTrack,
    credentials,
    seed,
    set_local,
)

Client = TestClient[Any, Any]
TURN_SECONDS = 3


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait for a condition (polling); fail naming it after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def server(settings: Settings, aiohttp_client: AiohttpClient) -> Client:
    """The app on 127.0.0.1 with the shipped templates, hearings with short timed turns."""
    templates = load_templates(REPO / "consult_templates")
    hearing = templates["public_hearing"]
    templates["public_hearing"] = dataclasses.replace(
        hearing, floor=Floor(mode="raise_hand", turn_seconds=TURN_SECONDS)
    )
    app: web.Application = create_app(settings, templates)
    client = await aiohttp_client(app)
    async with app[DB].begin() as session:
        await add_staff(session, "clerk", "市民課 佐藤", STAFF_PASSWORD)
    response = await client.post("/api/login", json={"login": "clerk", "password": STAFF_PASSWORD})
    assert response.status == 200
    return client


class Party:
    """Everyone in one test: signaling clients and their media peers, closed at the end."""

    def __init__(self, server: Client) -> None:
        self.server = server
        self.url = str(server.make_url("/ws"))
        self.clients: list[SignalingClient] = []
        self.peers: list[MediaPeer] = []

    async def staff(self, public_id: str, role: str) -> SignalingClient:
        ws = await self.server.session.ws_connect(self.url)
        client = SignalingClient(self.server.session, ws, owns_session=False)
        self.clients.append(client)
        await client.join(via="staff", consultation=public_id, role=role)
        return client

    async def guest(self, fields: dict[str, Any], local_ip: str | None = None) -> SignalingClient:
        client = await SignalingClient.connect(self.url, local_ip=local_ip)
        self.clients.append(client)
        await client.join(expect="lobby", **fields)
        return client

    async def media(self, client: SignalingClient, sources: dict[str, Any]) -> MediaPeer:
        peer = MediaPeer(client)
        self.peers.append(peer)
        await peer.start(sources)
        return peer

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.peers), return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


@pytest.fixture
async def party(server: Client) -> AsyncIterator[Party]:
    everyone = Party(server)
    yield everyone
    await everyone.close()


async def admit_all(chair: SignalingClient, waiting: list[SignalingClient]) -> None:
    lobby = await chair.wait("lobby_changed", lambda m: len(m["lobby"]) == len(waiting))
    for view in lobby["lobby"]:
        await chair.send({"type": "admit", "id": view["id"]})
    for client in waiting:
        client.me = (await client.wait("joined"))["you"]


@pytest.mark.timeout(90)
async def test_bereavement_everyone_receives_everyones_audio_and_video(
    server: Client, party: Party
) -> None:
    heirs = [("heir", f"鈴木 {n}") for n in ("一郎", "次郎", "花子")]
    public_id, invitees = await seed(server.app, "bereavement", heirs)
    staff = await party.staff(public_id, "staff")
    guests = [await party.guest(credentials(who)) for who in invitees]
    await admit_all(staff, guests)
    everyone = [staff, *guests]
    peers = []
    for client in everyone:
        tracks = {"mic": ToneTrack(), "camera": BarTrack(320, 240, fps=10)}
        peers.append(await party.media(client, tracks))

    def all_received() -> bool:
        return all(
            peer.received(other.me["id"], kind) > 5
            for peer, me in zip(peers, everyone, strict=True)
            for other in everyone
            if other is not me
            for kind in ("audio", "video")
        )

    await until(all_received, 30, "every participant's audio and video at every other one")
    views = await staff.wait("participant_updated", lambda m: m["participant"]["video"])
    assert views["participant"]["audio"] is True


@pytest.mark.timeout(120)
async def test_public_hearing_floor_decides_whose_audio_reaches_everyone(
    server: Client, party: Party
) -> None:
    residents_n = 20
    people = [("resident", f"住民 太郎{i}") for i in range(residents_n)]
    public_id, invitees = await seed(server.app, "public_hearing", people)
    chair = await party.staff(public_id, "chair")
    staff = await party.staff(public_id, "staff")
    ips = [f"127.0.1.{i + 10}" for i in range(residents_n)]
    residents = [
        await party.guest(credentials(who), local_ip=ip)
        for who, ip in zip(invitees, ips, strict=True)
    ]
    await admit_all(chair, residents)
    everyone = [chair, staff, *residents]
    # everyone starts media at once, as at the opening of a hearing: offers coalesce
    started = await asyncio.gather(*(party.media(c, {"mic": ToneTrack()}) for c in everyone))
    peers = {client.me["id"]: peer for client, peer in zip(everyone, started, strict=True)}
    chair_id = chair.me["id"]

    def heard(speaker: str, more_than: int) -> Callable[[], bool]:
        return lambda: all(
            peer.received(speaker) > more_than for me, peer in peers.items() if me != speaker
        )

    await until(heard(chair_id, 10), 60, "the chair's audio at every resident")

    # a resident without the floor reaches nobody, while the chair's audio keeps flowing
    base = {me: peer.received(chair_id) for me, peer in peers.items() if me != chair_id}
    await until(
        lambda: all(peers[me].received(chair_id) > n + 25 for me, n in base.items()),
        10,
        "half a second more of the chair's audio",
    )
    for client in residents:
        for peer in peers.values():
            assert peer.received(client.me["id"]) == 0, "audio without the floor got out"
    # and no peer carries an idle m-line for them: consumed only while holding the floor
    media = next(iter(server.app[ROOMS].live.values())).media
    assert isinstance(media, SfuMedia)
    quiet = {client.me["id"] for client in residents}
    resident_producers = [p for p in media.router.producers.values() if p.peer_id in quiet]
    assert len(resident_producers) == residents_n
    assert all(not p.consumers for p in resident_producers)

    # hands queue in order, the same for everyone
    order = [residents[i] for i in (4, 0, 7)]
    for client in order:
        await client.send({"type": "raise_hand"})
    queue = [client.me["id"] for client in order]
    for client in everyone:
        await client.wait("hands", lambda m: m["queue"] == queue)

    # granting the floor makes that resident's audio reach everyone
    first = order[0].me["id"]
    await chair.send({"type": "grant_floor"})
    await until(heard(first, 10), 15, "the first resident's audio at everyone")
    second = order[1].me["id"]
    assert all(peer.received(second) == 0 for peer in peers.values())

    # revoking stops it: after the revoke, no more than packets already in flight arrive
    await chair.send({"type": "revoke_floor"})
    await chair.wait("floor", lambda m: m["holder"] is None and m["reason"] == "revoked")
    await _assert_stops(peers, first, chair_id)

    # a timed turn ends by itself, and the audio stops with it
    await chair.send({"type": "grant_floor"})
    granted = await staff.wait("floor", lambda m: m["holder"] == second)
    assert granted["ends_at"] is not None and granted["turn_seconds"] == TURN_SECONDS
    await until(heard(second, 10), 15, "the second resident's audio at everyone")
    for client in everyone:
        ended = await client.wait("floor", lambda m: m["reason"] == "time_up", within=15)
        assert ended["holder"] is None
    await _assert_stops(peers, second, chair_id)

    # nothing a non-registrar received names, mails or locates an anonymous resident
    forbidden = [w for who in invitees for w in (who.name, who.email, who.join_id)] + ips
    for client in everyone:
        for frame in client.frames:
            for word in forbidden:
                assert word not in frame, (word, frame[:300])


async def _assert_stops(peers: dict[str, MediaPeer], speaker: str, reference: str) -> None:
    await asyncio.sleep(0.5)  # packets already in flight on loopback arrive
    stopped = {me: peer.received(speaker) for me, peer in peers.items()}
    base = {me: peer.received(reference) for me, peer in peers.items() if me != reference}
    await until(
        lambda: all(peers[me].received(reference) > n + 25 for me, n in base.items()),
        10,
        "half a second more of the chair's audio",
    )
    for me, peer in peers.items():
        assert peer.received(speaker) == stopped[me], "audio kept flowing after the floor ended"


@pytest.mark.timeout(60)
async def test_reconnect_gets_media_back_within_five_seconds(server: Client, party: Party) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    staff = await party.staff(public_id, "staff")
    guest = await party.guest(credentials(heir))
    await admit_all(staff, [guest])
    staff_peer = await party.media(staff, {"mic": ToneTrack()})
    guest_peer = await party.media(guest, {"mic": ToneTrack()})
    guest_id = guest.me["id"]
    await until(lambda: guest_peer.received(staff.me["id"]) > 5, 20, "staff audio at the heir")
    await until(lambda: staff_peer.received(guest_id) > 5, 20, "the heir's audio at staff")

    token = next(m for m in guest.messages if m["type"] == "joined")["resume_token"]
    await guest_peer.close()
    await guest.ws.close()
    await staff.wait("participant_updated", lambda m: not m["participant"]["connected"])
    started = time.monotonic()
    again = await SignalingClient.connect(party.url)
    party.clients.append(again)
    joined = await again.join(via="resume", token=token)
    assert joined["you"]["id"] == guest_id
    new_peer = await party.media(again, {"mic": ToneTrack()})
    before = staff_peer.received(guest_id)
    await until(lambda: new_peer.received(staff.me["id"]) > 5, 5, "staff audio again")
    await until(lambda: staff_peer.received(guest_id) > before + 5, 5, "the heir's audio again")
    assert time.monotonic() - started < 5


@pytest.mark.timeout(60)
async def test_a_role_without_publish_permission_cannot_make_a_producer(
    server: Client, party: Party
) -> None:
    public_id, (resident,) = await seed(server.app, "public_hearing", [("resident", "住民")])
    chair = await party.staff(public_id, "chair")
    guest = await party.guest(credentials(resident))
    await admit_all(chair, [guest])
    peer = MediaPeer(guest)
    party.peers.append(peer)
    peer.pc.addTransceiver(BarTrack(320, 240, fps=5), direction="sendonly")
    await set_local(peer.pc, await peer.pc.createOffer())
    sdp = peer.pc.localDescription.sdp
    mid = peer.pc.getTransceivers()[0].mid
    for sources in ({mid: "camera"}, {mid: "screen"}, {mid: "mic"}, {}):
        reply = await guest.request({"type": "offer", "sdp": sdp, "sources": sources}, "answer")
        assert reply["type"] == "error", reply
        assert reply["code"] in ("forbidden", "bad_field"), reply
    bad = await guest.request({"type": "offer", "sdp": "v=0 broken", "sources": {}}, "answer")
    assert bad["code"] == "bad_sdp"
    await guest.expect_error({"type": "answer", "sdp": "v=0 whatever"}, "no_offer")
    await guest.expect_error({"type": "candidate", "candidate": "candidate:junk"}, "bad_field")
    await chair.send({"type": "chat", "text": "聞こえますか"})
    assert (await guest.wait("chat"))["text"] == "聞こえますか"
    media = next(iter(server.app[ROOMS].live.values())).media
    assert isinstance(media, SfuMedia) and not media.router.producers


@pytest.mark.timeout(60)
async def test_screen_share_starts_and_stops_with_renegotiation(
    server: Client, party: Party
) -> None:
    public_id, invitees = await seed(
        server.app, "bereavement", [("heir", "鈴木"), ("heir", "佐藤")]
    )
    staff = await party.staff(public_id, "staff")
    guests = [await party.guest(credentials(who)) for who in invitees]
    await admit_all(staff, guests)
    staff_peer = await party.media(staff, {"mic": ToneTrack()})
    sharer = await party.media(guests[0], {"mic": ToneTrack()})
    viewer = await party.media(guests[1], {})
    sharer_id = guests[0].me["id"]
    await until(lambda: viewer.received(sharer_id) > 5, 20, "the sharer's audio")

    mic = sharer.pc.getTransceivers()[0]
    screen = sharer.pc.addTransceiver(BarTrack(320, 240, fps=5), direction="sendonly")
    reply = await sharer.reoffer({mic: "mic", screen: "screen"})
    assert reply["type"] == "answer", reply
    for peer in (viewer, staff_peer):
        await until(lambda p=peer: p.received(sharer_id, "video") > 3, 20, "the shared screen")
    shown = await staff.wait(
        "participant_updated",
        lambda m: m["participant"]["id"] == sharer_id and m["participant"]["screen"],
    )
    assert shown["participant"]["video"] is False

    screen.direction = "inactive"
    reply = await sharer.reoffer({mic: "mic"})
    assert reply["type"] == "answer", reply
    await staff.wait(
        "participant_updated",
        lambda m: m["participant"]["id"] == sharer_id and not m["participant"]["screen"],
    )
    await asyncio.sleep(0.5)  # packets already in flight arrive
    stopped = viewer.received(sharer_id, "video")
    audio = viewer.received(sharer_id)
    await until(lambda: viewer.received(sharer_id) > audio + 25, 10, "more of the sharer's audio")
    assert viewer.received(sharer_id, "video") == stopped


@pytest.mark.timeout(60)
async def test_graceful_shutdown_closes_every_peer(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    public_id, (heir,) = await seed(app, "bereavement", [("heir", "鈴木")])
    async with app[DB].begin() as session:
        await add_staff(session, "clerk", "市民課 佐藤", STAFF_PASSWORD)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    login = await http.post(
        f"http://127.0.0.1:{port}/api/login", json={"login": "clerk", "password": STAFF_PASSWORD}
    )
    assert login.status == 200
    url = f"http://127.0.0.1:{port}/ws"
    staff = SignalingClient(http, await http.ws_connect(url), owns_session=False)
    await staff.join(via="staff", consultation=public_id)
    guest = await SignalingClient.connect(url)
    await guest.join(expect="lobby", **credentials(heir))
    await admit_all(staff, [guest])
    peers = [MediaPeer(staff), MediaPeer(guest)]
    for peer in peers:
        await peer.start({"mic": ToneTrack()})
    await until(lambda: peers[0].received(guest.me["id"]) > 3, 20, "media before shutdown")
    live = next(iter(app[ROOMS].live.values()))
    media = live.media
    assert isinstance(media, SfuMedia)
    transports = list(media.router.transports.values())
    assert len(transports) == 2

    await runner.cleanup()

    assert await staff.closed() == 1001 and await guest.closed() == 1001
    assert media.router.closed and all(t.closed for t in transports)
    assert not app[ROOMS].live
    for peer in peers:
        await peer.close()
    await guest.close()
    await staff.close()
    await http.close()


@pytest.mark.timeout(60)
async def test_moderator_mute_pauses_at_the_sfu_until_asked_to_unmute(
    server: Client, party: Party
) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    staff = await party.staff(public_id, "staff")
    guest = await party.guest(credentials(heir))
    await admit_all(staff, [guest])
    staff_peer = await party.media(staff, {"mic": ToneTrack()})
    guest_peer = await party.media(guest, {"mic": ToneTrack()})
    heir_id = guest.me["id"]
    await until(lambda: staff_peer.received(heir_id) > 5, 20, "the heir's audio")
    await until(lambda: guest_peer.received(staff.me["id"]) > 5, 20, "the staff's audio")

    await staff.send({"type": "mute", "id": heir_id, "kind": "audio"})
    assert (await guest.wait("muted")) == {"type": "muted", "kind": "audio"}
    await _assert_stops({staff.me["id"]: staff_peer, heir_id: guest_peer}, heir_id, staff.me["id"])
    await guest.expect_error({"type": "set_media", "audio": True}, "muted_by_moderator")

    await staff.send({"type": "ask_unmute", "id": heir_id, "kind": "audio"})
    assert (await guest.wait("unmute_requested"))["kind"] == "audio"
    await guest.send({"type": "set_media", "audio": True})
    before = staff_peer.received(heir_id)
    await until(lambda: staff_peer.received(heir_id) > before + 10, 10, "the heir's audio again")


@pytest.mark.timeout(60)
async def test_glare_a_client_offer_crossing_a_server_offer_is_refused_and_retried(
    server: Client, party: Party
) -> None:
    public_id, (first, second) = await seed(
        server.app, "bereavement", [("heir", "鈴木"), ("heir", "佐藤")]
    )
    staff = await party.staff(public_id, "staff")
    guests = [await party.guest(credentials(who)) for who in (first, second)]
    await admit_all(staff, guests)
    slow = MediaPeer(guests[0])
    party.peers.append(slow)
    mic = slow.pc.addTransceiver(ToneTrack(), direction="sendonly")
    await set_local(slow.pc, await slow.pc.createOffer())
    reply = await guests[0].request(
        {"type": "offer", "sdp": slow.pc.localDescription.sdp, "sources": {mic.mid: "mic"}},
        "answer",
    )
    await slow.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
    # someone else publishes: the server offers to the slow client, who does not answer yet
    await party.media(guests[1], {"mic": ToneTrack()})
    pending = await guests[0].wait("offer")
    crossing = await slow.pc.createOffer()
    error = await guests[0].request(
        {"type": "offer", "sdp": crossing.sdp, "sources": {mic.mid: "mic"}}, "answer"
    )
    assert error["code"] == "glare"
    # the polite side answers the server's offer, then offers again, and both succeed
    await slow._answer(pending)
    slow._task = asyncio.create_task(slow._answer_offers())
    again = await slow.reoffer({mic: "mic"})
    assert again["type"] == "answer"
    await until(lambda: slow.received(guests[1].me["id"]) > 5, 20, "media after the glare")


@pytest.mark.timeout(60)
async def test_a_replacing_connection_gets_media_at_once(server: Client, party: Party) -> None:
    public_id, (heir,) = await seed(server.app, "bereavement", [("heir", "鈴木")])
    staff = await party.staff(public_id, "staff")
    first = await party.guest(credentials(heir))
    await admit_all(staff, [first])
    staff_peer = await party.media(staff, {"mic": ToneTrack()})
    await party.media(first, {"mic": ToneTrack()})
    heir_id = first.me["id"]
    await until(lambda: staff_peer.received(heir_id) > 5, 20, "the heir's audio")

    # the same heir opens the link on another device: no lobby, the first connection goes
    second = await SignalingClient.connect(party.url)
    party.clients.append(second)
    joined = await second.join(**credentials(heir))
    assert joined["you"]["id"] == heir_id
    new_peer = await party.media(second, {"mic": ToneTrack()})  # while the old one closes
    assert await first.closed() == 4001
    before = staff_peer.received(heir_id)
    await until(lambda: new_peer.received(staff.me["id"]) > 5, 10, "staff audio on the new one")
    await until(lambda: staff_peer.received(heir_id) > before + 10, 10, "the heir's new audio")
