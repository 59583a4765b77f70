"""A transport's edges: a bad trickled candidate, and a participant coming straight back."""

from __future__ import annotations

import asyncio

import pytest

from sfu import NegotiationError, Router, SfuConfig
from tests.sfu.peers import Publisher, ToneTrack


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
