"""The upstream provincial server as a FHIR REST client (client credentials, token refresh).

The station is a connected system of upstream: it signs in at ``POST {upstream}/auth/token``
with the client id and secret registered for its facility, and every call carries the bearer
token; a 401 (the token expired during a long sync) signs in again once and retries.
Transport failures (upstream down, killed, unreachable) raise :class:`UpstreamUnreachable`
so the caller can stop cleanly — everything synchronised so far is already recorded.
See: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

from sokhoe.errors import FhirError, Issue


class UpstreamUnreachable(FhirError):
    """The upstream server could not be reached or dropped the connection."""

    def __init__(self, message: str) -> None:
        super().__init__(503, [Issue("transient", message)])


class UpstreamRefused(FhirError):
    """Upstream answered with an error the sync cannot handle (its OperationOutcome text)."""

    def __init__(self, message: str) -> None:
        super().__init__(502, [Issue("exception", message)])


@dataclass(frozen=True, slots=True)
class Answer:
    """One upstream response: status, parsed JSON body (or None) and the ETag header."""

    status: int
    body: dict[str, Any] | None
    etag: str | None

    @property
    def version(self) -> int | None:
        """The version the answer describes (``ETag: W/"3"`` or ``meta.versionId``)."""
        if self.etag:
            text = self.etag.removeprefix("W/").strip('"')
            if text.isdigit():
                return int(text)
        vid = ((self.body or {}).get("meta") or {}).get("versionId")
        return int(vid) if isinstance(vid, str) and vid.isdigit() else None

    def diagnostics(self) -> str:
        issues = (self.body or {}).get("issue") or [{}]
        return str(issues[0].get("diagnostics") or f"HTTP {self.status}")


@dataclass
class UpstreamClient:
    """A signed-in connection to one upstream server (``base_url`` without ``/fhir``)."""

    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 30.0
    on_request: Callable[[str, str], None] | None = None
    """Called before every FHIR request with (method, path): progress hooks and tests."""
    _http: httpx.Client = field(init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/").removesuffix("/fhir")
        self._http = httpx.Client(timeout=self.timeout)

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sign-in -------------------------------------------------------------------------
    def sign_in(self) -> None:
        try:
            r = self._http.post(
                f"{self.base_url}/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
            )
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(f"Upstream {self.base_url} is unreachable: {exc}") from exc
        if r.status_code != 200:
            raise UpstreamRefused(
                f"Upstream refused the station's client credentials (HTTP {r.status_code})"
            )
        self._token = str(r.json()["access_token"])

    # -- FHIR calls ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``path`` is relative to ``{base}/fhir`` or an absolute URL (a ``next`` link)."""
        url = path if path.startswith(("http://", "https://")) else f"{self.fhir_base}/{path}"
        if self.on_request is not None:
            self.on_request(method, path)
        if self._token is None:
            self.sign_in()
        for attempt in (1, 2):
            sent = {
                "Accept": "application/fhir+json",
                "Authorization": f"Bearer {self._token}",
                **(headers or {}),
            }
            try:
                r = self._http.request(method, url, params=params, json=json, headers=sent)
            except httpx.TransportError as exc:
                raise UpstreamUnreachable(
                    f"Connection to upstream lost during {method} {path}: {exc}"
                ) from exc
            if r.status_code == 401 and attempt == 1:
                self.sign_in()
                continue
            break
        body: dict[str, Any] | None = None
        if r.content:
            try:
                parsed = r.json()
            except ValueError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        return Answer(r.status_code, body, r.headers.get("etag"))

    def get(self, path: str, params: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, params=params)


__all__ = ["Answer", "UpstreamClient", "UpstreamRefused", "UpstreamUnreachable"]
