"""Sending one notification to a rest-hook, and when to try again after a failure.

The body is a ``history`` Bundle holding the changed resource (``channel.payload`` set), or
nothing at all (payload absent: an empty notification, the receiver then reads what changed
with its own token). R4 leaves the exact rest-hook body to the server; a history Bundle is
what the R4B/R5 backport's ``full-resource`` notifications also carry, so receivers written
for either can read it. ``channel.header`` values are sent as HTTP headers.
See: https://hl7.org/fhir/R4/subscription.html#2.46.7.1
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from sokhoe.fhir.resources import format_instant
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


Sender = Callable[[str, bytes | None, Sequence[str], str | None], Attempt]
"""``(endpoint, body or None, headers, content type) -> Attempt``: injectable for tests that
need a network failure a real receiver cannot produce."""


def forbidden_address(host: str) -> str | None:
    """Why ``host`` must not be notified, or None. Resolved at each delivery (DNS may change
    after registration): link-local (cloud metadata at 169.254.169.254), multicast, reserved
    and unspecified addresses are refused, so a Subscription cannot make the server probe
    them (server-side request forgery). Private networks stay allowed: hospital systems that
    receive notifications live on them."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if (
            address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        ):
            return f"{host} resolves to {address}, which notifications may not reach"
    return None


class HttpSender:
    """POSTs notifications with a timeout; any 2xx answer is a delivery. Redirects are not
    followed and the endpoint's addresses are checked first (:func:`forbidden_address`)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._http = httpx2.Client(timeout=httpx2.Timeout(timeout), follow_redirects=False)

    def __call__(
        self, endpoint: str, body: bytes | None, headers: Sequence[str], content_type: str | None
    ) -> Attempt:
        sent: dict[str, str] = {}
        for header in headers:
            name, _, value = header.partition(":")
            sent[name.strip()] = value.strip()
        if body is not None and content_type:
            sent["Content-Type"] = content_type
        refused = forbidden_address(urlsplit(endpoint).hostname or "")
        if refused is not None:
            return Attempt(False, refused)
        try:
            response = self._http.post(endpoint, content=body or b"", headers=sent)
        except httpx2.HTTPError as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Attempt(True)
        return Attempt(False, f"HTTP {response.status_code}: {response.text[:300]}")

    def close(self) -> None:
        self._http.close()


def encode(bundle: dict[str, Any]) -> bytes:
    return orjson.dumps(bundle)


__all__ = [
    "Attempt",
    "Backoff",
    "HttpSender",
    "Sender",
    "encode",
    "forbidden_address",
    "notification_bundle",
]
