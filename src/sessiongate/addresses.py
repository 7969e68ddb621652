"""The client's address: the peer's, or the one trusted proxies forwarded (``X-Forwarded-For``).

Below every layer that needs it: the dialects, the gateway API and the audit log all name the caller the same way.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from litestar import Request

__all__ = ("client_address", "forwarded_client")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LONGEST_HOP = 64  # = sg_session.client_address; a longer entry is no address anyway


def client_address(request: Request[Any, Any, Any], *, trust_forwarded: bool) -> str:
    """The caller's address: the peer's, or with ``trust_forwarded`` the one its trusted proxies forwarded.

    Which proxies are trusted are the app's settings (``trusted_proxies``, ``trusted_proxy_networks``); see
    :func:`forwarded_client` for how ``X-Forwarded-For`` is read.
    """
    peer = request.client.host if request.client else None
    if not trust_forwarded:
        return peer or "unknown"
    settings = request.app.state.get("settings")
    return forwarded_client(
        peer,
        request.headers.getall("x-forwarded-for", ()),
        proxies=getattr(settings, "trusted_proxies", 1),
        networks=getattr(settings, "trusted_proxy_networks", ()),
    )


def forwarded_client(
    peer: str | None, forwarded_for: Sequence[str], *, proxies: int = 1, networks: Sequence[str] = ()
) -> str:
    """The client's address behind trusted proxies, from the peer and the ``X-Forwarded-For`` lines.

    Each proxy appends the address it received the request from, so the list is read from the right, from the peer
    leftwards, and never its left-most entry, which the client writes itself. Without ``networks`` the client is
    ``proxies`` hops left of the peer (or the left-most hop, when there are fewer). With ``networks`` the header counts
    only if the peer is in one of them, and the client is the first hop from the right that is not. An entry that is
    not an IP address was written by no proxy: the hop to its right is the client then. Addresses come back in one
    canonical form (IPv4-mapped IPv6 as IPv4, ports dropped).

    Args:
        peer: The address the connection comes from.
        forwarded_for: The values of every ``X-Forwarded-For`` header, in order.
        proxies: How many proxies append to the header (with no ``networks``).
        networks: The trusted proxies' addresses or networks (CIDR).
    """
    hops: list[str | None] = [entry for value in forwarded_for for entry in value.split(",")]
    hops.append(peer)
    if networks:
        trusted = _networks(tuple(networks))
        right = _address(peer)
        if right is None or not _within(right, trusted):
            return peer or "unknown"
        for hop in reversed(hops[:-1]):
            address = _address(hop)
            if address is None:
                break
            right = address
            if not _within(address, trusted):
                break
        return str(right)
    for hop in hops[max(0, len(hops) - 1 - proxies) :]:
        if (address := _address(hop)) is not None:
            return str(address)
    return peer or "unknown"


def _address(hop: str | None) -> _Address | None:
    """The IP address a hop names (``a.b.c.d``, ``a.b.c.d:port``, ``v6``, ``[v6]`` or ``[v6]:port``), or ``None``."""
    text = (hop or "").strip()
    if not text or len(text) > _LONGEST_HOP or "%" in text:  # a zone id (fe80::1%eth0) names no host elsewhere
        return None
    if text.startswith("["):
        text, _, port = text[1:].partition("]")
        if port and not (port.startswith(":") and port[1:].isdigit()):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in spec)


def _within(address: _Address, networks: tuple[_Network, ...]) -> bool:
    return any(address in network for network in networks)
