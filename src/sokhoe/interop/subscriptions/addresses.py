"""Which IP addresses a notification may go to, and how a host name becomes addresses.

A rest-hook makes the server open a connection to a place the subscriber chose. Without a
check, a Subscription is a way to make the server call its own services (loopback), the
hospital and cloud networks behind it (RFC 1918, CGNAT, IPv6 unique-local) or the cloud
metadata service (169.254.169.254): server-side request forgery. So every address is
classified here, and only **public** addresses are reachable without more ado; the rest only
when the owning connected system's allow-list names a network containing them
(:mod:`sokhoe.interop.subscriptions.endpoints`).

The table is ours rather than ``ipaddress``'s ``is_global``/``is_private``: those changed
between Python releases (3.11 counts multicast as global), and a security rule must not move
with the interpreter. IPv4 written in IPv6 (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``) is
judged as the IPv4 address it reaches.
See: https://www.iana.org/assignments/iana-ipv4-special-registry/ and
https://www.iana.org/assignments/iana-ipv6-special-registry/
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` as text, raising OSError when the name does not resolve.
Injectable: DNS is the edge tests cannot run, so they answer for it."""


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``socket.getaddrinfo``), TCP addresses in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


NEVER = _nets(
    ("0.0.0.0/8", "unspecified, 'this host'"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("ff00::/8", "multicast"),
)
"""No notification goes here, whatever a list says: a connection to 0.0.0.0 reaches this
machine, and multicast and broadcast carry no TCP. An allow-list entry may not contain them."""

NON_PUBLIC = _nets(
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private network, RFC 1918"),
    ("172.16.0.0/12", "private network, RFC 1918"),
    ("192.168.0.0/16", "private network, RFC 1918"),
    ("100.64.0.0/10", "shared address space, CGNAT, RFC 6598"),
    ("169.254.0.0/16", "link-local, cloud metadata"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("198.18.0.0/15", "benchmarking"),
    ("240.0.0.0/4", "reserved"),
    ("::1/128", "loopback"),
    ("::/8", "reserved"),
    ("100::/64", "discard-only"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("2001::/23", "IETF protocol assignments: Teredo, benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("2002::/16", "6to4"),
    ("fc00::/7", "unique local, private network"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local, deprecated"),
)
"""Reachable only when the owner's allow-list names a network containing the address."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def parse_address(text: str) -> Address | None:
    """The address ``text`` names (an IPv6 zone ``%eth0`` dropped), as written: judge it by
    :func:`unwrap`, connect to it as it is (a NAT64 address must go through the gateway);
    None when ``text`` is not an address."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def unwrap(address: Address) -> Address:
    """``::ffff:a.b.c.d`` and NAT64 ``64:ff9b::a.b.c.d`` as the IPv4 address they reach."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def never(address: Address) -> str | None:
    """Why no notification may ever go to ``address`` (unspecified, multicast), or None.
    ``address`` is one :func:`unwrap` returned, as for :func:`non_public`."""
    return _label(address, NEVER)


def non_public(address: Address) -> str | None:
    """What kind of non-public address this is (``loopback``, ``private network…``), or None
    for a public one. Call :func:`never` first: it is not repeated here."""
    return _label(address, NON_PUBLIC)


def _label(address: Address, table: tuple[tuple[Network, str], ...]) -> str | None:
    for network, label in table:
        if address.version == network.version and address in network:
            return label
    return None


def unsafe_network(network: Network) -> str | None:
    """Why ``network`` cannot be an allow-list entry, or None: it may not contain an address
    no notification may reach (so ``0.0.0.0/0`` and ``::/0`` are refused), nor be written as
    IPv4-in-IPv6 (list the IPv4 network itself)."""
    for bad, label in NEVER:
        if network.version == bad.version and network.overlaps(bad):
            return f"it contains {label} addresses ({bad})"
    if isinstance(network, ipaddress.IPv6Network) and (
        network.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96")) or network.subnet_of(_NAT64)
    ):
        return "it is IPv4 written as IPv6; list the IPv4 network"
    return None


__all__ = [
    "NEVER",
    "NON_PUBLIC",
    "Address",
    "Network",
    "Resolver",
    "never",
    "non_public",
    "parse_address",
    "system_resolver",
    "unsafe_network",
    "unwrap",
]
