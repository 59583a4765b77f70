"""The SFU's offers keep the header-extension ids the client chose (Chromium refuses others)."""

from __future__ import annotations

import asyncio
import re

from aiortc import MediaStreamTrack, RTCSessionDescription

from sfu import Router, SfuConfig
from sfu.header_extensions import ids_in, remap
from tests.sfu.peers import (
    Publisher,
    SyntheticVideoTrack,
    ToneTrack,
    client_pc,
    set_local,
    wait_for,
)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
# the ids Chromium gives these extensions in its offers
CHROMIUM = {LEVEL: 1, ABS_SEND_TIME: 2, MID: 4}


def as_chromium(sdp: str) -> str:
    """An aiortc offer with Chromium's extension ids."""
    return remap(sdp, CHROMIUM)[0]


def test_remap_keeps_known_ids_and_gives_new_uris_free_ids() -> None:
    sdp = "\r\n".join(
        [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            f"a=extmap:1 {MID}",
            f"a=extmap:2/sendonly {LEVEL}",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            f"a=extmap:1 {MID}",
            "a=extmap:3 urn:x-new",
            "",
        ]
    )
    out, chosen = remap(sdp, {MID: 4, LEVEL: 1, "urn:x-other": 3})
    assert re.findall(r"a=extmap:(\S+) (\S+)", out) == [
        ("4", MID),
        ("1/sendonly", LEVEL),
        ("4", MID),
        ("2", "urn:x-new"),
    ]
    assert chosen["urn:x-new"] == 2
    assert out.endswith("\r\n")


async def test_a_late_offer_from_the_sfu_uses_the_ids_of_the_clients_offer() -> None:
    router = Router(SfuConfig(), router_id="extmap")
    publisher = Publisher(router, "director")
    await publisher.publish(ToneTrack(), SyntheticVideoTrack())
    await wait_for(lambda: len(publisher.producers) == 2, 5, "two producers")

    # a viewer that offers first, with Chromium's ids, as the browser client does
    viewer = client_pc()
    frames = {"video": 0}

    async def count(track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            frames["video"] += 1

    tasks: list[asyncio.Task[None]] = []

    @viewer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            tasks.append(asyncio.ensure_future(count(track)))

    viewer.addTransceiver("audio", direction="recvonly")
    transport = await router.create_transport("viewer")
    offer = await viewer.createOffer()
    await set_local(viewer, RTCSessionDescription(sdp=as_chromium(offer.sdp), type="offer"))
    answer = await transport.handle_offer(viewer.localDescription.sdp)
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    for producer in publisher.producers:
        await router.consume(producer, transport)
    sfu_offer = await transport.create_offer()
    used, client = ids_in(sfu_offer), ids_in(viewer.localDescription.sdp)
    assert client == {LEVEL: 1, MID: 4}
    assert used == {**client, ABS_SEND_TIME: 3}  # aiortc's own id, free in this session
    # and what aiortc registers when a receiver or sender starts: the same ids
    for transceiver in transport._pc.getTransceivers():
        for ext in transceiver._headerExtensions:
            assert ext.id == used[ext.uri], (transceiver.mid, ext)
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=sfu_offer, type="offer"))
    await set_local(viewer, await viewer.createAnswer())
    await transport.handle_answer(viewer.localDescription.sdp)
    await wait_for(lambda: frames["video"] >= 3, 10, "video frames at the viewer")

    for task in tasks:
        task.cancel()
    await viewer.close()
    await publisher.close()
    await router.close()
