"""A transport's edges: a bad trickled candidate, and a participant coming straight back."""

from __future__ import annotations

import asyncio
from typing import Any

import aioice.ice
import aioice.stun
import pytest

from sfu import NegotiationError, Router, SfuConfig, Transport
from sfu import aiortc_hooks as hooks
from tests.sfu.peers import Publisher, ToneTrack, wait_for


async def test_a_candidate_without_mid_is_a_negotiation_error_and_media_goes_on() -> None:
    router = Router(SfuConfig(), router_id="candidates")
    publisher = Publisher(router, "citizen")
    await publisher.publish(ToneTrack())
    assert publisher.transport is not None
    line = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"
    with pytest.raises(NegotiationError, match="bad ICE candidate"):
        await publisher.transport.add_ice_candidate(line, None)
    with pytest.raises(NegotiationError, match="bad ICE candidate"):
        await publisher.transport.add_ice_candidate("candidate:garbage", "0")
    assert not publisher.transport.closed
    await publisher.close()
    await router.close()


async def test_the_peer_id_is_free_as_soon_as_its_transport_starts_closing() -> None:
    router = Router(SfuConfig(), router_id="reconnect")
    publisher = Publisher(router, "heir")
    await publisher.publish(ToneTrack())
    assert publisher.transport is not None
    closing = asyncio.ensure_future(publisher.transport.close())
    await asyncio.sleep(0)  # close() has begun, its awaits are pending
    again = await router.create_transport("heir")
    assert router.transports["heir"] is again
    await closing
    assert router.transports["heir"] is again  # the old close did not remove the new one
    await publisher.close()
    await router.close()


def _answer_consent_checks(pc: Any, delay: float | None) -> None:
    """Make the client answer the SFU's STUN checks `delay` s late, or never (None)."""
    loop = asyncio.get_running_loop()
    dtls = hooks.dtls_transport(pc)
    assert dtls is not None
    for protocol in dtls.transport._connection._protocols:
        original = protocol.send_stun

        def send_stun(message: Any, addr: Any, _original: Any = original) -> None:
            if message.message_class != aioice.stun.Class.RESPONSE:
                _original(message, addr)
            elif delay is not None:
                loop.call_later(delay, _original, message, addr)

        protocol.send_stun = send_stun


async def _connected(router_id: str, peer_id: str) -> tuple[Router, Publisher, Transport]:
    """A router with one publishing peer whose connection is up."""
    router = Router(SfuConfig(), router_id=router_id)
    publisher = Publisher(router, peer_id)
    await publisher.publish(ToneTrack())
    transport = publisher.transport
    assert transport is not None
    await wait_for(lambda: transport.connection_state == "connected", 10, "connected")
    return router, publisher, transport


@pytest.fixture
def fast_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consent checks every 0.3 s on both sides, expiry after 3 s (instead of 5 s and 30 s)."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(hooks, "CONSENT_INTERVAL", 0.3)
    monkeypatch.setattr(hooks, "CONSENT_EXPIRY", 3.0)


@pytest.mark.usefixtures("fast_consent")
async def test_a_peer_that_answers_consent_checks_late_keeps_its_connection() -> None:
    """A round trip over aioice's 0.5 s (a congested phone) must not cost the peer its media."""
    router, publisher, transport = await _connected("slow-consent", "phone")
    _answer_consent_checks(publisher.pc, delay=0.8)
    # aioice alone closed it after six late answers, ≈ 5 s here
    await asyncio.sleep(6)
    assert not transport.closed
    assert transport.connection_state == "connected"
    await publisher.close()
    await router.close()


@pytest.mark.usefixtures("fast_consent")
async def test_a_peer_that_stops_answering_consent_checks_is_closed_when_consent_expires() -> None:
    router, publisher, transport = await _connected("gone-consent", "vanished")
    _answer_consent_checks(publisher.pc, delay=None)
    await wait_for(lambda: transport.closed, 10, "the silent peer's transport to close")
    assert "vanished" not in router.transports
    await publisher.close()
    await router.close()


async def test_a_peer_that_never_connects_is_closed_and_a_connected_ones_timer_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiortc import RTCPeerConnection

    from sfu import transport as transport_module

    monkeypatch.setattr(transport_module, "CONNECT_TIMEOUT", 0.5)
    router = Router(SfuConfig(), router_id="connect-timeout")
    publisher = Publisher(router, "present")
    vanishing = RTCPeerConnection()
    try:
        await publisher.publish(ToneTrack())
        present = publisher.transport
        assert present is not None
        await wait_for(lambda: present.connection_state == "connected", 10, "connected")
        timer = present._connect_timer
        assert timer is not None and timer.cancelled()  # nothing left to fire 30 s later

        # a client that offers, then vanishes before it applies the answer
        vanishing.addTrack(ToneTrack())
        await vanishing.setLocalDescription(await vanishing.createOffer())
        gone = await router.create_transport("vanishing")
        await gone.handle_offer(vanishing.localDescription.sdp)
        await wait_for(lambda: gone.closed, 5, "the unconnected transport to close")
        assert "vanishing" not in router.transports
        assert not present.closed and "present" in router.transports
    finally:
        await vanishing.close()
        await publisher.close()
        await router.close()
