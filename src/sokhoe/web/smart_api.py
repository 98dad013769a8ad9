"""SMART on FHIR discovery: how an app or a connected system finds out how to sign in here.

A SMART client library reads ``[FHIR base]/.well-known/smart-configuration`` before anything
else; without it no such library can connect. It says what the server really does: the token
endpoint, client credentials for systems (SMART Backend Services) with a signed JWT
(``private_key_jwt``, RS384/ES384) or a shared secret (for local tools), SMART v2 scopes, and
SMART App Launch, standalone (``web/smart_authorize.py``): the authorization endpoint, PKCE
with S256 only, public and confidential (secret) apps, a patient picked at launch,
``openid fhirUser`` (id_tokens signed RS256, keys at ``/auth/jwks``, also named by the OpenID
configuration beside it) and refresh tokens. An EHR launch (an app started from inside the
clinic pages) is not offered, so ``launch-ehr`` is not claimed. Public, like the
CapabilityStatement.
See: https://hl7.org/fhir/smart-app-launch/conformance.html
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sokhoe.access.client_assertion import ALGORITHMS
from sokhoe.web import deps

router = APIRouter(tags=["SMART on FHIR"])


SCOPES = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.read",
    "user/*.rs",
    "user/*.cruds",
    "system/*.cruds",
    "system/*.rs",
    "system/*.read",
]


def _endpoints(base_url: str) -> dict[str, str]:
    """Where the issuer, keys, authorisation and tokens are: both discovery documents."""
    base = base_url.rstrip("/")
    return {
        "issuer": f"{base}/fhir",
        "jwks_uri": f"{base}/auth/jwks",
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": f"{base}/auth/token",
    }


def configuration(base_url: str) -> dict[str, Any]:
    return {
        **_endpoints(base_url),
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_post",
            "client_secret_basic",
        ],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-patient",
            "permission-user",
            "permission-offline",
            "permission-online",
            "permission-v1",
            "permission-v2",
            "sso-openid-connect",
        ],
    }


def openid_configuration(base_url: str) -> dict[str, Any]:
    """What OpenID Connect clients read to check an id_token (``sso-openid-connect``).
    See: https://openid.net/specs/openid-connect-discovery-1_0.html"""
    return {
        **_endpoints(base_url),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "name", "fhirUser"],
    }


async def _answer(request: Request) -> JSONResponse:
    body = configuration(deps.settings(request).base_url)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/fhir/.well-known/smart-configuration", summary="SMART configuration")
async def smart_configuration(request: Request) -> JSONResponse:
    return await _answer(request)


@router.get("/.well-known/smart-configuration", summary="SMART configuration (server root)")
async def smart_configuration_root(request: Request) -> JSONResponse:
    return await _answer(request)


@router.get("/fhir/.well-known/openid-configuration", summary="OpenID configuration")
async def openid(request: Request) -> JSONResponse:
    body = openid_configuration(deps.settings(request).base_url)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})
