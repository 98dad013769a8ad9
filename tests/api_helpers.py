"""Small steps the API tests share: a connected system's token, a check-in, an observation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sokhoe.access.clients import create_client
from sokhoe.access.tokens import TokenService


def client_auth(api: TestClient, scopes: list[str], facility: str | None) -> dict[str, str]:
    """The Authorization header of a new connected system (of ``facility``, or the platform),
    obtained through ``POST /auth/token`` as a real client would."""
    tokens: TokenService = api.app.state.tokens  # type: ignore[attr-defined]
    new = create_client(tokens.engine, f"HIS {facility}", scopes, facility)
    r = api.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": new.client_id,
            "client_secret": new.client_secret,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def check_in(api: TestClient, auth: dict[str, str], qr: str) -> str:
    """``$check-in`` with a CCCD QR text; the Patient id."""
    body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": qr}]}
    r = api.post("/fhir/Patient/$check-in", json=body, headers=auth)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def observation(pid: str) -> dict[str, Any]:
    """A heart-rate Observation of ``pid``."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
