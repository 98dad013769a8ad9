"""Staff of one facility cannot see another facility's queue, drafts or patients it does not
share, through the pages or the FHIR API, on SQLite and on PostgreSQL.

The commune station A registers someone only it knows and starts their visit with a draft; the
hospital B (which knows another person A also treats) tries every way in: the queue, the visit,
the draft, the chart, the desk's search, signing, printing, the bill, and the API's read,
search, count, include, ``$everything`` and a conditional update."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sokhoe.store.sql import SqlStore
from tests.api_helpers import client_auth
from tests.clinic.clinic_world import World, make_world
from tests.clinic.test_pages import csrf_of, signed_in
from tests.conftest import BASE, module_store

HOA_QR = (
    "079190004321|023456789|Trần Thị Hoa|02021990|Nữ|"
    "Số 5, Phường Hoàn Kiếm, Thành phố Hà Nội|10102022"
)
SECRET = "ghi chú riêng của trạm A"
READ = ["system/Patient.rs", "system/Encounter.rs", "system/Observation.rs", "system/*.rs"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"walls-{request.param}")
    store: SqlStore = module_store(request, folder, "clinic_walls")
    yield make_world(folder, BASE, store if request.param == "postgres" else None)
    store.close()


def test_another_facility_sees_nothing_of_a_patient_it_does_not_share(world: World) -> None:
    with signed_in(world, "bs.an") as station:
        csrf = csrf_of(station.get("/clinic").text)
        found = station.post("/clinic/check-in", data={"q": HOA_QR, "csrf": csrf})
        assert found.status_code == 200 and "Trần Thị Hoa" in found.text
        pid = re.search(r'name="patient" value="([^"]+)"', found.text)
        assert pid is not None
        hoa = pid.group(1)
        station.post(
            "/clinic/visits",
            data={
                "csrf": csrf,
                "patient": hoa,
                "name": "Trần Thị Hoa",
                "payer": "self-pay",
                "room": world.rooms[0],
            },
        )
        queue = station.get("/clinic").text
        visit = re.search(r'href="/clinic/visits/([^"]+)">Trần Thị Hoa', queue)
        assert visit is not None
        eid = visit.group(1)
        saved = station.post(f"/clinic/visits/{eid}/draft", data={"csrf": csrf, "notes": SECRET})
        assert saved.status_code in (200, 303)
        assert SECRET in station.get(f"/clinic/visits/{eid}").text
        with signed_in(world, "bs.b") as hospital:
            csrf = csrf_of(hospital.get("/clinic").text)
            assert "Trần Thị Hoa" not in hospital.get("/clinic").text
            for path in (
                f"/clinic/visits/{eid}",
                f"/clinic/visits/{eid}/sign",
                f"/clinic/visits/{eid}/bill",
                f"/clinic/visits/{eid}/print/summary",
                f"/clinic/visits/{eid}/signature",
            ):
                page = hospital.get(path)
                assert "Trần Thị Hoa" not in page.text and SECRET not in page.text, path
            for path, form in (
                (f"/clinic/visits/{eid}/draft", {"notes": "x"}),
                (f"/clinic/visits/{eid}/close", {"dx0": "I10"}),
                (f"/clinic/visits/{eid}/orders", {"service": "lab:2345-7"}),
                (f"/clinic/visits/{eid}/bill", {}),
                (f"/clinic/visits/{eid}/sign", {"code": "123456"}),
            ):
                answer = hospital.post(path, data={"csrf": csrf, **form})
                assert answer.status_code in (403, 404), (path, answer.status_code)
                assert SECRET not in answer.text
            chart = hospital.get(f"/clinic/patients/{hoa}").text
            assert "Trần Thị Hoa" not in chart and "079190004321" not in chart
            search = hospital.post(
                "/clinic/check-in", data={"q": "Tran Thi Hoa 1990", "csrf": csrf}
            )
            assert search.status_code == 200  # the token is good: refusals above are the walls
            assert "Trần Thị Hoa" not in search.text
        # the station's own pages still hold the draft, untouched
        assert SECRET in station.get(f"/clinic/visits/{eid}").text
    # the FHIR API, as the hospital's own system
    with TestClient(world.app, base_url=BASE) as api:
        auth = client_auth(api, READ, "01002")
        assert api.get(f"/fhir/Patient/{hoa}", headers=auth).status_code in (403, 404)
        assert api.get(f"/fhir/Encounter/{eid}", headers=auth).status_code in (403, 404)
        for query in (
            f"Encounter?patient=Patient/{hoa}",
            f"Encounter?_id={eid}",
            "Patient?name=Hoa",
            "Patient?identifier=079190004321",
            f"Encounter?_id={eid}&_include=Encounter:subject",
            f"Patient?_has:Encounter:patient:_id={eid}",
        ):
            bundle = api.get(f"/fhir/{query}", headers=auth).json()
            assert bundle.get("total", 0) == 0 and not bundle.get("entry"), query
        count = api.get("/fhir/Patient?name=Hoa&_summary=count", headers=auth).json()
        assert count["total"] == 0
        everything = api.get(f"/fhir/Patient/{hoa}/$everything", headers=auth)
        assert everything.status_code in (403, 404)
        taken = api.put(
            f"/fhir/Encounter?_id={eid}",
            headers=auth,
            json={
                "resourceType": "Encounter",
                "status": "cancelled",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/{hoa}"},
            },
        )
        assert taken.status_code in (403, 404, 412), taken.text
    enc = world.platform.read("Encounter", eid).content or {}
    assert enc["status"] in ("arrived", "in-progress")
