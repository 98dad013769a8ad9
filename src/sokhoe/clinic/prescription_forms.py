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


def form_of(kind: str) -> Form:
    """The form a prescription of ``kind`` is printed on (an unknown type: the ordinary one)."""
    return FORMS.get(kind.upper(), FORMS["C"])


__all__ = ["CIRCULAR", "FORMS", "PRESCRIPTION_TITLES", "Form", "form_of"]
