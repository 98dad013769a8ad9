"""Small steps the API tests share: a connected system's token, a check-in, an observation."""

from __future__ import annotations

import json
from pathlib import Path
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


def sms_code(api: TestClient) -> str:
    """The six digits of the last text message the development SMS outbox holds."""
    outbox = Path(api.app.state.settings.var_dir) / "sms-outbox.jsonl"  # type: ignore[attr-defined]
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return next(
        w.strip(".,:;")
        for w in text.split()
        if w.strip(".,:;").isdigit() and len(w.strip(".,:;")) == 6
    )


def prove_presence(api: TestClient, auth: dict[str, str], pid: str) -> None:
    """The patient reads out the code sent to the phone on their record: the facility may
    then see the history written elsewhere (``$presence-code`` + ``$confirm-presence``)."""
    sent = api.post(f"/fhir/Patient/{pid}/$presence-code", headers=auth)
    assert sent.status_code == 202, sent.text
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "code", "valueString": sms_code(api)}],
    }
    done = api.post(f"/fhir/Patient/{pid}/$confirm-presence", json=body, headers=auth)
    assert done.status_code == 200, done.text


def give_phone(api: TestClient, auth: dict[str, str], pid: str, phone: str) -> None:
    """The registering facility records the patient's mobile number."""
    patient = api.get(f"/fhir/Patient/{pid}", headers=auth).json()
    patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    r = api.put(f"/fhir/Patient/{pid}", json=patient, headers=auth)
    assert r.status_code == 200, r.text
