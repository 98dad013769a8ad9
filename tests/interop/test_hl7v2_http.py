"""``POST /hl7/v2``: a bearer token is required and a facility's token speaks for it only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.tokens import TokenService
from sokhoe.store.ports import FhirStore
from tests.interop.test_hl7v2_mapping import msa, prepare, sample, versions

ER7 = {"content-type": "x-application/hl7-v2+er7"}


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
