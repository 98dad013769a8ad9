"""Where a rest-hook may point: the one rule, applied when a Subscription is registered and
again, with a fresh DNS answer, before each notification is sent.

A notification goes to ``channel.endpoint`` only when all of these hold, checked in order:

1. it is an ``http(s)`` URL with a host and no credentials;
2. it is on the owner's allow-list (:mod:`~sokhoe.interop.subscriptions.allowlist`): its
   origin is listed, or its host is an address inside a listed network;
3. the host resolves (**once**; an address literal is its own answer) and **every** address is
   public, or inside a network the owner's list names; never unspecified or multicast
   (:mod:`~sokhoe.interop.subscriptions.addresses`);
4. it is https, or plain http to a host in ``subscription_http_hosts``, or plain http whose
   every address is a non-public one the owner's list names (a hospital network).

The addresses checked are the ones connected to (:class:`Target`): the sender never asks DNS
again, so a name that answers a public address to the check and 127.0.0.1 to the connection
(DNS rebinding) reaches nothing. Names not on the list are never resolved.

``allow_loopback`` is a development override (``SOKHOE_SUBSCRIPTION_ALLOW_LOOPBACK``): any
connected system may then notify this machine (127.0.0.0/8, ::1, ``localhost``) without
listing it. It is off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx2

from sokhoe.config import Settings
from sokhoe.errors import InvalidRequest
from sokhoe.interop.subscriptions.addresses import (
    Address,
    Resolver,
    never,
    non_public,
    parse_address,
    system_resolver,
    unwrap,
)
from sokhoe.interop.subscriptions.allowlist import AllowList

WHERE = "Subscription.channel.endpoint"


class EndpointRefused(InvalidRequest):
    """The endpoint may not be notified: 400 at registration; at delivery the reason becomes
    the failed attempt's error and nothing is sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, WHERE)
        self.reason = message


@dataclass(frozen=True, slots=True)
class Target:
    """A checked endpoint: connect to one of ``addresses`` (all checked, as the resolver wrote
    them), never to what the name resolves to later; TLS server name and ``Host`` stay the
    endpoint's host."""

    url: httpx2.URL
    addresses: tuple[Address, ...]

    @property
    def host(self) -> str:
        """The host as sent in TLS SNI and checked against the certificate (IDNA)."""
        return self.url.raw_host.decode("ascii")

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host, and the port when it is not the scheme's default."""
        return self.url.netloc.decode("ascii")

    @property
    def named(self) -> bool:
        """True when the endpoint names a host (SNI is sent), False for an address literal."""
        return parse_address(self.host) is None

    def at(self, address: Address) -> httpx2.URL:
        """The endpoint URL with ``address`` in place of the host (what is connected to)."""
        return self.url.copy_with(host=str(address))


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """The rule of the module docstring; ``resolve`` is injectable (tests answer for DNS)."""

    http_hosts: frozenset[str] = frozenset()
    allow_loopback: bool = False
    resolve: Resolver = system_resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointPolicy:
        """The rule the settings give: registration and delivery use the same."""
        return cls(
            frozenset(h.strip().lower() for h in settings.subscription_http_hosts),
            settings.subscription_allow_loopback,
        )

    def check(self, endpoint: object, allowed: AllowList) -> str:
        """The endpoint text, if a Subscription may be registered with it (it resolves and
        passes every rule now); :class:`EndpointRefused` otherwise."""
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise EndpointRefused("A rest-hook Subscription needs channel.endpoint")
        self.target(endpoint.strip(), allowed)
        return endpoint.strip()

    def target(self, endpoint: str, allowed: AllowList) -> Target:
        """Check ``endpoint`` for a notification to be sent now; see the module docstring."""
        url = _parse(endpoint)
        literal = parse_address(url.host)
        if literal is not None:
            self._address(endpoint, f"points at {url.host}", literal, allowed)
        if not self._listed(url, literal, allowed):
            raise EndpointRefused(
                f"channel.endpoint '{endpoint}' is not on the allow-list of notification "
                "endpoints of the connected system that owns this Subscription (an operator "
                "adds it: sokhoe client endpoints CLIENT_ID --add ORIGIN_OR_NETWORK)"
            )
        addresses: tuple[Address, ...] = (literal,) if literal is not None else ()
        if literal is None:  # resolved once, here: these addresses are the ones connected to
            answers = self._resolve(endpoint, url)
            for text, address in answers:
                self._address(endpoint, f"resolves to {text}", address, allowed)
            addresses = tuple(dict.fromkeys(address for _, address in answers))
        if url.scheme == "http" and not self._plain_http(url, addresses, allowed):
            raise EndpointRefused(
                f"channel.endpoint '{endpoint}' must use https: plain http only to a host in "
                "SOKHOE_SUBSCRIPTION_HTTP_HOSTS, or to a private network the connected "
                "system's allow-list names"
            )
        return Target(url, addresses)

    def _listed(self, url: httpx2.URL, literal: Address | None, allowed: AllowList) -> bool:
        if allowed.names_origin(url):
            return True
        reached = unwrap(literal) if literal is not None else None
        if reached is not None and allowed.network_of(reached) is not None:
            return True
        return self.allow_loopback and (
            url.host == "localhost" or (reached is not None and reached.is_loopback)
        )

    def _resolve(self, endpoint: str, url: httpx2.URL) -> list[tuple[str, Address]]:
        """One DNS question: each answer as given and as an address, in the resolver's order."""
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            answers = [str(a) for a in self.resolve(host, port)]
        except OSError as exc:
            raise EndpointRefused(
                f"channel.endpoint '{endpoint}': cannot resolve {host}: {exc}"
            ) from exc
        found = [(text, a) for text in answers if (a := parse_address(text)) is not None]
        if not found or len(found) != len(answers):
            raise EndpointRefused(
                f"channel.endpoint '{endpoint}': {host} resolves to no usable address "
                f"({', '.join(answers) or 'none'})"
            )
        return found

    def _address(self, endpoint: str, where: str, address: Address, allowed: AllowList) -> None:
        """Refuse ``address`` unless public or allowed, judged as the IPv4 address it reaches
        when written in IPv6; ``where`` says how the endpoint got there (``points at
        10.0.0.1``, ``resolves to ::ffff:127.0.0.1``)."""
        reached = unwrap(address)
        if reached != address:
            where += f", that is {reached}"
        why = never(reached)
        if why is not None:
            raise EndpointRefused(
                f"channel.endpoint '{endpoint}' {where} ({why}), which notifications may "
                "never reach"
            )
        kind = non_public(reached)
        if kind is None or self._permitted(reached, allowed):
            return
        raise EndpointRefused(
            f"channel.endpoint '{endpoint}' {where} ({kind}), which notifications may not "
            "reach unless the connected system's allow-list names a network containing it"
        )

    def _permitted(self, address: Address, allowed: AllowList) -> bool:
        """A non-public (unwrapped) address the owner's list or the loopback override allows."""
        if allowed.network_of(address) is not None:
            return True
        return self.allow_loopback and address.is_loopback

    def _plain_http(
        self, url: httpx2.URL, addresses: Sequence[Address], allowed: AllowList
    ) -> bool:
        if url.raw_host.decode("ascii") in self.http_hosts:
            return True
        reached = [unwrap(a) for a in addresses]
        return all(non_public(a) is not None and self._permitted(a, allowed) for a in reached)


def _parse(endpoint: str) -> httpx2.URL:
    try:
        url = httpx2.URL(endpoint)
    except httpx2.InvalidURL as exc:
        raise EndpointRefused(f"channel.endpoint '{endpoint}' is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise EndpointRefused(f"channel.endpoint '{endpoint}' is not an http(s) URL")
    if url.userinfo:
        raise EndpointRefused("channel.endpoint must not carry credentials; use channel.header")
    return url


__all__ = ["WHERE", "EndpointPolicy", "EndpointRefused", "Target"]
