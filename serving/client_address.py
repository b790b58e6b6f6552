"""Who is on the other end: the peer, or the client a trusted proxy names.

X-Forwarded-For is written by whoever sends the request, so it is believed only
when the peer is one of the configured proxies (FORWARDED_ALLOW_IPS: addresses or
networks, comma-separated, `*` for any; default none). The header is read from the
right: each trusted hop is skipped, and the first address a trusted hop did not
add itself is the client. A login throttle keyed on anything else is defeated by a
client that sends a new X-Forwarded-For with every attempt.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From FORWARDED_ALLOW_IPS; ValueError naming an entry that is not an address."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if "*" in entries:
            return cls(everyone=True)
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or network") from exc
        return cls(tuple(networks))

    def trusts(self, address: str) -> bool:
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: TrustedProxies) -> str:
    """The client's address: `peer` unless it is a trusted proxy (see the module doc)."""
    address = peer or "unknown"
    if not trusted.trusts(address):
        return address
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        address = hop
        if not trusted.trusts(hop):
            break
    return address[:64]
