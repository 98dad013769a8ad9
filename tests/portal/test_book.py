"""My health book (``/portal/book``): the summary with each item's source, the visits with their
results in plain words, the signed summary as a PDF; what a citizen can never see of another
person's record, whatever link, id or cookie they try; an unlinked phone's empty book."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from sokhoe.access.db import access_engine
from sokhoe.access.otp import CITIZEN_SCOPES
from sokhoe.access.principal import Principal
from sokhoe.errors import Forbidden, NotFound
from sokhoe.fhir.resources import format_instant
from sokhoe.portal.book import build, read_book
from sokhoe.portal.record import Record
from sokhoe.portal.results import Range, explain, judge
from sokhoe.portal.sources import Facilities, Source
from sokhoe.portal.visit import read_visit
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.store.ports import StoredResource
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from tests.clinic.clinic_world import PHONE
from tests.conftest import BASE
from tests.pg_server import PostgresServer
from tests.portal.book_world import OTHER_PHONE, BookWorld, make_book_world
from tests.portal.pdf_reading import pdf_pages, pdf_text
from tests.portal.portal_world import sign_in

GLUCOSE = "Đường huyết 7,8 mmol/L — cao hơn mức bình thường (3,9–6,4)"


@pytest.fixture(scope="module")
def book_world(tmp_path_factory: pytest.TempPathFactory) -> BookWorld:
    return make_book_world(tmp_path_factory.mktemp("book"), BASE)


@pytest.fixture(scope="module")
def an(book_world: BookWorld) -> Iterator[TestClient]:
    with sign_in(book_world.world, PHONE) as client:
        yield client


@pytest.fixture(scope="module")
def binh(book_world: BookWorld) -> Iterator[TestClient]:
    with sign_in(book_world.world, OTHER_PHONE) as client:
        yield client


def text_of(page: str) -> str:
    """What a reader sees of the page's main part: tags dropped, spaces collapsed."""
    if '<main id="main"' in page:
        page = page.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    main = re.sub(r"<svg.*?</svg>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split()).replace(" ,", ",")


def item_of(page: str, words: str) -> str:
    """The ``<li>`` of the page that holds ``words``."""
    found = [li for li in re.findall(r"<li[^>]*>.*?</li>", page, re.DOTALL) if words in li]
    assert found, words
    return found[0]


def test_the_summary_says_where_each_item_comes_from(book_world: BookWorld, an: TestClient) -> None:
    page = an.get("/portal/book")
    assert page.status_code == 200
    seen = text_of(page.text)
    # the glucose at hospital B, in plain words with the usual range, and where it was measured
    assert GLUCOSE in seen
    glucose = text_of(item_of(page.text, "Đường huyết"))
    assert re.search(r"\d\d/\d\d/\d{4} Bệnh viện Đa khoa Đống Đa$", glucose)
    # the station's measurements, Vietnamese numbers
    for shown in ("Huyết áp 150/95 mmHg", "Nhiệt độ 36,8 °C", "Cân nặng 70,5 kg", "Mạch 82"):
        assert shown in seen, shown
    # facility records and declarations told apart, in words and visually
    penicillin = item_of(page.text, "Penicilin")
    assert 'class="declared"' not in penicillin and "Bệnh viện Đa khoa Đống Đa" in penicillin
    seafood = item_of(page.text, "Hải sản")
    assert 'class="declared"' in seafood and 'class="tag waiting"' in seafood
    assert "Tự khai báo · Chờ trạm y tế xác nhận" in text_of(seafood)
    diabetes = item_of(page.text, "E11")
    assert 'class="declared"' in diabetes and "Trạm y tế đã xác nhận" in text_of(diabetes)
    hypertension = text_of(item_of(page.text, "I10"))
    assert "Tăng huyết áp vô căn (nguyên phát)" in hypertension
    assert "Trạm Y tế Phường Hoàn Kiếm" in hypertension and "Tự khai báo" not in hypertension
    assert "Amlodipin 5mg" in text_of(item_of(page.text, "Uống 1 viên"))
    assert "Nhóm máu O Rh+" in seen and "A Rh+" not in seen  # the laboratory's, not declared
    # visits at both facilities, the signed one marked, the ICD-10 title in Vietnamese
    assert f'href="/portal/book/visits/{book_world.signed_visit}"' in page.text
    assert 'href="/portal/book/visits/enc-b"' in page.text
    assert "Đã ký Chẩn đoán: I10 Tăng huyết áp vô căn (nguyên phát)" in seen
    # the prescription: its code, its QR (inline SVG), not bought yet
    assert f"Mã đơn thuốc: {book_world.code}" in seen and "Chưa mua thuốc" in seen
    assert re.search(r'<div class="qr" role="img"[^>]*><svg', page.text)
    assert "X-quang ngực thẳng" in seen and "Tái khám" in seen
    day = (datetime.now(UTC) + timedelta(days=30)).strftime("%d/%m/%Y")
    assert f"{day} · Tái khám Trạm Y tế Phường Hoàn Kiếm" in seen
    assert 'href="/portal/vaccinations"' in page.text
    # nothing of the other person
    for theirs in ("Bình", "Dị ứng bí mật", "J45", "12,3", book_world.other_code):
        assert theirs not in page.text, theirs


def test_a_visit_explains_its_results_and_gives_its_signed_summary(
    book_world: BookWorld, an: TestClient
) -> None:
    at_b = an.get("/portal/book/visits/enc-b")
    assert at_b.status_code == 200
    seen = text_of(at_b.text)
    assert f"{GLUCOSE}*" in seen  # the usual adult range, marked as such
    assert "Cholesterol toàn phần 4,1 mmol/L — trong mức bình thường (3,9–5,2) " in seen
    assert "khoảng thường gặp ở người lớn" in seen
    assert "Bác sĩ chưa ký lần khám này" in seen and "summary.pdf" not in at_b.text
    unsigned = an.get("/portal/book/visits/enc-b/summary.pdf")
    assert unsigned.status_code == 409 and "Bác sĩ chưa ký" in unsigned.text
    signed = an.get(f"/portal/book/visits/{book_world.signed_visit}")
    seen = text_of(signed.text)
    assert "Khám ngoại trú" in seen and "Lý do khám Đau đầu, chóng mặt" in seen
    assert "Quá trình bệnh lý và diễn biến Đau đầu từ 3 ngày nay." in seen
    code = re.search(r"Mã tra cứu: ([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})", seen)
    assert code is not None
    pdf = an.get(f"/portal/book/visits/{book_world.signed_visit}/summary.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert pdf_pages(pdf.content) == 1
    words = pdf_text(pdf.content)
    for shown in (
        "TÓM TẮT HỒ SƠ KHÁM BỆNH",
        "Nguyễn Văn An",
        "Trạm Y tế Phường Hoàn Kiếm",
        "I10 Tăng huyết áp vô căn (nguyên phát) (bệnh chính)",
        "Huyết áp 150/95 mmHg",
        "Bản giấy chuyển đổi từ hồ sơ bệnh án điện tử",
        code.group(1),
    ):
        assert shown in words, shown
    with access_engine(book_world.world.app.state.store).connect() as conn:
        printed = conn.execute(
            select(audit_event.c.patient_id).where(
                audit_event.c.action == "print", audit_event.c.agent.contains(PHONE)
            )
        ).all()
    assert ("p-an",) in printed


def test_english_is_one_switch_away(an: TestClient) -> None:
    seen = text_of(an.get("/portal/book?lang=en").text)
    assert "Blood sugar 7.8 mmol/L — higher than normal (3.9–6.4)" in seen
    assert "Self-declared · Confirmed by the health station" in seen
    assert "I10 Essential (primary) hypertension" in seen
    assert "Temperature 36.8 °C" in seen
    an.get("/portal/book?lang=vi")  # the cookie back to Vietnamese for the module's other tests


def test_no_link_id_or_cookie_opens_another_persons_record(
    book_world: BookWorld, an: TestClient, binh: TestClient
) -> None:
    their_visit = book_world.other_visit
    for path in (
        f"/portal/book/visits/{their_visit}",
        f"/portal/book/visits/{their_visit}/summary.pdf",
        f"/portal/book/visits/enc-b,{their_visit}",  # a FHIR search id list
        "/portal/book/visits/glu-b",  # another kind of resource of one's own
        f"/portal/book/visits/{book_world.other_code}",  # their prescription's code
        "/portal/book/visits/..%2F..%2Ffhir%2FPatient%2Fp-binh",
    ):
        refused = an.get(path)
        assert refused.status_code == 404, path
        assert "Bình" not in refused.text and "J45" not in refused.text
    # Bình, guessing An's visit ids, finds nothing either
    for path in (
        f"/portal/book/visits/{book_world.signed_visit}",
        f"/portal/book/visits/{book_world.signed_visit}/summary.pdf",
    ):
        refused = binh.get(path)
        assert refused.status_code == 404 and "Nguyễn Văn An" not in refused.text
    # a forged profile cookie shows one's own book, never the one it names
    forged = TestClient(book_world.world.app, base_url=BASE, cookies=dict(an.cookies))
    forged.cookies.set("sokhoe_profile", "p-binh", path="/portal")
    page = forged.get("/portal/book")
    assert "Nguyễn Văn An" in page.text and "Dị ứng bí mật" not in page.text
    assert book_world.other_code not in page.text
    # and each book keeps to its own person
    theirs = binh.get("/portal/book").text
    assert "Dị ứng bí mật của Bình" in theirs and book_world.other_code in theirs
    for mine in ("Nguyễn Văn An", "Penicilin", "Hải sản", book_world.code, 'visits/enc-b"'):
        assert mine not in theirs, mine
    # the door recorded no access of Bình's to An's record
    with access_engine(book_world.world.app.state.store).connect() as conn:
        touched = conn.execute(
            select(audit_event.c.patient_id, audit_event.c.outcome).where(
                audit_event.c.agent.contains(OTHER_PHONE), audit_event.c.patient_id == "p-an"
            )
        ).all()
    assert touched == []


def test_an_unlinked_phone_sees_an_empty_book_that_says_why(book_world: BookWorld) -> None:
    with sign_in(book_world.world, "0933333333") as stranger:
        page = stranger.get("/portal/book")
        assert page.status_code == 200
        seen = text_of(page.text)
        assert "Sổ của bạn đang trống: số điện thoại của bạn chưa gắn với hồ sơ sức khỏe" in seen
        assert 'href="/portal/declare"' in page.text
        for name in ("Nguyễn Văn An", "Bình", "Đường huyết"):
            assert name not in page.text
        visit = stranger.get(f"/portal/book/visits/{book_world.signed_visit}")
        assert visit.status_code == 404 and "Nguyễn Văn An" not in visit.text


def _statements(store: SqlStore) -> list[str]:
    said: list[str] = []

    def count(*args: object) -> None:
        said.append(str(args[2]))

    for engine in {store.reader, store.writer}:
        event.listen(engine, "before_cursor_execute", count)
    return said


def test_the_book_is_read_in_a_few_queries_however_long_the_record(
    book_world: BookWorld,
) -> None:
    """The summary reads the record whole, not item by item: adding visits and results adds no
    query (the issue's budget is p95 ≤ 200 ms for 300 resources; ``sokhoe.bench.portal``)."""
    store: SqlStore = book_world.world.app.state.store
    who = Principal("citizen", PHONE, PHONE, scopes=CITIZEN_SCOPES, patient_ids=("p-an",))
    said = _statements(store)
    before = read_book(book_world.platform.for_caller(who, audit_reads=True), "p-an")
    first = list(said)
    platform = book_world.platform
    for n in range(6):
        eid = f"enc-more-{n}"
        platform.update(book_world.rx.visit("p-an", eid, "01003"), "Encounter", eid)
        for value in (5.1, 5.6, 6.0):
            platform.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                    "subject": {"reference": "Patient/p-an"},
                    "encounter": {"reference": f"Encounter/{eid}"},
                    "effectiveDateTime": format_instant(datetime.now(UTC)),
                    "valueQuantity": {"value": value, "unit": "mmol/L"},
                },
                "Observation",
            )
    said.clear()
    after = read_book(book_world.platform.for_caller(who, audit_reads=True), "p-an")
    assert len(after.visits) == len(before.visits) + 6
    assert len(said) == len(first) <= 20, (first, said)
    assert "Bệnh viện Tim Hà Nội" in {v.facility for v in after.visits}


@pytest.fixture
def on_postgres(pg_server: PostgresServer, tmp_path: Path) -> Iterator[BookWorld]:
    """The book's world on a database of its own on the session's PostgreSQL server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    store = SqlStore(pg_server.create_database(f"sokhoe_book_{worker}"))
    try:
        yield make_book_world(tmp_path, BASE, store)
    finally:
        store.close()


def test_the_book_and_its_visits_read_the_same_on_postgresql(on_postgres: BookWorld) -> None:
    who = Principal("citizen", PHONE, PHONE, scopes=CITIZEN_SCOPES, patient_ids=("p-an",))
    repo = on_postgres.platform.for_caller(who, audit_reads=True)
    book = read_book(repo, "p-an")
    glucose = next(r for r in book.vitals if r.name == "Blood sugar")
    assert glucose.judgement == "high" and glucose.source.facility == "Bệnh viện Đa khoa Đống Đa"
    assert [p.code for p in book.prescriptions] == [on_postgres.code]
    assert {a.source.declared for a in book.allergies} == {None, "unconfirmed"}
    assert book.blood_group is not None and book.blood_group.text == "O Rh+"
    signed = [v.id for v in book.visits if v.signed]
    assert signed == [on_postgres.signed_visit]
    visit = read_visit(repo, "p-an", on_postgres.signed_visit)
    assert visit.signature is not None and visit.row.diagnoses[0].startswith("I10 ")
    assert read_visit(repo, "p-an", "enc-b").results[0].judgement == "high"
    for theirs in (on_postgres.other_visit, f"enc-b,{on_postgres.other_visit}"):
        with pytest.raises(NotFound):
            read_visit(repo, "p-an", theirs)
    with pytest.raises(Forbidden):
        read_book(repo, on_postgres.other_patient)


def test_results_are_judged_against_the_labs_range_first() -> None:
    lab = Source("Bệnh viện B")
    glucose = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "valueQuantity": {"value": 100, "unit": "mg/dL"},
    }
    usual = explain(glucose, lab)
    assert usual is not None and usual.judgement == "normal"
    assert usual.range == Range(Decimal(70), Decimal(115), usual=True)
    own = explain({**glucose, "referenceRange": [{"high": {"value": 99}}]}, lab)
    assert own is not None and own.judgement == "high" and own.range is not None
    assert own.range.usual is False and own.range.low is None
    flagged = explain(
        {
            "resourceType": "Observation",
            "code": {"text": "Ure máu"},
            "valueQuantity": {"value": 2.1, "unit": "mmol/L"},
            "interpretation": [{"coding": [{"code": "L"}]}],
        },
        lab,
    )
    assert flagged is not None and flagged.judgement == "low" and flagged.range is None
    unknown_unit = explain({**glucose, "valueQuantity": {"value": 5, "unit": "g/L"}}, lab)
    assert unknown_unit is not None and unknown_unit.range is None
    assert unknown_unit.judgement is None
    pulse = explain(
        {
            "resourceType": "Observation",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 160, "unit": "/min"},
        },
        lab,
        vital=True,
    )
    assert pulse is not None and pulse.judgement is None and pulse.name == "Pulse"
    assert judge(Decimal("6.4"), Range(Decimal("3.9"), Decimal("6.4"), True)) == "normal"
    assert judge(Decimal("3.8"), Range(Decimal("3.9"), None, True)) == "low"


def _stored(content: dict[str, Any]) -> StoredResource:
    return StoredResource(
        str(content["resourceType"]), str(content["id"]), 1, datetime.now(UTC), False, content
    )


def test_current_medicines_are_those_taken_now() -> None:
    """Active lines, but not a prescription never bought in its buying period; lines bought in
    full while their supply lasts; a cancelled prescription is said so."""
    now = datetime(2026, 3, 20, 3, tzinfo=UTC)

    def line(rid: str, drug: str, status: str, authored: str, days: int, **more: Any) -> Any:
        return _stored(
            {
                "resourceType": "MedicationRequest",
                "id": rid,
                "status": status,
                "medicationCodeableConcept": {"text": drug},
                "authoredOn": authored,
                "dispenseRequest": {
                    "validityPeriod": {"start": authored, "end": authored[:8] + "28T00:00:00Z"},
                    "quantity": {"value": days, "unit": "viên"},
                    "expectedSupplyDuration": {"value": days, "unit": "ngày", "code": "d"},
                },
                **more,
            }
        )

    record = Record(
        "p-x",
        [
            _stored({"resourceType": "Patient", "id": "p-x", "name": [{"text": "Trần Thị X"}]}),
            line("a", "Amlodipin", "active", "2026-03-18T01:00:00Z", 30),
            line("b", "Metformin", "active", "2026-02-01T01:00:00Z", 30),  # never bought
            line("c", "Paracetamol", "completed", "2026-03-15T01:00:00Z", 10),  # taken till 25
            line("d", "Amoxicilin", "completed", "2026-03-01T01:00:00Z", 7),  # finished
            line(
                "e",
                "Ibuprofen",
                "cancelled",
                "2026-03-19T01:00:00Z",
                5,
                groupIdentifier={"system": CODE_SYSTEM, "value": "01001abc1234-C"},
            ),
        ],
        6,
        Facilities({}, {}, {}),
    )
    found = build(record, now)
    assert [m.text for m in found.medicines] == ["Amlodipin", "Paracetamol"]
    assert [(p.code, p.state, p.dispensable) for p in found.prescriptions] == [
        ("01001abc1234-C", "cancelled", False)
    ]
    assert found.name == "Trần Thị X" and found.visits == [] and found.blood_group is None
