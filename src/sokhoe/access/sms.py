"""Sending text messages (one-time codes) through a gateway chosen by configuration.

Vietnamese carriers are reached through an aggregator's HTTP API (a *brandname SMS* provider);
which one is a deployment decision, so the code depends only on :class:`SmsGateway`. Three
implementations: :class:`MemoryGateway` for tests, :class:`OutboxGateway` for development and
the demo (the code is read from a file instead of a phone), and :class:`HttpGateway` for a real
provider.

No gateway logs a message's text: it carries a one-time code, and logs are read by more people,
kept longer and shipped further than the code may be.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from sokhoe.errors import FhirError, Issue

log = logging.getLogger(__name__)


class SmsDeliveryError(FhirError):
    """503: the gateway refused or could not be reached; the caller may retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(503, [Issue(code="transient", diagnostics=message)])


class SmsGateway(Protocol):
    """Delivers one text message to a Vietnamese mobile number (``0912345678``)."""

    def send(self, phone: str, text: str) -> None: ...


@dataclass
class MemoryGateway:
    """Keeps messages in a list; for tests that do not care how messages leave."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


class OutboxGateway:
    """Appends each message as a JSON line ``{"to", "text", "at"}``; the log says only that
    a message was written, and where.

    The default in development: nothing leaves the machine, and the demo tells a tester to
    read their code from this file. Never configure it in production — the file holds codes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, phone: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"to": phone, "text": text, "at": datetime.now(UTC).isoformat()}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        log.info("SMS to %s written to %s", phone, self.path)

    def messages(self, phone: str | None = None) -> list[dict[str, Any]]:
        """The messages written so far, oldest first, optionally only those to ``phone``."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as src:
            rows = [json.loads(line) for line in src if line.strip()]
        return [r for r in rows if phone is None or r.get("to") == phone]


class HttpGateway:
    """POSTs ``{"to": phone, "text": text}`` as JSON with a bearer token to a provider.

    Uses ``urllib`` so that no HTTP client dependency is added for one request per sign-in.
    Most aggregators take this shape or need a thin relay; a provider-specific body belongs
    in a subclass overriding :meth:`payload`.
    """

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        if urlparse(url).scheme not in ("http", "https"):
            raise ValueError(f"The SMS gateway URL must be http(s), got {url!r}")
        self.url = url
        self.token = token
        self.timeout = timeout

    def payload(self, phone: str, text: str) -> dict[str, Any]:
        return {"to": phone, "text": text}

    def send(self, phone: str, text: str) -> None:
        body = json.dumps(self.payload(phone, text), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {self.token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SmsDeliveryError(
                f"The SMS gateway refused the message (HTTP {exc.code})"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SmsDeliveryError(f"The SMS gateway could not be reached ({exc})") from exc
        if not 200 <= status < 300:
            raise SmsDeliveryError(f"The SMS gateway answered HTTP {status}")
        log.info("SMS to %s sent through %s", phone, self.url)


def make_gateway(
    kind: str,
    outbox: str | Path,
    url: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
) -> SmsGateway:
    """The gateway configuration names: ``outbox`` (development, the default) or ``http``.

    Takes plain values so ``Settings`` stays the only reader of the environment.
    """
    if kind == "outbox":
        return OutboxGateway(outbox)
    if kind == "http":
        if not url or not token:
            raise ValueError("The http SMS gateway needs a URL and a token")
        return HttpGateway(url, token, timeout)
    raise ValueError(f"Unknown SMS gateway {kind!r}; use outbox or http")
