"""Narcotic ("N") and psychotropic ("H") prescriptions print on their own forms (Circular
26/2025/TT-BYT, Appendices II and III; ``clinic/prescription_forms.py``): three marked copies,
the patient's ID and address, the diagnosis, the quantity in digits (and, for a narcotic, in
Vietnamese words), the prescriber's name and signature, lines for the recipient's name and ID;
always in Vietnamese. An ordinary prescription keeps its single sheet."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sokhoe.clinic.prescription_forms import FORMS, Child, child_of, form_of
from sokhoe.clinic.printing import FOOTER, Printout, _quantity
from sokhoe.web.pages.common import TEMPLATES

PATIENT = {
    "name": "Nguyễn Văn Bình",
    "birth": "15/03/1950",
    "gender": "Nam",
    "cccd": "001050012345",
    "bhyt": "",
    "address": "Số 5 phố Hàng Bạc, Phường Hoàn Kiếm, Hà Nội",
}


def _printed(
    code: str,
    lines: list[tuple[str, int, str]],
    patient: dict[str, str] = PATIENT,
    child: Child | None = None,
) -> str:
    form = form_of(code[-1])
    doc = Printout(
        kind="prescription",
        title=form.title,
        facility="Bệnh viện Đa khoa Đống Đa",
        facility_address="Hà Nội",
        patient=dict(patient),
        visit_start="2026-12-06T09:00:00+07:00",
        visit_end="2026-12-06T09:30:00+07:00",
        diagnoses=[("C34.9", "U ác của phế quản hoặc phổi, không đặc hiệu")],
        signer="BS. Trần Văn An",
        signed_at="2026-12-06T09:31:00+07:00",
        method="chữ ký số",
        lookup_code="ABCD-EF01-2345",
        printed_by="BS. Trần Văn An",
        printed_at=datetime(2026, 12, 6, 2, 35, tzinfo=UTC),
        prescription={
            "code": code,
            "kind": form.kind,
            "form": form,
            "valid_until": "2026-12-11T09:31:00+07:00",
            "child": child,
            "lines": [
                {
                    "name": name,
                    **_quantity({"value": n, "unit": unit}, words=form.words),
                    "instructions": "Uống khi đau, cách nhau ít nhất 4 giờ",
                    "days": 5,
                }
                for name, n, unit in lines
            ],
        },
    )
    return TEMPLATES.get_template(form.template).render(
        lang="vi",
        domain="clinic",
        csrf="",
        doc=doc,
        footer=FOOTER,
        qr="<svg></svg>",
        rx_qr="<svg></svg>",
        rx_barcode="<svg></svg>",
    )


def _sheets(html: str) -> list[str]:
    return re.findall(r'<main class="sheet controlled".*?</main>', html, re.S)


def test_a_narcotic_prescription_prints_on_the_n_form_in_three_copies() -> None:
    html = _printed("01002a1b2c3d-N", [("Morphin 10mg/ml", 20, "ống"), ("Morphin 30mg", 5, "viên")])
    assert '<html lang="vi">' in html and "@page controlled" in html
    sheets = _sheets(html)
    assert len(sheets) == 3
    marks = [re.findall(r'<p class="copy-mark">([^<]+)', s)[0].strip() for s in sheets]
    assert marks == list(FORMS["N"].copies)
    assert "cơ sở khám bệnh" in marks[0] and "cấp, bán thuốc" in marks[2]
    for sheet in sheets:
        assert "<h1>ĐƠN THUỐC &#34;N&#34;</h1>" in sheet or '<h1>ĐƠN THUỐC "N"</h1>' in sheet
        assert "Phụ lục II, Thông tư số 26/2025/TT-BYT" in sheet
        assert "01002a1b2c3d-N" in sheet
        assert "001050012345" in sheet and "Phố Hàng Bạc".lower() in sheet.lower()
        assert "C34.9" in sheet
        # digits (a leading zero under ten) and words
        assert "Số lượng: 20 (hai mươi) ống" in sheet
        assert "Số lượng: 05 (năm) viên" in sheet
        assert (
            "Người kê đơn" in sheet and "BS. Trần Văn An" in sheet and "Ký, ghi rõ họ tên" in sheet
        )
        recipient = re.search(r'<div class="recipient">.*?</div>', sheet, re.S)
        assert recipient is not None
        assert "Người nhận thuốc" in recipient.group(0) and "CCCD" in recipient.group(0)
        assert FOOTER in sheet


def test_a_psychotropic_prescription_prints_on_the_h_form_without_words() -> None:
    html = _printed("01002a1b2c3d-H", [("Diazepam 5mg", 10, "viên")])
    sheets = _sheets(html)
    assert len(sheets) == 3
    assert all("ĐƠN THUỐC &#34;H&#34;" in s or 'ĐƠN THUỐC "H"' in s for s in sheets)
    assert "Phụ lục III" in sheets[0] and "Phụ lục II," not in sheets[0]
    assert "Số lượng: 10 viên" in sheets[0] and "(mười)" not in html
    assert '<div class="recipient">' in sheets[0] and "001050012345" in sheets[0]


def test_an_unknown_id_leaves_a_line_to_fill_and_an_ordinary_form_stays_one_sheet() -> None:
    unknown = {**PATIENT, "cccd": "", "address": ""}
    html = _printed("01002a1b2c3d-N", [("Morphin 10mg/ml", 2, "ống")], unknown)
    sheet = _sheets(html)[0]
    assert re.search(r"CCCD/Hộ chiếu: <span class=\"fill\">", sheet)
    assert re.search(r"Nơi cư trú: <span class=\"fill\">", sheet)
    assert form_of("c") is FORMS["C"] and form_of("x") is FORMS["C"]
    assert FORMS["C"].template == "clinic/print/prescription.html" and not FORMS["C"].copies
    assert _quantity({"value": 4, "unit": "viên"}, words=False) == {
        "quantity": "04 viên",
        "words": "",
    }


@pytest.mark.parametrize("kind", ["N", "H"])
def test_each_controlled_form_has_its_own_print_view(kind: str) -> None:
    assert FORMS[kind].template == f"clinic/print/prescription_{kind.lower()}.html"
    assert TEMPLATES.get_template(FORMS[kind].template) is not None


def test_a_young_child_shows_months_weight_and_a_line_for_who_brought_them() -> None:
    today = date(2026, 12, 6)
    assert child_of("2022-12-07", today, None) == Child(47, None)  # a day short of 48 months
    assert child_of("2020-12-06", today, Decimal("18.5")) is None  # 72 months: no longer
    assert child_of("2020-12-07", today, Decimal("18.5")) == Child(71, Decimal("18.5"))
    assert child_of(None, today, None) is None and child_of("2022", today, None) is None
    young = {**PATIENT, "birth": "07/12/2022"}
    sheet = _sheets(
        _printed("01002a1b2c3d-H", [("Diazepam 2mg", 5, "viên")], young, Child(47, Decimal("14.2")))
    )[0]
    assert "47 tháng tuổi" in sheet and "14,2 kg" in sheet
    assert 'người đưa trẻ đến khám: <span class="fill">' in sheet
    plain = _printed("01001a1b2c3d-C", [("Paracetamol 250mg", 10, "gói")], young, Child(47, None))
    assert "47 tháng tuổi" in plain and 'cân nặng: <span class="fill"></span> kg' in plain
    assert "tháng tuổi" not in _printed("01001a1b2c3d-C", [("Paracetamol 500mg", 10, "viên")])
