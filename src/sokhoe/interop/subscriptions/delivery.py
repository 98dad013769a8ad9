"""Sending one notification to a rest-hook, and when to try again after a failure.

The body is a ``history`` Bundle holding the changed resource (``channel.payload`` set), or
nothing at all (payload absent: an empty notification, the receiver then reads what changed
with its own token). R4 leaves the exact rest-hook body to the server; a history Bundle is
what the R4B/R5 backport's ``full-resource`` notifications also carry, so receivers written
for either can read it. ``channel.header`` values are sent as HTTP headers.
See: https://hl7.org/fhir/R4/subscription.html#2.46.7.1
"""

from __future__ import annotations

import random
import ssl
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
import orjson

from sokhoe.fhir.resources import format_instant
from sokhoe.interop.subscriptions.addresses import Address
from sokhoe.interop.subscriptions.allowlist import AllowList
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy, EndpointRefused, Target
from sokhoe.store.ports import StoredResource


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with jitter: attempt n waits ``base * 2**(n-1)`` (capped), scaled
    by a random 50-100 % so receivers that failed together do not retry together."""

    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    max_attempts: int = 5

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        full = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return timedelta(seconds=full * (0.5 + 0.5 * rng.random()))


def notification_bundle(resource: StoredResource, base_url: str, when: datetime) -> dict[str, Any]:
    """The ``history`` Bundle sent for one changed resource version. (R4 gives no place for
    the subscription's id; a receiver serving several tells them apart by ``channel.header``
    or by endpoint.)"""
    ref = f"{resource.resource_type}/{resource.id}"
    status = "201" if resource.version_id == 1 else "200"
    return {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": format_instant(when),
        "entry": [
            {
                "fullUrl": f"{base_url}/{ref}",
                "resource": resource.content,
                "request": {
                    "method": "POST" if resource.version_id == 1 else "PUT",
                    "url": resource.resource_type if resource.version_id == 1 else ref,
                },
                "response": {
                    "status": status,
                    "etag": resource.etag,
                    "lastModified": format_instant(resource.last_updated),
                },
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification to send: the endpoint, what to send, and the owner's allow-list as
    it is at this delivery (a list that no longer covers the endpoint stops the send)."""

    endpoint: str
    body: bytes | None
    headers: Sequence[str]
    content_type: str | None
    allowed: AllowList


Sender = Callable[[Notification], Attempt]
"""Sends one notification: injectable for tests that need a network failure a real receiver
cannot produce."""


class HttpSender:
    """POSTs notifications with a timeout; any 2xx answer is a delivery. Redirects are not
    followed (a 3xx is a failure: it would lead past the checks).

    Before each send the endpoint is checked by ``endpoints`` (allow-list, one DNS lookup,
    every address) and the connection goes to a checked address, never to a fresh lookup:
    the URL is rewritten to the address while TLS still sends the host name as SNI
    (``sni_hostname``, so the certificate is verified against the name) and ``Host`` stays
    the name. Connections are reused only for the same name and the same address (one
    client each, a few kept), so a TLS session verified for one name never carries another
    name's notifications. Proxies from the environment are not used: a proxy would resolve
    the name itself.
    """

    def __init__(
        self,
        endpoints: EndpointPolicy,
        timeout: float = 10.0,
        *,
        verify: ssl.SSLContext | None = None,
        keep: int = 16,
    ) -> None:
        self.endpoints = endpoints
        self._timeout = httpx2.Timeout(timeout)
        self._verify = verify if verify is not None else httpx2.create_ssl_context()
        self._keep = keep
        self._clients: OrderedDict[tuple[str, str, str], httpx2.Client] = OrderedDict()

    def __call__(self, notification: Notification) -> Attempt:
        try:
            target = self.endpoints.target(notification.endpoint, notification.allowed)
        except EndpointRefused as exc:
            return Attempt(False, f"not sent: {exc.reason}")
        headers = httpx2.Headers()
        for header in notification.headers:
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        if notification.body is not None and notification.content_type:
            headers["Content-Type"] = notification.content_type
        headers["Host"] = target.host_header  # the name, whatever channel.header said
        extensions = {"sni_hostname": target.host} if target.named else {}
        failure = "no address"
        for address in target.addresses:  # every one checked; the next only if one is down
            try:
                response = self._client(target, address).post(
                    target.at(address),
                    content=notification.body or b"",
                    headers=headers,
                    extensions=extensions,
                )
            except httpx2.ConnectError as exc:
                failure = f"ConnectError to {address}: {exc}"
                continue
            except httpx2.HTTPError as exc:
                return Attempt(False, f"{type(exc).__name__}: {exc}"[:500])
            if 200 <= response.status_code < 300:
                return Attempt(True)
            return Attempt(False, f"HTTP {response.status_code}: {response.text[:300]}")
        return Attempt(False, failure[:500])

    def _client(self, target: Target, address: Address) -> httpx2.Client:
        key = (target.url.scheme, target.host_header, str(address))
        client = self._clients.pop(key, None)
        if client is None:
            client = httpx2.Client(
                transport=httpx2.HTTPTransport(verify=self._verify),
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
            )
        self._clients[key] = client  # most recently used last
        while len(self._clients) > self._keep:
            _, oldest = self._clients.popitem(last=False)
            oldest.close()
        return client

    def close(self) -> None:
        while self._clients:
            _, client = self._clients.popitem()
            client.close()


def encode(bundle: dict[str, Any]) -> bytes:
    return orjson.dumps(bundle)


__all__ = [
    "Attempt",
    "Backoff",
    "HttpSender",
    "Notification",
    "Sender",
    "encode",
    "notification_bundle",
]
