"""Which peers may speak for a tenant: the trusted-proxy CIDR list."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

__all__ = ["TrustedPeers"]


class TrustedPeers:
    """``peer in trusted``: True for an address inside one of the CIDRs (or for everyone with ``trust_all``)."""

    __slots__ = ("_networks", "_trust_all")

    def __init__(self, cidrs: tuple[str, ...], *, trust_all: bool = False) -> None:
        self._networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        self._trust_all = trust_all

    def __contains__(self, peer: object) -> bool:
        if self._trust_all:
            return True
        if not isinstance(peer, str) or not self._networks:
            return False
        return _matches(self._networks, peer)


@lru_cache(maxsize=1024)
def _matches(networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)
