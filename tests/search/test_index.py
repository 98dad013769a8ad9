"""Index extraction: the normalisation queries rely on, and the split a bulk load uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sokhoe.fhir.resources import with_meta
from sokhoe.search.index import (
    date_range,
    extract_client_index,
    extract_index,
    normalize_string,
    with_server_rows,
)
from sokhoe.search.rows import IndexRows
from tests.conftest import SHARED_DATA


def _as_sets(rows: IndexRows) -> list[set[tuple[object, ...]]]:
    return [
        set(rows.strings),
        set(rows.tokens),
        set(rows.dates),
        set(rows.references),
        set(rows.quantities),
        set(rows.numbers),
        set(rows.uris),
    ]


def test_vietnamese_folding() -> None:
    assert normalize_string("Đặng  Thị Ngọc Ánh") == "dang thi ngoc anh"
    assert normalize_string("NGUYỄN") == normalize_string("nguyen")
    assert normalize_string("Nguyên") == "nguyen"


def test_dates_default_to_vietnam_time() -> None:
    low, high = date_range("2026-11-23")
    assert datetime.fromtimestamp(low, UTC) == datetime(2026, 11, 22, 17, tzinfo=UTC)
    assert high - low == 86400
    y_low, y_high = date_range("2026")
    assert y_high - y_low == 365 * 86400
    z_low, _ = date_range("2026-11-23T00:00:00Z")
    assert z_low - low == 7 * 3600


def test_client_plus_server_rows_equal_the_full_index() -> None:
    when = datetime(2026, 11, 23, 3, 4, 5, tzinfo=UTC)
    checked = 0
    for path in sorted((SHARED_DATA / "synthea").glob("*.json"))[:6]:
        for entry in json.loads(path.read_bytes())["entry"]:
            resource = entry["resource"]
            stored = with_meta(resource, "x-1", 3, when)
            full = extract_index(stored)
            split = with_server_rows(
                extract_client_index(resource), "x-1", stored["meta"]["lastUpdated"]
            )
            assert _as_sets(split) == _as_sets(full), resource["resourceType"]
            checked += 1
    assert checked > 500


def test_patient_index_has_identifier_name_and_birthdate() -> None:
    rows = extract_index(
        {
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [{"system": "https://fhir.sokhoe.vn/sid/cccd", "value": "001090012345"}],
            "name": [{"family": "Trần", "given": ["Văn", "Bình"]}],
            "birthDate": "1990-05-01",
        }
    )
    tokens = {(t.param, t.system, t.code) for t in rows.tokens}
    assert ("identifier", "https://fhir.sokhoe.vn/sid/cccd", "001090012345") in tokens
    assert ("_id", None, "p1") in tokens
    names = {s.norm for s in rows.strings if s.param == "name"}
    assert {"tran", "van", "binh"} <= names
    assert any(d.param == "birthdate" for d in rows.dates)


REQUIRED_TYPES = (
    "Patient Practitioner PractitionerRole Organization Location Encounter EpisodeOfCare "
    "Condition AllergyIntolerance Observation DiagnosticReport ServiceRequest Procedure "
    "MedicationRequest MedicationDispense Medication Immunization ImagingStudy "
    "DocumentReference Composition CarePlan Questionnaire QuestionnaireResponse Coverage "
    "Claim Consent Provenance AuditEvent"
).split()


def test_every_required_type_has_its_r4_parameters_indexed() -> None:
    from sokhoe.fhir.searchparams import registry
    from sokhoe.search.index import _plan

    for rtype in REQUIRED_TYPES:
        supported = {p.code for p in registry().supported(rtype)}
        defined = {
            code
            for code, p in registry().for_type(rtype).items()
            if p.type in ("string", "token", "date", "reference", "quantity", "number", "uri")
            and (p.expression or p.extractor)
        }
        assert supported == defined, rtype
        assert {"_id", "_lastUpdated", "_tag", "_profile"} <= supported, rtype
        simple, unions, slow = _plan(rtype)
        planned = {code for _, code, _, _ in simple} | {code for code, _ in unions}
        planned |= {code for code, _, _ in slow}
        assert planned == supported, (rtype, supported - planned)
