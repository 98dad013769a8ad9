"""SMART on FHIR discovery: how an app or a connected system finds out how to sign in here.

A SMART client library reads ``[FHIR base]/.well-known/smart-configuration`` before anything
else; without it no such library can connect. It says what the server really does: the token
endpoint, client credentials for systems (SMART Backend Services) with a signed JWT
(``private_key_jwt``, RS384/ES384) or a shared secret (for local tools), SMART v2 scopes.
Authorization-code launches (apps acting for a citizen or a clinician) are not offered yet, so
no authorization endpoint is claimed. Public, like the CapabilityStatement.
See: https://hl7.org/fhir/smart-app-launch/conformance.html
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sokhoe.access.client_assertion import ALGORITHMS
from sokhoe.web import deps

router = APIRouter(tags=["SMART on FHIR"])


def configuration(base_url: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    return {
        "token_endpoint": f"{base}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.cruds", "system/*.rs", "system/*.read", "patient/*.rs"],
        "response_types_supported": [],
        "capabilities": [
            "client-confidential-asymmetric",
            "client-confidential-symmetric",
            "permission-v2",
        ],
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
