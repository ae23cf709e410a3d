"""Where the server may open a connection to a router (API.md "Routers: where the server may connect").

A router's host, username and password are tenant data sent to another machine. Without these rules
an operator could point "a router" at a service inside our own network (a Redis on loopback, the cloud
metadata address) and make the server talk to it. So:

- no control characters (below 0x20, and DEL) in a router's name, host, username or password;
- the host's addresses must not be loopback, link-local (cloud metadata included), multicast,
  unspecified or reserved, unless listed in ``ROUTER_ALLOWED_NETWORKS``; with the simulators on, the
  RouterOS simulator's own address and port are allowed too, and nothing else of loopback;
- ``ROUTER_DENIED_NETWORKS`` (the installation's own subnets) is refused whatever else says;
- IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged as the IPv4 address they carry.

IP literals, and names that resolve in time, are checked when a router is stored; names are resolved,
and every address checked, again right before each connection, and the driver connects to that
checked address (a second DNS answer, as in DNS rebinding, is never asked for).
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import re

from django.conf import settings

from network.routeros import RouterAddress, RouterAuthFailed, RouterNotAllowed, RouterUnreachable, resolve_all

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
NOT_ALLOWED_TEXT = "This router address is not allowed (loopback, link-local, multicast or reserved)"
SIMULATOR_ADDRESS = ipaddress.IPv4Address("127.0.0.1")


def has_control_characters(value: str) -> bool:
    return bool(CONTROL_CHARACTERS.search(value or ""))


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(_judged_network(ipaddress.ip_network(cidr, strict=False)) for cidr in cidrs)


def _judged_network(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` in a setting means the IPv4 network, like the addresses it is compared to."""
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
        mapped = network.network_address.ipv4_mapped
        return ipaddress.ip_network(f"{mapped}/{max(network.prefixlen - 96, 0)}", strict=False)
    return network


def _judged(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: IPAddress, port: int) -> bool:
    """Whether the server may connect to ``address:port`` as a router."""
    address = _judged(address)
    if any(address in network for network in _networks(tuple(settings.ROUTER_DENIED_NETWORKS))):
        return False
    if any(address in network for network in _networks(tuple(settings.ROUTER_ALLOWED_NETWORKS))):
        return True
    if settings.SIMULATORS_ENABLED and address == SIMULATOR_ADDRESS and port == settings.ROUTEROS_SIMULATOR_PORT:
        return True  # the demo's RouterOS simulator, and only it
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def looks_public(host: str) -> bool:
    """Whether traffic to ``host`` likely crosses the internet: a global IP, or a DNS name (no look-up here:
    a name usually stands for a public address; private networks are mostly reached by IP)."""
    literal = ip_literal(host)
    if literal is None:
        return not host.lower().endswith((".local", ".lan", ".internal", ".home.arpa"))
    return _judged(literal).is_global


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# How long storing a router may wait for its name to resolve; past it the name is stored and still
# checked before every connection (a slow resolver must not hold the request).
STORE_RESOLVE_TIMEOUT_SECONDS = 2.0
_store_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="router-dns")


def refused_when_stored(host: str, port: int) -> bool:
    """Whether a router's host is already known to lead somewhere refused: an IP literal, or a name
    that resolves (within a short wait) to any refused address. A name that does not resolve yet is
    not refused here; every connection checks again."""
    literal = ip_literal(host)
    if literal is not None:
        return not address_allowed(literal, port)
    lookup = _store_resolver.submit(resolve_all, RouterAddress(host=host, port=port, username="", password=""))
    try:
        resolved = lookup.result(timeout=STORE_RESOLVE_TIMEOUT_SECONDS)
    except (RouterUnreachable, concurrent.futures.TimeoutError):
        return False
    return not all(address_allowed(ipaddress.ip_address(ip), port) for ip in resolved)


def connect_address(address: RouterAddress) -> str:
    """The one checked IP address to connect to for ``address`` (resolved once, here).

    Raises RouterAuthFailed for control characters in the credentials (stored before they were
    refused: the operator must enter them again), RouterNotAllowed for a refused destination, and
    RouterUnreachable when the name does not resolve.
    """
    if has_control_characters(address.username) or has_control_characters(address.password):
        raise RouterAuthFailed(
            "control characters in the credentials",
            command="/login",
            text="The router's API username or password contains control characters; enter them again",
        )
    if has_control_characters(address.host):
        raise RouterNotAllowed("control characters in the host", command="/login", text=NOT_ALLOWED_TEXT)
    resolved = [ipaddress.ip_address(ip) for ip in resolve_all(address)]
    # Every address must pass, not just the one we use: a name that also points inside is refused.
    if not resolved or not all(address_allowed(ip, address.port) for ip in resolved):
        raise RouterNotAllowed("destination not allowed", command="/login", text=NOT_ALLOWED_TEXT)
    return str(resolved[0])
