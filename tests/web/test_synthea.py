"""Every Synthea bundle in shared/data loads unchanged as a transaction, reads back, and
``$everything`` returns each patient's whole compartment (the bulk NDJSON export is loaded in
``test_synthea_bulk.py``, a file of its own so the two long loads run on different workers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.fhir.definitions import patient_compartment
from sokhoe.store import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, SHARED_DATA, platform_token

SYNTHEA = SHARED_DATA / "synthea"


def _bundles() -> list[Path]:
    """Patient bundles, those using conditional references first.

    The self-contained (2019) bundles POST their organisations without ``ifNoneExist``, so once
    one is loaded an ``Organization?identifier=…`` reference matches two resources, and the
    specification says the server must then fail rather than guess. The shared data README
    orders loading the same way.
    """
    paths = [
        p
        for p in SYNTHEA.glob("*.json")
        if not p.name.startswith(("hospitalInformation", "practitionerInformation"))
    ]
    return sorted(paths, key=lambda p: (b"?identifier=" not in p.read_bytes(), p.name))


def _refers_to(resource: Any, target: str) -> bool:
    return f'"reference":"{target}"'.encode() in orjson.dumps(resource)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """SQLite only: a transaction bundle's semantics (conditional references, ``urn:uuid``,
    ordering) are the FHIR core's, the same on every store; what each store does with a
    transaction is held to one contract in ``tests/store`` and ``tests/web/test_bundles.py``,
    and the bulk NDJSON below still loads into every store."""
    store = SqlStore(f"sqlite:///{tmp_path / 'synthea.db'}")
    app = create_app(Settings(base_url=BASE, database_url="sqlite://", var_dir=tmp_path), store)
    try:
        with TestClient(app, base_url=BASE) as c:
            c.headers["Authorization"] = f"Bearer {platform_token(app)}"
            yield c
    finally:
        store.close()


def test_all_synthea_bundles_load_read_back_and_everything(client: TestClient) -> None:
    store: FhirStore = client.app.state.store  # type: ignore[attr-defined]
    for info in sorted(SYNTHEA.glob("*Information*.json")):
        r = client.post(
            "/fhir", content=info.read_bytes(), headers={"Content-Type": "application/fhir+json"}
        )
        assert r.status_code == 200, r.text[:500]
        statuses = {e["response"]["status"][:3] for e in r.json()["entry"]}
        assert statuses <= {"200", "201"}, statuses
    bundles = _bundles()
    assert len(bundles) == 60
    read_over_http: set[str] = set()
    for path in bundles:
        raw = path.read_bytes()
        bundle = orjson.loads(raw)
        r = client.post("/fhir", content=raw, headers={"Content-Type": "application/fhir+json"})
        assert r.status_code == 200, f"{path.name}: {r.text[:500]}"
        responses = orjson.loads(r.content)["entry"]
        assert len(responses) == len(bundle["entry"])
        locations = [e["response"]["location"] for e in responses]
        # every resource reads back: all of them from the store in one look-up per type, and
        # one of each type over HTTP (26,000 audited HTTP reads cost minutes for no more
        # assurance: the read route is the same for each)
        by_full_url = {}
        by_type: dict[str, list[str]] = {}
        for entry, loc in zip(bundle["entry"], locations, strict=True):
            rtype, rid = loc.split("/")[:2]
            assert rtype == entry["resource"]["resourceType"], loc
            by_type.setdefault(rtype, []).append(rid)
            by_full_url[entry["fullUrl"]] = f"{rtype}/{rid}"
        with store.begin() as tx:
            for rtype, ids in by_type.items():
                found = {r.id: r for r in tx.read_many([(rtype, i) for i in ids])}
                assert set(found) == set(ids), rtype
                assert all(r.content and r.content["id"] == r.id for r in found.values())
        for rtype, ids in by_type.items():
            if rtype in read_over_http:
                continue
            read_over_http.add(rtype)
            got = client.get(f"/fhir/{rtype}/{ids[0]}")
            assert got.status_code == 200 and got.json()["id"] == ids[0], rtype
        patients = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        for p in patients:
            pid = by_full_url[p["fullUrl"]].split("/")[1]
            expected = {
                by_full_url[e["fullUrl"]]
                for e in bundle["entry"]
                if e["fullUrl"] == p["fullUrl"]
                or (
                    patient_compartment().get(e["resource"]["resourceType"])
                    and _refers_to(e["resource"], p["fullUrl"])
                )
            }
            seen: set[str] = set()
            url: str | None = f"/fhir/Patient/{pid}/$everything?_count=1000"
            while url:
                page = orjson.loads(client.get(url).content)
                seen |= {
                    f"{e['resource']['resourceType']}/{e['resource']['id']}"
                    for e in page.get("entry", [])
                }
                url = next(
                    (
                        link["url"].replace(BASE, "")
                        for link in page["link"]
                        if link["relation"] == "next"
                    ),
                    None,
                )
            assert seen == expected, f"{path.name}: {sorted(expected ^ seen)[:5]}"
