"""The health book on paper: the signed summary of one visit, and the whole book (PDF).

Both are always in Vietnamese (printed forms are, whatever the page's language) and say what
they are: a visit summary keeps the clinic's own wording and its footer ("Bản giấy chuyển đổi
từ hồ sơ bệnh án điện tử", the lookup code of the signature, who printed it and when, Circular
13/2025/TT-BYT), and is made only of a signed visit; the book follows QĐ 31/QĐ-BYT's order
(administrative data, allergies, diseases, vaccinations, visits with their diagnoses and
results, current medicines) and ends every page with "Bản giấy chuyển đổi từ hồ sơ sức khỏe
điện tử" and the time it was printed. Codes are worded through the portal's catalogue
(:class:`Wording`, given by the page), so the paper says what the screen says.
See: https://py-pdf.github.io/fpdf2/
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import segno
from fpdf import FPDF

from sokhoe import pdf as pdfs
from sokhoe.clinic.printing import FOOTER as RECORD_FOOTER
from sokhoe.fhir.references import reference_id
from sokhoe.interop.claims.formats import identifiers, name_text
from sokhoe.mpi.identifiers import BHYT, CCCD
from sokhoe.portal.administrative import administrative
from sokhoe.portal.book import Book, Entry
from sokhoe.portal.results import Range, Result
from sokhoe.portal.sources import Source
from sokhoe.portal.visit import VisitDetail, detail
from sokhoe.portal.words import GENDERS, JUDGEMENTS, N_, VERIFICATION
from sokhoe.store.ports import StoredResource

BOOK_FOOTER: Final = "Bản giấy chuyển đổi từ hồ sơ sức khỏe điện tử"
SUMMARY_TITLE: Final = "TÓM TẮT HỒ SƠ KHÁM BỆNH"
BOOK_TITLE: Final = "SỔ SỨC KHỎE ĐIỆN TỬ"
NOT_RECORDED: Final = "chưa có thông tin"
SELF_DECLARED: Final = N_("Self-declared")
UNKNOWN_SOURCE: Final = N_("Source not recorded")
USUAL_NOTE: Final = N_("* the usual range for adults; the laboratory's own range may differ")
LINE: Final = 5.5


@dataclass(frozen=True)
class Wording:
    """How the paper writes words and numbers (the page passes the catalogue's Vietnamese)."""

    say: Callable[[str], str]
    number: Callable[[Decimal, int], str]
    date: Callable[[str | None], str]
    datetime: Callable[[str | datetime | None], str]


def range_text(found: Range, w: Wording) -> str:
    places = found.decimals
    if found.low is not None and found.high is not None:
        return f"{w.number(found.low, places)}–{w.number(found.high, places)}"
    if found.high is not None:
        return f"≤ {w.number(found.high, places)}"
    return f"≥ {w.number(found.low or Decimal(0), places)}"


def result_text(r: Result, w: Wording) -> str:
    """ "Đường huyết 7,8 mmol/L — cao hơn mức bình thường (3,9–6,4)"."""
    if r.values:
        value = r.comparator + "/".join(w.number(v, r.decimals) for v in r.values)
    else:
        value = r.text
    text = " ".join(p for p in (w.say(r.name), value, w.say(r.unit) if r.unit else "") if p)
    if r.judgement:
        text += f" — {w.say(JUDGEMENTS[r.judgement])}"
    if r.range:
        text += f" ({range_text(r.range, w)}){'*' if r.range.usual else ''}"
    return text


def source_text(s: Source, w: Wording) -> str:
    if s.declared is not None:
        return f"{w.say(SELF_DECLARED)} – {w.say(VERIFICATION[s.declared])}"
    return s.facility or w.say(UNKNOWN_SOURCE)


def _entry(e: Entry, w: Wording) -> str:
    parts = [e.text, e.detail]
    if e.when:
        parts.append(w.date(e.when))
    return f"{' – '.join(p for p in parts if p)} ({source_text(e.source, w)})"


class _Writer:
    """Headings, labelled values and bullets on an fpdf2 document."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf

    def title(self, text: str) -> None:
        self.pdf.set_font(pdfs.FAMILY, "B", 15)
        self.pdf.multi_cell(0, 8, text, align="C", new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(2)

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self.pdf.set_font(pdfs.FAMILY, "B", 12)
        self.pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(pdfs.FAMILY, "", 10.5)

    def pair(self, label: str, value: str | None) -> None:
        self.pdf.set_font(pdfs.FAMILY, "B", 10.5)
        self.pdf.write(LINE, f"{label}: ")
        self.pdf.set_font(pdfs.FAMILY, "", 10.5)
        self.pdf.write(LINE, value or NOT_RECORDED)
        self.pdf.ln(LINE)

    def text(self, value: str, size: float = 10.5) -> None:
        self.pdf.set_font(pdfs.FAMILY, "", size)
        self.pdf.multi_cell(0, LINE, value, new_x="LMARGIN", new_y="NEXT")

    def bullets(self, items: Iterable[str], empty: str = NOT_RECORDED) -> None:
        self.pdf.set_font(pdfs.FAMILY, "", 10.5)
        found = False
        for item in items:
            found = True
            self.pdf.set_x(self.pdf.l_margin + 3)
            self.pdf.multi_cell(0, LINE, f"• {item}", new_x="LMARGIN", new_y="NEXT")
        if not found:
            self.pdf.set_x(self.pdf.l_margin + 3)
            self.pdf.multi_cell(0, LINE, empty, new_x="LMARGIN", new_y="NEXT")


def _patient_lines(write: _Writer, patient: dict[str, Any], w: Wording) -> None:
    write.pair("Họ và tên người bệnh", name_text(patient))
    gender = w.say(GENDERS.get(str(patient.get("gender")), GENDERS["unknown"]))
    write.pair("Ngày sinh", f"{w.date(patient.get('birthDate'))}   Giới tính: {gender}")
    ids = identifiers(patient, CCCD)
    if ids:
        write.pair("Số định danh cá nhân/CCCD", str(ids[0]["value"]))
    cards = identifiers(patient, BHYT)
    if cards:
        write.pair("Số thẻ BHYT", str(cards[0]["value"]))


def _qr_png(text: str) -> io.BytesIO:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=4, border=2)
    buffer.seek(0)
    return buffer


def visit_summary_pdf(
    visit: VisitDetail, w: Wording, printed_by: str, now: datetime, verify_url: str | None
) -> bytes:
    """The signed summary of ``visit`` (:class:`ValueError` if it is not signed: a paper copy
    is of a signed record)."""
    signature = visit.signature
    if signature is None:
        raise ValueError("a visit summary is printed only of a signed visit")
    footer = [
        f"{RECORD_FOOTER} · Hệ thống: sokhoe · Mã tra cứu: {signature.lookup_code}",
        f"In lúc {w.datetime(now)} bởi {printed_by}",
    ]
    pdf = pdfs.document(f"{SUMMARY_TITLE} — {visit.row.facility or ''}", footer=footer)
    write = _Writer(pdf)
    pdf.set_font(pdfs.FAMILY, "B", 10.5)
    pdf.cell(95, LINE, visit.row.facility or "")
    pdf.cell(
        0, LINE, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(pdfs.FAMILY, "", 10.5)
    pdf.cell(95, LINE, visit.facility_address)
    pdf.cell(0, LINE, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    write.title(SUMMARY_TITLE)
    _patient_lines(write, visit.patient or {}, w)
    period = w.datetime(visit.row.start)
    if visit.end:
        period += f" – {w.datetime(visit.end)}"
    write.pair("Thời gian khám", period)
    write.pair("Hình thức", w.say(visit.row.kind))
    if visit.row.reason:
        write.pair("Lý do khám", visit.row.reason)
    if visit.vitals:
        write.pair("Dấu hiệu sinh tồn", "; ".join(result_text(r, w) for r in visit.vitals))
    write.heading("Chẩn đoán")
    write.bullets(
        f"{d}{' (bệnh chính)' if n == 0 else ''}" for n, d in enumerate(visit.row.diagnoses)
    )
    if visit.results:
        write.heading("Kết quả cận lâm sàng")
        write.bullets(result_text(r, w) for r in visit.results)
        if any(r.range and r.range.usual for r in visit.results):
            write.text(w.say(USUAL_NOTE), 9)
    for title, body in visit.sections:
        write.heading(w.say(title))
        write.text(body)
    if visit.medicines:
        write.heading("Thuốc điều trị")
        write.bullets(f"{m.text} – {m.detail}" if m.detail else m.text for m in visit.medicines)
    if visit.follow_up:
        write.pair("Hẹn tái khám", w.date(visit.follow_up))
    if visit.referred_to:
        write.pair("Chuyển tuyến đến", visit.referred_to)
    pdf.ln(4)
    top = pdf.get_y()
    if verify_url:
        pdf.image(_qr_png(verify_url), x=pdf.l_margin, y=top, w=28)
    pdf.set_xy(pdf.l_margin + 34, top)
    write.pair("Người ký", signature.signer)
    pdf.set_x(pdf.l_margin + 34)
    write.pair("Đã ký bằng", f"{w.say(signature.method)} lúc {w.datetime(signature.when)}")
    pdf.set_x(pdf.l_margin + 34)
    write.pair("Mã tra cứu", signature.lookup_code)
    return pdfs.to_bytes(pdf)


def _by_visit(resources: list[StoredResource]) -> dict[str, list[StoredResource]]:
    """Resources grouped by the visit they name (``encounter``/``context``)."""
    grouped: dict[str, list[StoredResource]] = defaultdict(list)
    for stored in resources:
        content = stored.content or {}
        visit = reference_id(content.get("encounter") or content.get("context"), "Encounter")
        if visit:
            grouped[visit].append(stored)
        elif stored.resource_type == "Provenance":
            for target in content.get("target", []):
                signed = reference_id(target, "Encounter")
                if signed:
                    grouped[signed].append(stored)
    return grouped


def health_book_pdf(book: Book, w: Wording, now: datetime) -> bytes:
    """The whole book of ``book``'s profile (see the module's docstring)."""
    record = book.record
    footer = [f"{BOOK_FOOTER} · Hệ thống: sokhoe · In lúc {w.datetime(now)}"]
    pdf = pdfs.document(f"{BOOK_TITLE} — {book.name}", footer=footer)
    write = _Writer(pdf)
    write.title(BOOK_TITLE)
    admin = administrative(record.patient or {}, record.of("Observation"), record.facilities)
    write.heading("I. Thông tin hành chính")
    write.pair("Họ và tên", admin.name)
    write.pair("Ngày sinh", w.date(admin.birth_date))
    write.pair("Giới tính", w.say(GENDERS.get(str(admin.gender), GENDERS["unknown"])))
    write.pair("Dân tộc", admin.ethnicity)
    write.pair("Quốc tịch", admin.nationality)
    write.pair("Nghề nghiệp", admin.occupation)
    write.pair("Số định danh cá nhân", admin.personal_id)
    write.pair("Số điện thoại", admin.phone)
    write.pair("Số thẻ BHYT", admin.insurance_card)
    if admin.insurance_card:
        write.pair("Nơi đăng ký KCB ban đầu", admin.insurance_facility)
        valid = f"{w.date(admin.insurance_from)} – {w.date(admin.insurance_to)}"
        write.pair("Giá trị sử dụng thẻ", valid.strip(" –"))
    write.pair("Địa chỉ", admin.address)
    write.pair("Người đại diện theo pháp luật", admin.representative)
    blood = book.blood_group
    write.pair("Nhóm máu", f"{blood.text} ({source_text(blood.source, w)})" if blood else "")
    write.heading("II. Tiền sử dị ứng")
    write.bullets(_entry(e, w) for e in book.allergies)
    write.heading("III. Bệnh tật")
    write.bullets(_entry(e, w) for e in book.problems)
    write.heading("IV. Tiêm chủng")
    write.bullets(_entry(e, w) for e in book.vaccinations)
    write.heading("V. Các lần khám, chữa bệnh")
    grouped = _by_visit(record.resources)
    encounters = {s.id: s for s in record.of("Encounter")}
    usual = False
    for row in book.visits:
        stored = encounters.get(row.id)
        if stored is None:
            continue
        found = detail(stored, grouped.get(row.id, []), record.facilities, "vi")
        pdf.ln(1)
        pdf.set_font(pdfs.FAMILY, "B", 10.5)
        heading = f"{w.date(row.start)} – {row.facility or w.say(UNKNOWN_SOURCE)}"
        pdf.multi_cell(0, LINE, f"{heading} – {w.say(row.kind)}", new_x="LMARGIN", new_y="NEXT")
        if row.reason:
            write.pair("Lý do khám", row.reason)
        write.pair("Chẩn đoán", "; ".join(row.diagnoses))
        if found.vitals:
            write.pair("Dấu hiệu sinh tồn", "; ".join(result_text(r, w) for r in found.vitals))
        if found.results:
            write.pair("Kết quả", "; ".join(result_text(r, w) for r in found.results))
            usual = usual or any(r.range and r.range.usual for r in found.results)
        if found.follow_up:
            write.pair("Hẹn tái khám", w.date(found.follow_up))
    if not book.visits:
        write.bullets([])
    if usual:
        write.text(w.say(USUAL_NOTE), 9)
    write.heading("VI. Thuốc đang dùng")
    write.bullets(_entry(e, w) for e in book.medicines)
    return pdfs.to_bytes(pdf)


__all__ = [
    "BOOK_FOOTER",
    "Wording",
    "health_book_pdf",
    "range_text",
    "result_text",
    "source_text",
    "visit_summary_pdf",
]
