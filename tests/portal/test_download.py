"""Take my record with me (``/portal/download``): the whole record as FHIR JSON that validates
and as a printable Vietnamese health book that opens; both audited, neither cached, neither
ever holding another person's record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.db import access_engine
from sokhoe.fhir.validation import validate_resource
from sokhoe.store.sql.access_schema import audit_event
from tests.clinic.clinic_world import PHONE
from tests.conftest import BASE
from tests.portal.book_world import OTHER_PHONE, BookWorld, make_book_world
from tests.portal.pdf_reading import pdf_pages, pdf_text
from tests.portal.portal_world import sign_in
from tests.portal.test_book import GLUCOSE


@pytest.fixture(scope="module")
def book_world(tmp_path_factory: pytest.TempPathFactory) -> BookWorld:
    return make_book_world(tmp_path_factory.mktemp("download"), BASE)


@pytest.fixture(scope="module")
def an(book_world: BookWorld) -> Iterator[TestClient]:
    with sign_in(book_world.world, PHONE) as client:
        yield client


def _audited(book_world: BookWorld, phone: str) -> list[tuple[str, str | None, str]]:
    """(action, patient, outcome) of every audit row of ``phone``'s requests."""
    with access_engine(book_world.world.app.state.store).connect() as conn:
        rows = conn.execute(
            select(audit_event.c.action, audit_event.c.patient_id, audit_event.c.outcome).where(
                audit_event.c.agent.contains(phone)
            )
        ).all()
    return [(r.action, r.patient_id, r.outcome) for r in rows]


def _patients_of(bundle: dict[str, Any]) -> set[str]:
    """Every Patient id a resource of the bundle names."""
    text = json.dumps(bundle)
    return {p.split('"')[0] for p in text.split('"reference": "Patient/')[1:]}


def test_the_record_downloads_as_fhir_json_that_validates(
    book_world: BookWorld, an: TestClient
) -> None:
    sent = an.get("/portal/download/record.json")
    assert sent.status_code == 200
    assert sent.headers["cache-control"] == "no-store"
    assert sent.headers["content-type"].startswith("application/fhir+json")
    assert sent.headers["content-disposition"].startswith('attachment; filename="so-suc-khoe-p-an')
    bundle = json.loads(sent.content)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    entries = bundle["entry"]
    assert bundle["total"] == len(entries) > 15
    assert entries[0]["resource"]["resourceType"] == "Patient"
    assert entries[0]["resource"]["id"] == "p-an"
    kinds = {e["resource"]["resourceType"] for e in entries}
    assert {
        "Encounter",
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "ImagingStudy",
        "Appointment",
        "Composition",
        "Provenance",
    } <= kinds
    for entry in entries:
        resource = entry["resource"]
        validate_resource(resource)  # raises InvalidResource with every issue
        assert entry["fullUrl"] == f"{BASE}/fhir/{resource['resourceType']}/{resource['id']}"
    validate_resource(bundle)
    assert _patients_of(bundle) == {"p-an"}
    assert "Dị ứng bí mật" not in sent.text and book_world.other_code not in sent.text
    done = _audited(book_world, PHONE)
    assert ("operation", "p-an", "success") in done and ("export", "p-an", "success") in done


def test_the_health_book_prints_in_vietnamese_and_opens(
    book_world: BookWorld, an: TestClient
) -> None:
    sent = an.get("/portal/download/book.pdf")
    assert sent.status_code == 200 and sent.headers["content-type"] == "application/pdf"
    assert sent.headers["cache-control"] == "no-store"
    assert pdf_pages(sent.content) >= 1
    words = pdf_text(sent.content)
    for shown in (
        "SỔ SỨC KHỎE ĐIỆN TỬ",
        "Họ và tên: Nguyễn Văn An",
        "Ngày sinh: 15/03/1985",
        "Giới tính: Nam",
        "Số định danh cá nhân: 001085012345",
        "Số điện thoại: 0912345678",
        "Dân tộc: chưa có thông tin",
        "Nhóm máu: O Rh+ (Bệnh viện Đa khoa Đống Đa)",
        "Penicilin – Nổi mày đay (Bệnh viện Đa khoa Đống Đa)",
        "Hải sản (tôm, cua) (Tự khai báo – Chờ trạm y tế xác nhận)",
        "(Tự khai báo – Trạm y tế đã xác nhận)",
        "Trạm Y tế Phường Hoàn Kiếm – Khám ngoại trú",
        "Chẩn đoán: I10 Tăng huyết áp vô căn (nguyên phát)",
        GLUCOSE,
        "Amlodipin 5mg",
        "Bản giấy chuyển đổi từ hồ sơ sức khỏe điện tử",
        "In lúc",
    ):
        assert shown in words, shown
    for theirs in ("Bình", "J45", "Dị ứng bí mật"):
        assert theirs not in words
    assert ("print", "p-an", "success") in _audited(book_world, PHONE)


def test_downloads_keep_to_the_profile_the_phone_holds(
    book_world: BookWorld, an: TestClient
) -> None:
    forged = TestClient(book_world.world.app, base_url=BASE, cookies=dict(an.cookies))
    forged.cookies.set("sokhoe_profile", "p-binh", path="/portal")
    bundle = forged.get("/portal/download/record.json").json()
    assert _patients_of(bundle) == {"p-an"}
    assert "Bình" not in pdf_text(forged.get("/portal/download/book.pdf").content)
    with sign_in(book_world.world, OTHER_PHONE) as binh:
        theirs = binh.get("/portal/download/record.json").json()
    assert _patients_of(theirs) == {"p-binh"}
    assert "Nguyễn Văn An" not in json.dumps(theirs, ensure_ascii=False)
    assert [a for a in _audited(book_world, OTHER_PHONE) if a[1] == "p-an"] == []


def test_an_unlinked_phone_has_nothing_to_download(book_world: BookWorld) -> None:
    with sign_in(book_world.world, "0933333334") as stranger:
        page = stranger.get("/portal/download")
        assert page.status_code == 200 and "chưa gắn với hồ sơ sức khỏe" in page.text
        assert "/portal/download/record.json" not in page.text
        for path in ("/portal/download/record.json", "/portal/download/book.pdf"):
            refused = stranger.get(path)
            assert refused.status_code == 404 and "chưa gắn" in refused.text
            assert not refused.content.startswith(b"%PDF")
    signed_out = TestClient(book_world.world.app, base_url=BASE)
    gone = signed_out.get("/portal/download/record.json", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/portal/sign-in")
