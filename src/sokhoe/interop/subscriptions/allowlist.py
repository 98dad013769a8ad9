"""Each connected system's allow-list of notification endpoints, kept in the database.

An operator (``sokhoe client create --endpoint``, ``sokhoe client endpoints``), not the system
itself, says where a system's notifications may go, so a leaked client secret cannot point
Subscriptions anywhere. An entry is either

- an **origin**, ``https://his.bvcr.vn`` or ``https://his.bvcr.vn:8443``: endpoints with
  exactly that scheme, host and port (any path) are on the list; or
- a **network**, ``10.20.0.0/24`` or one address ``10.20.0.5``: endpoints whose host is an
  address in it are on the list, and a host name may resolve into it. This is how a hospital
  system on a private network (or loopback, ``127.0.0.1/32``, in development) is allowed:
  without a network entry no notification reaches a non-public address
  (:mod:`sokhoe.interop.subscriptions.addresses`).

Entries are stored normalised (lower case, IDNA host, default port left out, a single address
as ``/32`` or ``/128``), so the same entry written two ways is one row.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx2
from sqlalchemy import Engine, delete, select

from sokhoe.interop.subscriptions.addresses import Address, Network, unsafe_network
from sokhoe.store.sql.subscription_schema import subscription_endpoint


@dataclass(frozen=True, slots=True)
class AllowList:
    """Where one connected system's notifications may go."""

    origins: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = field(default_factory=tuple)

    def names_origin(self, url: httpx2.URL) -> bool:
        return origin_of(url) in self.origins

    def network_of(self, address: Address) -> Network | None:
        """The listed network containing ``address``, if any."""
        for network in self.networks:
            if address.version == network.version and address in network:
                return network
        return None

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowList:
        """From normalised entries (as stored)."""
        origins: set[str] = set()
        networks: list[Network] = []
        for entry in entries:
            if "://" in entry:
                origins.add(entry)
            else:
                networks.append(ipaddress.ip_network(entry))
        return cls(frozenset(origins), tuple(networks))


def origin_of(url: httpx2.URL) -> str:
    """``scheme://host[:port]`` of ``url``: lower case, IDNA host, default port left out."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def normalise_entry(text: str) -> str:
    """The stored form of an allow-list entry; ValueError saying what is wrong with it."""
    entry = text.strip()
    if not entry:
        raise ValueError("an empty endpoint entry")
    if "://" in entry:
        return _origin(entry)
    try:
        network = ipaddress.ip_network(entry, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"'{entry}' is neither an origin (https://host[:port]) nor a network "
            f"(10.20.0.0/24 or one address): {exc}"
        ) from exc
    why = unsafe_network(network)
    if why is not None:
        raise ValueError(f"'{entry}' cannot be listed: {why}")
    return str(network)


def _origin(entry: str) -> str:
    try:
        url = httpx2.URL(entry)
    except httpx2.InvalidURL as exc:
        raise ValueError(f"'{entry}' is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"'{entry}' is not an http(s) origin")
    if url.userinfo or url.query or url.fragment or url.raw_path not in (b"", b"/"):
        raise ValueError(
            f"'{entry}' must be an origin only (scheme, host, port): no path, query or user"
        )
    return origin_of(url)


# -- storage -------------------------------------------------------------------------------
def allowed(engine: Engine, client_id: str) -> AllowList:
    """The allow-list of ``client_id`` as it is now (empty for an unknown client)."""
    return AllowList.of(entries(engine, client_id))


def entries(engine: Engine, client_id: str) -> list[str]:
    t = subscription_endpoint.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.entry).where(t.client_id == client_id).order_by(t.entry)
        ).scalars()
        return list(rows)


def add(engine: Engine, client_id: str, new: Iterable[str]) -> list[str]:
    """Add entries (normalised; ValueError before anything is written if one is bad);
    entries already listed are left as they are. Returns the list after."""
    wanted = [normalise_entry(e) for e in new]
    now = datetime.now(UTC)
    t = subscription_endpoint.c
    with engine.begin() as conn:
        have = set(conn.execute(select(t.entry).where(t.client_id == client_id)).scalars())
        for entry in dict.fromkeys(wanted):
            if entry not in have:
                conn.execute(
                    subscription_endpoint.insert().values(
                        client_id=client_id, entry=entry, added=now
                    )
                )
    return entries(engine, client_id)


def remove(engine: Engine, client_id: str, gone: Iterable[str]) -> list[str]:
    """Remove entries (written any way :func:`normalise_entry` accepts); ValueError naming
    an entry that is not listed, before anything is removed. Returns the list after."""
    targets = [normalise_entry(e) for e in gone]
    listed = set(entries(engine, client_id))
    missing = [e for e in targets if e not in listed]
    if missing:
        raise ValueError(f"not listed for {client_id}: {', '.join(missing)}")
    t = subscription_endpoint.c
    with engine.begin() as conn:
        conn.execute(
            delete(subscription_endpoint).where(t.client_id == client_id, t.entry.in_(targets))
        )
    return entries(engine, client_id)


__all__ = ["AllowList", "add", "allowed", "entries", "normalise_entry", "origin_of", "remove"]
