"""The FHIR -> 808 mapping's own rules: the code's type letter, the sex coding, one code per
prescription, and the table of unconfirmed fields."""

from __future__ import annotations

from typing import Any

import pytest

from sokhoe.prescribing.national import (
    FIELDS,
    PRESCRIPTION_CODE_SYSTEM,
    PrescriptionSources,
    national_code,
    prescription_payload,
    unconfirmed,
)


def _request(code: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "r1",
        "groupIdentifier": {"system": PRESCRIPTION_CODE_SYSTEM, "value": code},
        "authoredOn": "2026-12-06T02:30:00Z",
        "medicationCodeableConcept": {"coding": [{"code": "40.17", "display": "Paracetamol"}]},
        "dispenseRequest": {"quantity": {"value": 10, "unit": "viên"}},
    }


def _payload(gender: str | None, *codes: str) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "name": [{"text": "Lê Văn Cường"}]}
    if gender is not None:
        patient["gender"] = gender
    return prescription_payload(PrescriptionSources([_request(c) for c in codes], patient, {}, {}))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("79001abc1234-C", "79001abc1234-c"),
        ("79001abc1234-n", "79001abc1234-n"),
        ("79001abc1234-H", "79001abc1234-h"),
    ],
)
def test_the_type_letter_is_written_lower_case(code: str, expected: str) -> None:
    assert national_code(code) == expected
    assert _payload("male", code)["loai_don_thuoc"] == expected[-1]


def test_a_code_without_a_known_type_is_refused() -> None:
    with pytest.raises(ValueError, match="not a prescription code"):
        national_code("79001abc1234-X")


@pytest.mark.parametrize(
    ("gender", "sex"), [("male", 2), ("female", 3), ("other", 1), ("unknown", 1), (None, 1)]
)
def test_sex_uses_the_808_coding_not_xml_130(gender: str | None, sex: int) -> None:
    assert _payload(gender, "79001abc1234-C")["gioi_tinh"] == sex


def test_the_time_of_issue_is_vietnam_time() -> None:
    assert _payload("male", "79001abc1234-C")["ngay_gio_ke_don"] == "2026-12-06 09:30:00"


def test_lines_of_two_codes_are_not_one_prescription() -> None:
    with pytest.raises(ValueError, match="share one groupIdentifier"):
        _payload("male", "79001abc1234-C", "79001zzz9999-C")


def test_every_field_sent_is_in_the_table_and_the_unconfirmed_ones_are_listed() -> None:
    names = {f.name for f in FIELDS["gui-don-thuoc"]}
    assert set(_payload("female", "79001abc1234-C")) == names
    missing = unconfirmed()
    assert "ngay_sinh_benh_nhan" in missing["gui-don-thuoc"]
    assert "ma_don_thuoc" not in missing["gui-don-thuoc"]
    assert {f.name for f in FIELDS["cap-nhat-don-thuoc"]} == set(missing["cap-nhat-don-thuoc"])
