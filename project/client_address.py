"""The address of the client behind a request, for throttles and logs.

`X-Forwarded-For` is believed only when the TCP peer is one of `settings.TRUSTED_PROXIES`: anyone
else could name any address and so pick the budget they spend. Each trusted proxy appends the
address it received from, so the chain is read from the right and the first address that is not a
trusted proxy is the client; whatever the client itself put further left is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("["):  # "[2001:db8::1]:443"
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: IPAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def _peer_and_forwarded(request_or_scope: Any) -> tuple[str | None, str]:
    if isinstance(request_or_scope, HttpRequest):
        meta = request_or_scope.META
        return meta.get("REMOTE_ADDR") or None, meta.get("HTTP_X_FORWARDED_FOR", "")
    scope = request_or_scope if isinstance(request_or_scope, Mapping) else request_or_scope.scope
    client = scope.get("client")
    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name.lower() == b"x-forwarded-for"
    )
    return (client[0] if client else None), forwarded


def client_address(request_or_scope: HttpRequest | Mapping[str, Any] | Any) -> str | None:
    """The client's IP address: a Django request, an ASGI scope, or anything with a `.scope`."""
    peer_text, forwarded = _peer_and_forwarded(request_or_scope)
    peer = _parse(peer_text) if peer_text else None
    if peer is None:
        return peer_text
    if not settings.TRUSTED_PROXIES or not _trusted(peer):
        return str(peer)
    client = peer
    for hop in reversed(forwarded.split(",") if forwarded else []):
        address = _parse(hop)
        if address is None:  # a trusted proxy wrote garbage: the last proxy is all we know
            break
        client = address
        if not _trusted(address):
            break
    return str(client)
