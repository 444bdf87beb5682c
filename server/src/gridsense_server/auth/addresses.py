"""The caller's address: the socket's peer, or, when that peer is a trusted reverse proxy,
the nearest address in X-Forwarded-For that is not one of the trusted proxies.

Only trusted proxies are believed: anyone else could write any X-Forwarded-For and so escape
the per-address throttle or put someone else's address in the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: list[Network]) -> str:
    address = peer or "?"
    if not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _trusted(hop, trusted):
            break
    return address


def throttle_subject(address: str) -> str:
    """``addr:<address>``; an IPv6 address counts as its /64 (one host's share of a network,
    which its owner can fill with as many addresses as they like)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if ip.version == 6 and not ip.is_loopback:
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"
