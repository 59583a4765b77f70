"""SFU configuration, mapped by the server from its settings."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SfuConfig:
    """Where the SFU's media sockets live and which ICE servers it may use."""

    # local addresses the media sockets are bound on; one host candidate each
    ice_addresses: tuple[str, ...] = ("127.0.0.1",)
    # address announced in the candidate instead of ice_addresses[i] (1:1 NAT); may be shorter
    announced_addresses: tuple[str, ...] = ()
    # media sockets are bound to a port in this inclusive range
    udp_port_min: int = 40000
    udp_port_max: int = 49999
    # aiortc RTCIceServer objects (in-network TURN only); empty: never a public STUN server
    ice_servers: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not self.ice_addresses:
            raise ValueError("ice_addresses must name at least one address")
        if len(self.announced_addresses) > len(self.ice_addresses):
            raise ValueError("more announced_addresses than ice_addresses")
        if not 1 <= self.udp_port_min <= self.udp_port_max <= 65535:
            raise ValueError(f"bad UDP port range {self.udp_port_min}-{self.udp_port_max}")

    def announced_address(self, index: int) -> str:
        """The address to put in the candidate for ice_addresses[index]."""
        if index < len(self.announced_addresses) and self.announced_addresses[index]:
            return self.announced_addresses[index]
        return self.ice_addresses[index]
