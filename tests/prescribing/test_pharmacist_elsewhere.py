"""A pharmacist, signed in for the counter, tries the record's other doors opened since the
counter was built: the station's self-declared list and identity check (clinic pages), the
citizen's portal, and ``$validate`` on a patient. Each stays closed, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.clinic.clinic_world import PASSWORD
from tests.clinic.test_pages import csrf_of
from tests.conftest import BASE
from tests.prescribing.rx_world import A, RxWorld, make_rx_world
from tests.prescribing.test_pharmacy_pages import pharmacist


@pytest.fixture
def rx(tmp_path: Path) -> RxWorld:
    return make_rx_world(tmp_path, BASE)


def _token(client: TestClient) -> dict[str, str]:
    r = client.post("/auth/staff/sign-in", json={"username": "ds.chau", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_station_pages_and_the_portal_stay_closed_to_a_pharmacist(rx: RxWorld) -> None:
    pid, _ = rx.person(A, "Lê Thị Hạnh")
    before = rx.platform.read("Patient", pid)
    with pharmacist(rx) as ds:
        csrf = csrf_of(ds.get("/pharmacy").text)  # a valid token: refusals are about the role
        for path in ("/clinic/self-declared", f"/clinic/patients/{pid}"):
            r = ds.get(path, follow_redirects=False)
            assert r.status_code in (303, 403), (path, r.status_code)
            assert "Lê Thị Hạnh" not in r.text, path
            if r.status_code == 303:
                assert r.headers["location"] in ("/pharmacy", "/clinic/sign-in"), path
        for path, form in (
            (f"/clinic/patients/{pid}/identity", {"cccd": "001085012345", "csrf": csrf}),
            (f"/clinic/patients/{pid}/self-declared", {"decision": "confirm", "csrf": csrf}),
        ):
            r = ds.post(path, data=form, follow_redirects=False)
            assert r.status_code in (303, 403), (path, r.status_code)
            assert r.headers.get("location") != f"/clinic/patients/{pid}", path
        # the staff cookie is no citizen's session: the portal asks for a phone sign-in
        for path in ("/portal/book", "/portal/access-log", "/portal/download", "/portal/family"):
            r = ds.get(path, follow_redirects=False)
            assert r.status_code in (303, 401, 403), (path, r.status_code)
            assert "Lê Thị Hạnh" not in r.text, path
        # $validate at the instance level: checking a delete reads the record through the
        # door, refused; a plain or update check does not look the id up at all, so the answer
        # is the same for a record that exists and for one that does not
        auth = _token(ds)
        body = {"resourceType": "Patient", "id": pid, "gender": "female"}
        r = ds.post(f"/fhir/Patient/{pid}/$validate?mode=delete", headers=auth)
        assert r.status_code == 403, r.text
        assert "Lê Thị Hạnh" not in r.text
        for mode in ("", "?mode=update"):
            real = ds.post(f"/fhir/Patient/{pid}/$validate{mode}", json=body, headers=auth)
            made_up = ds.post(
                f"/fhir/Patient/no-such-person/$validate{mode}",
                json={**body, "id": "no-such-person"},
                headers=auth,
            )
            assert real.status_code == made_up.status_code == 200, mode
            assert real.json() == made_up.json(), mode
    after = rx.platform.read("Patient", pid)
    assert after.version_id == before.version_id  # nothing written by any of it
