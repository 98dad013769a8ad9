"""Citizen sign-in through an external OpenID Connect provider (such as the national VNeID).

The platform is a Relying Party using the authorization code flow with PKCE (S256), ``state``
and ``nonce``: it discovers the provider from ``{issuer}/.well-known/openid-configuration``,
sends the citizen there, exchanges the returned code at the token endpoint (the client
authenticating with ``client_secret_basic`` or ``client_secret_post``), verifies the ID token
against the provider's published keys and gathers the claims; :mod:`.oidc_citizen` then maps
the identity to a Patient by the 12-digit personal ID (*căn cước công dân*, CCCD) the provider
asserts, and the citizen holds the same short-lived access token as after a one-time SMS code.

What VNeID itself calls the CCCD claim is unconfirmed (its Relying Party documentation is given
to connected agencies, not published): the claim name is a setting (``oidc_cccd_claim``,
default ``cccd``). When the ID token lacks it, the userinfo endpoint is asked, as OpenID
Connect allows a provider to release profile claims only there.

No flow state lives in process memory (several server processes serve one site): ``state``,
``nonce`` and the PKCE verifier travel in a short-lived signed cookie (:func:`seal_flow`). The
provider's metadata and keys are cached per process, which is only a cache: any process can
fetch them again.

See: https://openid.net/specs/openid-connect-core-1_0.html (3.1, code flow),
https://openid.net/specs/openid-connect-discovery-1_0.html, https://www.rfc-editor.org/rfc/rfc7636
(PKCE), https://www.rfc-editor.org/rfc/rfc9207 (``iss`` in the authorization response) and
https://www.rfc-editor.org/rfc/rfc9700 (OAuth 2.0 security best current practice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast
from urllib.parse import quote, urlencode, urlsplit

import httpx2
import jwt

from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.errors import FhirError, InvalidRequest, Issue, Unauthorized

ClientAuth = Literal["client_secret_basic", "client_secret_post"]

ALLOWED_ALGORITHMS: Final = ("RS256", "ES256", "PS256")
"""ID token signatures accepted: asymmetric only, never ``none`` nor an HMAC keyed with a
public key (the classic algorithm-confusion attack)."""
FLOW_COOKIE: Final = "sokhoe_oidc_flow"
FLOW_LIFETIME: Final = timedelta(minutes=10)
"""How long a citizen may spend at the provider between leaving and coming back."""
LEEWAY: Final = 60
"""Seconds of clock difference tolerated between the provider and us."""
CACHE_SECONDS: Final = 3600.0
"""Provider metadata and keys are fetched again after this long (or on an unknown key id)."""
MAX_RESPONSE_BYTES: Final = 1 << 20
_FLOW_AUDIENCE: Final = "sokhoe:oidc-flow"
_FLOW_PURPOSE: Final = b"sokhoe/oidc-flow-cookie/v1"
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


class ProviderError(FhirError):
    """502: the identity provider could not be reached or answered something unusable."""

    def __init__(self, message: str) -> None:
        super().__init__(502, [Issue("transient", message)])


# -- configuration ---------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (where plain http is tolerated)."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_https(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise ValueError(f"{what} must be an https URL (plain http only on loopback): {url!r}")


@dataclass(frozen=True)
class OidcConfig:
    """How this platform is registered with the provider (the ``oidc_*`` settings)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: tuple[str, ...] = ("openid", "profile")
    cccd_claim: str = "cccd"
    client_auth: ClientAuth = "client_secret_basic"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        _check_https(self.issuer, "oidc_issuer")
        if not self.client_id or not self.client_secret:
            raise ValueError("oidc_client_id and oidc_client_secret are required with oidc_issuer")
        if urlsplit(self.redirect_uri).scheme not in ("http", "https"):
            raise ValueError(f"oidc_redirect_uri is not an http(s) URL: {self.redirect_uri!r}")
        if "openid" not in self.scopes:
            raise ValueError("oidc_scopes must include 'openid'")
        if self.client_auth not in ("client_secret_basic", "client_secret_post"):
            raise ValueError(f"oidc_client_auth {self.client_auth!r} is not supported")

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        """The configuration, or ValueError naming the setting that is missing or unsafe."""
        if not settings.oidc_issuer:
            raise ValueError("oidc_issuer is not set")
        redirect = settings.oidc_redirect_uri or (
            settings.base_url.rstrip("/") + "/auth/oidc/callback"
        )
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id or "",
            client_secret=settings.oidc_client_secret or "",
            redirect_uri=redirect,
            scopes=tuple(settings.oidc_scopes.split()),
            cccd_claim=settings.oidc_cccd_claim,
            client_auth=cast(ClientAuth, settings.oidc_client_auth),
            timeout=settings.oidc_timeout,
        )

    @property
    def issuer_host(self) -> str:
        return urlsplit(self.issuer).netloc


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document the Relying Party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    authorization_response_iss: bool = False
    """The provider adds ``iss`` to its redirect (RFC 9207), which we then check."""

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        """Check the document names our issuer exactly (Discovery §4.3) and uses https."""
        if doc.get("issuer") != expected_issuer:
            raise ProviderError(
                f"The discovery document names issuer {doc.get('issuer')!r}, "
                f"not the configured {expected_issuer!r}"
            )
        urls: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str):
                raise ProviderError(f"The discovery document has no {name}")
            urls[name] = value
        userinfo = doc.get("userinfo_endpoint")
        userinfo = userinfo if isinstance(userinfo, str) else None
        for name, value in [*urls.items(), ("userinfo_endpoint", userinfo)]:
            if value is not None:
                try:
                    _check_https(value, name)
                except ValueError as exc:
                    raise ProviderError(str(exc)) from exc
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ProviderError("The provider does not support PKCE with S256")
        return cls(
            issuer=expected_issuer,
            userinfo_endpoint=userinfo,
            authorization_response_iss=doc.get("authorization_response_iss_parameter_supported")
            is True,
            **urls,
        )


# -- the flow cookie ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowState:
    """What the callback must find again: kept in the citizen's browser, signed by us (not
    encrypted: it holds nothing that browser may not know, and the cookie is HttpOnly)."""

    state: str
    nonce: str
    verifier: str
    """The PKCE code verifier (RFC 7636 §4.1, 43 to 128 characters): 64 of base64url."""

    @classmethod
    def new(cls) -> FlowState:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def seal_flow(tokens: TokenService, flow: FlowState, now: datetime | None = None) -> str:
    """The cookie value: a JWT (HS256) over the flow, signed with a key derived from the
    current token-signing key in the database, so any server process can open it."""
    kid, key = tokens.derived_signing_key(_FLOW_PURPOSE)
    moment = now or datetime.now(UTC)
    claims = {
        "aud": _FLOW_AUDIENCE,
        "st": flow.state,
        "no": flow.nonce,
        "cv": flow.verifier,
        "iat": int(moment.timestamp()),
        "exp": int((moment + FLOW_LIFETIME).timestamp()),
    }
    headers = {"kid": kid, "typ": "oidc-flow+jwt"}
    return jwt.encode(claims, key, algorithm="HS256", headers=headers)


def open_flow(tokens: TokenService, cookie: str | None) -> FlowState:
    """The flow a cookie carries; InvalidRequest when it is missing, forged or expired."""
    restart = "start again at /auth/oidc/login"
    if not cookie:
        raise InvalidRequest(f"No sign-in is in progress in this browser; {restart}", "cookie")
    try:
        kid = jwt.get_unverified_header(cookie).get("kid")
        key = tokens.derived_verifying_key(kid, _FLOW_PURPOSE) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown key")
        claims = jwt.decode(
            cookie,
            key,
            algorithms=["HS256"],
            audience=_FLOW_AUDIENCE,
            options={"require": ["exp", "iat", "aud"]},
        )
        return FlowState(str(claims["st"]), str(claims["no"]), str(claims["cv"]))
    except jwt.ExpiredSignatureError as exc:
        raise InvalidRequest(f"The sign-in took too long; {restart}", "cookie") from exc
    except (jwt.PyJWTError, KeyError) as exc:
        raise InvalidRequest(f"The sign-in cookie is not valid; {restart}", "cookie") from exc


# -- the Relying Party -------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: its issuer, their ``sub`` and the claims released."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]


@dataclass
class _Cached:
    value: Any
    fetched: float


@dataclass
class RelyingParty:
    """One provider registration; thread-safe, one per process."""

    config: OidcConfig
    clock: Callable[[], float] = time.time
    _cache: dict[str, _Cached] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- back-channel HTTP ---------------------------------------------------------------------
    def _client(self) -> httpx2.Client:
        return httpx2.Client(timeout=self.config.timeout, follow_redirects=False)

    def _json(self, response: httpx2.Response, what: str) -> dict[str, Any]:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ProviderError(f"The provider's {what} response is too large")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(f"The provider's {what} response is not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError(f"The provider's {what} response is not a JSON object")
        return body

    def _get(
        self, url: str, what: str, headers: Mapping[str, str] | None = None
    ) -> httpx2.Response:
        try:
            with self._client() as client:
                return client.get(url, headers={"Accept": "application/json", **(headers or {})})
        except httpx2.HTTPError as exc:
            raise ProviderError(f"The identity provider's {what} is unreachable ({exc})") from exc

    def _cached(self, key: str, fetch: Callable[[], Any], refresh: bool = False) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and not refresh and now - hit.fetched < CACHE_SECONDS:
            return hit.value
        value = fetch()
        with self._lock:
            self._cache[key] = _Cached(value, now)
        return value

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (cached for an hour)."""

        def fetch() -> ProviderMetadata:
            url = self.config.issuer + "/.well-known/openid-configuration"
            response = self._get(url, "discovery document")
            if response.status_code != 200:
                raise ProviderError(f"Discovery at {url} answered HTTP {response.status_code}")
            doc = self._json(response, "discovery")
            return ProviderMetadata.from_document(doc, self.config.issuer)

        return cast(ProviderMetadata, self._cached("metadata", fetch))

    def _jwks(self, refresh: bool = False) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            response = self._get(self.metadata().jwks_uri, "key set")
            if response.status_code != 200:
                raise ProviderError(f"The provider's JWKS answered HTTP {response.status_code}")
            keys = self._json(response, "JWKS").get("keys")
            if not isinstance(keys, list):
                raise ProviderError("The provider's JWKS has no 'keys' list")
            return [k for k in keys if isinstance(k, dict)]

        return cast(list[dict[str, Any]], self._cached("jwks", fetch, refresh))

    # -- front channel ---------------------------------------------------------------------------
    def authorization_url(self, flow: FlowState) -> str:
        """Where to send the citizen's browser (OpenID Connect Core §3.1.2.1)."""
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
        }
        endpoint = self.metadata().authorization_endpoint
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> Identity:
        """Check the provider's redirect against the flow, redeem the code, verify the ID
        token and gather the claims (from userinfo when the ID token lacks the CCCD one)."""
        returned = params.get("state", "")
        if not returned or not hmac.compare_digest(returned.encode(), flow.state.encode()):
            raise InvalidRequest(
                "The 'state' does not match this browser's sign-in; start again", "state"
            )
        meta = self.metadata()
        if "iss" in params or meta.authorization_response_iss:
            if params.get("iss") != meta.issuer:
                raise InvalidRequest("The response comes from another issuer (RFC 9207)", "iss")
        if "error" in params:
            detail = params.get("error_description") or params["error"]
            raise Unauthorized(f"The identity provider did not sign you in: {detail}")
        code = params.get("code")
        if not code:
            raise InvalidRequest("The provider's response has no 'code'", "code")
        tokens = self.exchange_code(code, flow.verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("The token response has no id_token")
        claims = self.verify_id_token(id_token, flow.nonce)
        access_token = tokens.get("access_token")
        if (
            self.config.cccd_claim not in claims
            and meta.userinfo_endpoint
            and isinstance(access_token, str)
        ):
            claims = {**self.userinfo(access_token, str(claims["sub"])), **claims}
        return Identity(meta.issuer, str(claims["sub"]), claims)

    # -- back channel ------------------------------------------------------------------------------
    def exchange_code(self, code: str, verifier: str) -> dict[str, Any]:
        """Redeem the authorization code at the token endpoint (Core §3.1.3.1)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": verifier,
        }
        cfg = self.config
        headers = {"Accept": "application/json"}
        if cfg.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts are form-encoded before base64
            user, secret = (quote(v, safe="") for v in (cfg.client_id, cfg.client_secret))
            pair = f"{user}:{secret}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": cfg.client_id, "client_secret": cfg.client_secret}
        try:
            with self._client() as client:
                response = client.post(self.metadata().token_endpoint, data=form, headers=headers)
        except httpx2.HTTPError as exc:
            raise ProviderError(f"The provider's token endpoint is unreachable ({exc})") from exc
        body = self._json(response, "token")
        if response.status_code != 200:
            error = body.get("error_description") or body.get("error") or response.status_code
            if response.status_code in (400, 401):
                raise Unauthorized(f"The identity provider refused the sign-in code ({error})")
            raise ProviderError(f"The provider's token endpoint failed ({error})")
        return body

    def _key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized(f"The ID token is signed with {alg!r}; only RS256/ES256/PS256 do")
        kid = header.get("kid")
        kty = "EC" if alg == "ES256" else "RSA"
        for refresh in (False, True):  # an unknown kid: the provider may have rotated its keys
            candidates = [
                k
                for k in self._jwks(refresh)
                if k.get("kty") == kty
                and k.get("use", "sig") == "sig"
                and k.get("alg", alg) == alg
                and (kid is None or k.get("kid") == kid)
            ]
            if len(candidates) == 1 or (candidates and kid is not None):
                try:
                    return jwt.PyJWK(candidates[0], algorithm=str(alg))
                except jwt.PyJWTError as exc:
                    raise ProviderError(f"The provider's key {kid!r} is unusable ({exc})") from exc
        raise Unauthorized(f"No key of the provider verifies this ID token (kid {kid!r})")

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims after the checks of Core §3.1.3.7: signature by the
        provider's key, ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` and ``nonce``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The ID token is malformed") from exc
        key = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self.config.client_id,
                issuer=self.config.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The ID token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The ID token is not valid ({exc})") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise Unauthorized("The ID token was issued to another client (azp)")
        if self.clock() - float(claims["iat"]) > FLOW_LIFETIME.total_seconds() + LEEWAY:
            raise Unauthorized("The ID token was issued too long ago")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(
            token_nonce.encode(), nonce.encode()
        ):
            raise Unauthorized("The ID token's nonce does not match this sign-in")
        return claims

    def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The claims from the userinfo endpoint, whose ``sub`` must be the ID token's
        (Core §5.3.2: otherwise the response may be substituted)."""
        endpoint = self.metadata().userinfo_endpoint
        if endpoint is None:
            return {}
        response = self._get(endpoint, "userinfo", {"Authorization": f"Bearer {access_token}"})
        if response.status_code != 200:
            raise ProviderError(f"The provider's userinfo answered HTTP {response.status_code}")
        if not response.headers.get("content-type", "").startswith("application/json"):
            raise ProviderError("Signed or encrypted userinfo responses are not supported")
        claims = self._json(response, "userinfo")
        if claims.get("sub") != subject:
            raise Unauthorized("The userinfo response is about another person than the ID token")
        return claims


def subject_of(config: OidcConfig, sub: str | None) -> str:
    """Our name for an external identity: ``oidc:{issuer host}:{sub}``."""
    return f"oidc:{config.issuer_host}:{sub}" if sub else f"oidc:{config.issuer_host}"
