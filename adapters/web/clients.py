"""Who a web client is, behind load balancers we trust and none we don't.

``X-Forwarded-For`` is believed only when the peer is a trusted proxy (``ANIMEBOT_TRUSTED_PROXIES``), and then only
as far as the chain of trusted proxies goes: each proxy appends the address it saw, so the right-most address that
is not a trusted proxy is the client; anything left of it was written by the client and may be made up.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import hdrs, web

Network = IPv4Network | IPv6Network
UNKNOWN = "unknown"


def client_address(request: web.BaseRequest, trusted: Sequence[Network]) -> str:
    """The address of the client behind ``request``: its peer, or what trusted proxies say the peer forwarded."""
    peer = request.remote or UNKNOWN
    if not is_trusted(peer, trusted):
        return peer
    headers = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
    forwarded = [hop.strip() for header in headers for hop in header.split(",")]
    client = peer
    for hop in reversed(forwarded):
        if not hop:
            continue
        client = hop
        if not is_trusted(hop, trusted):
            break
    return normalized(client)


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    """True when ``address`` is an IP address inside one of the ``trusted`` networks (a malformed one never is)."""
    parsed = parse(address)
    return parsed is not None and any(parsed in network for network in trusted)


def parse(address: str) -> IPv4Address | IPv6Address | None:
    """``address`` as an IP address (an IPv4-mapped IPv6 one as IPv4), or ``None`` when it is not one."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def normalized(address: str) -> str:
    """One spelling per address (``::FFFF:10.0.0.1`` and ``10.0.0.1`` are one client); other text as it came."""
    parsed = parse(address)
    return str(parsed) if parsed is not None else address
