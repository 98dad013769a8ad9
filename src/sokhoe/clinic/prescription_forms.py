"""The Ministry's prescription forms: ordinary, narcotic ("N"), psychotropic or precursor ("H").

Circular 26/2025/TT-BYT gives each type its own form: Art. 3 with Appendix I (ordinary
prescription), Appendix II (*Đơn thuốc "N"*) and Appendix III (*Đơn thuốc "H"*). What the
platform prints from them, and where each point comes from:

- the title: "ĐƠN THUỐC", 'ĐƠN THUỐC "N"', 'ĐƠN THUỐC "H"';
- the patient's personal ID (*số định danh cá nhân*/CCCD, or passport) and address, the
  diagnosis (Art. 6(1)-(4)); printed on every form, and on N and H with an empty line to fill
  by hand when the record has none, since the pharmacy checks them;
- quantities: a whole number under 10 with a leading zero ("05"), and for a narcotic the number
  then the words ("05 (năm) viên") (Art. 6(7); :mod:`sokhoe.prescribing.words`);
- the prescriber's full name and signature (*ký, ghi rõ họ tên*);
- a child under 72 months: the age in months, the weight, and the name of the parent or whoever
  brought the child (Art. 6(3)): the age and the weight recorded (:func:`child_of`), the name a
  line to fill by hand (the record does not keep who came);
- on N and H, the recipient (*người nhận thuốc*): their name and personal ID, filled in at the
  pharmacy, which asks to see the ID (Appendix II, notes 10-11; Appendix III);
- N and H are made in three copies (Art. 7(1) for N, Art. 9(1) for H): one kept by the
  prescribing facility, one in the patient's medical record, and one handed over with the
  patient and kept, stamped, where the medicine is dispensed.

Read through the research notes of the public repository nguyen2887/vn-healthcare
(``research/deep/DUOC.md``, DUOC-R03, R05, R07: read from the Circular's text), **not** from
the appendices' own pages: the order of the blocks on the page, the wording of each copy's
mark, the paper size (A4 here; A5 is common for prescriptions) and whether the quantity of an H
prescription is also written in words (not here: Art. 6(7) names narcotics only) are
**unconfirmed**. Everything the layout decides is in this module, so a correction is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

CIRCULAR: Final = "Thông tư số 26/2025/TT-BYT"


@dataclass(frozen=True)
class Form:
    """How one type of prescription is printed."""

    kind: str
    title: str
    appendix: str
    """The appendix of the Circular the form follows (shown small under the title)."""
    template: str
    """The print view (``web/templates/``), each with its own ``@page`` rules."""
    copies: tuple[str, ...]
    """Each copy's mark, one sheet each; a single unmarked sheet when empty."""
    words: bool
    """Each quantity also in Vietnamese words."""
    recipient: bool
    """Lines for the recipient's name, personal ID and signature."""
    source: str = CIRCULAR


FORMS: Final[dict[str, Form]] = {
    "C": Form(
        kind="C",
        title="ĐƠN THUỐC",
        appendix="Phụ lục I",
        template="clinic/print/prescription.html",
        copies=(),
        words=False,
        recipient=False,
    ),
    "N": Form(
        kind="N",
        title='ĐƠN THUỐC "N"',
        appendix="Phụ lục II",
        template="clinic/print/prescription_n.html",
        copies=(
            "Bản lưu tại cơ sở khám bệnh, chữa bệnh",
            "Bản lưu trong hồ sơ bệnh án",
            "Bản giao người bệnh, lưu tại cơ sở cấp, bán thuốc",
        ),
        words=True,
        recipient=True,
    ),
    "H": Form(
        kind="H",
        title='ĐƠN THUỐC "H"',
        appendix="Phụ lục III",
        template="clinic/print/prescription_h.html",
        copies=(
            "Bản lưu tại cơ sở khám bệnh, chữa bệnh",
            "Bản lưu trong hồ sơ bệnh án",
            "Bản giao người bệnh, lưu tại cơ sở cấp, bán thuốc",
        ),
        words=False,
        recipient=True,
    ),
}
"""The form of each prescription type (the code's last letter)."""

PRESCRIPTION_TITLES: Final = {kind: form.title for kind, form in FORMS.items()}
"""The form's title by type: narcotic (N) and psychotropic/precursor (H) forms are marked."""


CHILD_MONTHS: Final = 72
"""Under this age in months a prescription shows the months, the weight and who brought the
child (the same limit as the prescribing check's child rule)."""


@dataclass(frozen=True)
class Child:
    """What the form says of a young child."""

    months: int
    weight_kg: Decimal | None


def child_of(birth_date: str | None, on: date, weight_kg: Decimal | None) -> Child | None:
    """The child's part of the form when the patient is under :data:`CHILD_MONTHS` months on
    ``on`` (the prescription's date), else None (also when the birth date is not known)."""
    if not birth_date or len(birth_date) < 10:
        return None
    born = date.fromisoformat(birth_date[:10])
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return Child(months, weight_kg) if 0 <= months < CHILD_MONTHS else None


def form_of(kind: str) -> Form:
    """The form a prescription of ``kind`` is printed on (an unknown type: the ordinary one)."""
    return FORMS.get(kind.upper(), FORMS["C"])


__all__ = [
    "CHILD_MONTHS",
    "CIRCULAR",
    "FORMS",
    "PRESCRIPTION_TITLES",
    "Child",
    "Form",
    "child_of",
    "form_of",
]
