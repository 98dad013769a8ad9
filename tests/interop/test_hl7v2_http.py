"""``POST /hl7/v2``: a bearer token is required and a facility's token speaks for it only."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from sokhoe.access.accounts import create_user
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.otp import link_citizen
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.mpi.identifiers import mrn_system
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS
from tests.interop.test_hl7v2_mapping import err, msa, patients_by, prepare, sample, versions

ER7 = {"content-type": "x-application/hl7-v2+er7"}
PASSWORD = "mật-khẩu-dài-2026"


def facility_token(client: TestClient, facility: str) -> str:
    tokens: TokenService = client.app.state.tokens  # type: ignore[attr-defined]
    new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
    caller = authenticate_client(tokens.engine, new.client_id, new.client_secret)
    return tokens.issue(caller)[0]


def test_a_platform_client_posts_a_message_and_gets_the_ack(
    store: FhirStore, client: TestClient
) -> None:
    prepare(store)
    r = client.post("/hl7/v2", content=sample("adt_a04"), headers=ER7)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("x-application/hl7-v2+er7")
    assert msa(r.text)[1:3] == ["AA", "A04-0001"]
    again = client.post("/hl7/v2", content=sample("adt_a04"), headers=ER7)
    assert again.text == r.text


def test_a_facility_token_sends_for_its_own_facility_only(
    store: FhirStore, client: TestClient
) -> None:
    prepare(store)
    own = {**ER7, "authorization": f"Bearer {facility_token(client, '79001')}"}
    ok = client.post("/hl7/v2", content=sample("adt_a04"), headers=own)
    assert msa(ok.text)[1] == "AA"
    # results for the person the facility just registered: the relationship exists now
    results = client.post("/hl7/v2", content=sample("oru_r01"), headers=own)
    assert msa(results.text)[1] == "AA", results.text
    before = versions(store)
    other = {**ER7, "authorization": f"Bearer {facility_token(client, '01001')}"}
    refused = client.post("/hl7/v2", content=sample("adt_a08"), headers=other)
    assert msa(refused.text)[1] == "AR"
    assert "acts for 01001" in refused.text
    assert versions(store) == before


def test_no_token_no_message(store: FhirStore, client: TestClient) -> None:
    prepare(store)
    before = versions(store)
    r = client.post("/hl7/v2", content=sample("adt_a04"), headers={**ER7, "authorization": ""})
    assert r.status_code == 401
    wrong_type = client.post("/hl7/v2", content=sample("adt_a04"))
    assert wrong_type.status_code == 400
    assert versions(store) == before


Snapshot = tuple[list[tuple[str, str, int, bytes]], int]


def snapshot(store: FhirStore) -> Snapshot:
    """Every current resource (type, id, version, content) and the count of all versions."""
    current = sorted(
        (r.resource_type, r.id, r.version_id, orjson.dumps(r.content, option=orjson.OPT_SORT_KEYS))
        for r in store.iter_all()
    )
    return current, versions(store)


def _staff_token(api: TestClient, username: str, role: str, facility: str) -> str:
    tokens: TokenService = api.app.state.tokens  # type: ignore[attr-defined]
    create_user(
        tokens.engine, username, PASSWORD, role, username, facility=facility, hasher=FAST_HASHER
    )
    r = api.post("/auth/staff/sign-in", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _citizen_token(api: TestClient, var: Path, phone: str, patient_id: str) -> str:
    tokens: TokenService = api.app.state.tokens  # type: ignore[attr-defined]
    link_citizen(tokens.engine, phone, patient_id)
    assert api.post("/auth/citizen/code", json={"phone": phone}).status_code == 202
    sms = json.loads((var / "sms-outbox.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    code = next(w for w in sms["text"].split() if w.isdigit() and len(w) == 6)
    r = api.post("/auth/citizen/verify", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_staff_and_citizen_tokens_may_not_send_and_change_nothing(
    store: FhirStore, tmp_path: Path
) -> None:
    """A receptionist of the very facility in MSH-4, and the citizen the ADT is about: both are
    refused (403, an AR NACK echoing MSH-10) and the store is exactly as before. The same ADT
    from the facility's connected system then applies, so the refusals left no receipt."""
    repo = prepare(store)
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url="sqlite://", var_dir=tmp_path)
    with TestClient(create_app(settings, store), base_url=BASE) as api:
        his = {**ER7, "authorization": f"Bearer {facility_token(api, '79001')}"}
        assert msa(api.post("/hl7/v2", content=sample("adt_a04"), headers=his).text)[1] == "AA"
        [patient] = patients_by(repo, mrn_system("79001"), "BN-100234")
        callers = {
            "staff": _staff_token(api, "le.tan", "receptionist", "79001"),
            "citizen": _citizen_token(api, tmp_path, "0903123456", patient["id"]),
        }
        before = snapshot(store)
        for kind, token in callers.items():
            headers = {**ER7, "authorization": f"Bearer {token}"}
            refused = api.post("/hl7/v2", content=sample("adt_a08"), headers=headers)
            assert refused.status_code == 403, (kind, refused.text)
            assert refused.headers["content-type"].startswith("x-application/hl7-v2+er7")
            assert msa(refused.text)[1:3] == ["AR", "A08-0001"], kind
            assert f"Only a connected system's token may send HL7 v2 messages, not a {kind}'s" in (
                err(refused.text)
            )
        assert snapshot(store) == before
        applied = api.post("/hl7/v2", content=sample("adt_a08"), headers=his)
        assert msa(applied.text)[1] == "AA", applied.text
        assert snapshot(store) != before
