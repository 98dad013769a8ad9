"""The facility's price list: what each drug, test, image, examination and bed day costs.

Why it is here: prices are not part of the clinical record, but every XML2/XML3 row needs a unit
price (``DON_GIA``) and an insurance cost group (``MA_NHOM``). A real deployment loads the
facility's own list (the "danh mục dùng tại cơ sở" it registered with the portal, Mẫu 03/DM and
05/DM of Circular 12/2026/TT-BTC) from a CSV file; the built-in list below only prices what the
demo population generator produces, with made-up but plausible 2026 prices in đồng.

CSV columns: ``kind,key,code,name,unit,price,group[,per_day,ingredient,route]`` where ``kind``
is ``drug`` (``key`` = the medication code in the record), ``lab`` (``key`` = LOINC),
``imaging`` (``key`` = DICOM modality + "|" + description, or just the modality),
``exam`` (``key`` = Encounter.class code), ``bed`` (``key`` = Encounter.class code) or
``procedure`` (``key`` = the Procedure code).

Unconfirmed: the service codes follow the ``CC.KKKK.GGGG`` shape of QĐ 2010/QĐ-BYT appendix 1,
but the numbers below are illustrative, not looked up; the ``MA_NHOM`` groups follow the common
reading of the QĐ 130 cost groups (1 lab, 2 imaging, 4 listed drugs, 8 procedures, 13
examination, 15 inpatient bed) and were not checked against the official wording.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

Category = Literal["drug", "lab", "imaging", "exam", "bed", "procedure"]
CATEGORIES: tuple[Category, ...] = ("drug", "lab", "imaging", "exam", "bed", "procedure")

GROUP_LAB = 1
GROUP_IMAGING = 2
GROUP_DRUG = 4
GROUP_PROCEDURE = 8
GROUP_EXAM = 13
GROUP_BED = 15
SUPPLY_GROUPS = frozenset({10, 11})
"""Groups counted in ``T_VTYT`` (medical supplies)."""


@dataclass(frozen=True, slots=True)
class PriceItem:
    """One priced entry of the facility's list."""

    category: Category
    key: str
    """What the record says (drug code, LOINC, modality|description, class code)."""
    code: str
    """What the XML says (``MA_THUOC`` active-ingredient code, ``MA_DICH_VU``)."""
    name: str
    unit: str
    price: Decimal
    group: int
    per_day: Decimal = Decimal(1)
    """Drugs: units taken per day (quantity = per_day × days supplied)."""
    ingredient: str = ""
    """Drugs: the active ingredient (*hoạt chất*), for the overlapping-prescription check."""
    route: str = ""
    """Drugs: ``DUONG_DUNG`` route code (unconfirmed: "1.01" oral, "2.15" intravenous)."""


@dataclass
class Catalogue:
    """Price items by (category, key)."""

    items: dict[tuple[Category, str], PriceItem] = field(default_factory=dict)
    source: str = "built-in demo list"

    def add(self, item: PriceItem) -> None:
        self.items[(item.category, item.key)] = item

    def get(self, category: Category, key: str) -> PriceItem | None:
        return self.items.get((category, key))

    def imaging(self, modality: str, description: str) -> PriceItem | None:
        """The most specific imaging entry: modality and description, else modality alone."""
        return self.get("imaging", f"{modality}|{description}") or self.get("imaging", modality)


def _drug(
    key: str, code: str, name: str, unit: str, price: str, per_day: str, ingredient: str, route: str
) -> PriceItem:
    return PriceItem(
        "drug",
        key,
        code,
        name,
        unit,
        Decimal(price),
        GROUP_DRUG,
        Decimal(per_day),
        ingredient,
        route,
    )


_ORAL = "1.01"
_IV = "2.15"
_DEMO: tuple[PriceItem, ...] = (
    _drug("AMLODIPIN-5", "40.469", "Amlodipin 5mg", "Viên", "350", "1", "amlodipin", _ORAL),
    _drug("LOSARTAN-50", "40.491", "Losartan 50mg", "Viên", "1200", "1", "losartan", _ORAL),
    _drug("METFORMIN-500", "40.794", "Metformin 500mg", "Viên", "420", "2", "metformin", _ORAL),
    _drug("GLICLAZID-30", "40.786", "Gliclazid 30mg MR", "Viên", "1500", "1", "gliclazid", _ORAL),
    _drug(
        "PARACETAMOL-500", "40.48", "Paracetamol 500mg", "Viên", "180", "3", "paracetamol", _ORAL
    ),
    _drug("AMOXICILIN-500", "40.154", "Amoxicilin 500mg", "Viên", "950", "3", "amoxicilin", _ORAL),
    _drug("CEFTRIAXON-1G", "40.221", "Ceftriaxon 1g", "Lọ", "21000", "1", "ceftriaxon", _IV),
    _drug("OMEPRAZOL-20", "40.677", "Omeprazol 20mg", "Viên", "600", "1", "omeprazol", _ORAL),
    _drug("ORESOL", "40.1017", "Oresol 245", "Gói", "2100", "3", "oresol", _ORAL),
    _drug("MELOXICAM-7.5", "40.63", "Meloxicam 7.5mg", "Viên", "390", "1", "meloxicam", _ORAL),
    _drug(
        "CIPROFLOXACIN-500",
        "40.258",
        "Ciprofloxacin 500mg",
        "Viên",
        "1100",
        "2",
        "ciprofloxacin",
        _ORAL,
    ),
    _drug(
        "CLORPHENIRAMIN-4",
        "40.76",
        "Clorpheniramin 4mg",
        "Viên",
        "90",
        "2",
        "clorpheniramin",
        _ORAL,
    ),
    _drug(
        "ATORVASTATIN-10", "40.746", "Atorvastatin 10mg", "Viên", "1300", "1", "atorvastatin", _ORAL
    ),
    PriceItem("lab", "2345-7", "23.0075.1494", "Định lượng Glucose", "Lần", Decimal(21500), 1),
    PriceItem("lab", "4548-4", "23.0083.1523", "Định lượng HbA1c", "Lần", Decimal(101000), 1),
    PriceItem("lab", "2160-0", "23.0051.1494", "Định lượng Creatinin", "Lần", Decimal(21500), 1),
    PriceItem(
        "lab", "777-3", "22.0120.1370", "Tổng phân tích tế bào máu", "Lần", Decimal(46200), 1
    ),
    PriceItem(
        "lab",
        "2093-3",
        "23.0041.1506",
        "Định lượng Cholesterol toàn phần",
        "Lần",
        Decimal(26900),
        1,
    ),
    PriceItem(
        "imaging", "DX", "18.0071.0028", "Chụp X-quang số hóa 1 phim", "Lần", Decimal(65400), 2
    ),
    PriceItem(
        "imaging",
        "CT",
        "18.0137.0041",
        "Chụp CT sọ não không tiêm thuốc cản quang",
        "Lần",
        Decimal(536000),
        2,
    ),
    PriceItem("imaging", "US", "18.0001.0001", "Siêu âm ổ bụng", "Lần", Decimal(43900), 2),
    PriceItem("exam", "AMB", "02.1896", "Khám Nội", "Lần", Decimal(50600), GROUP_EXAM),
    PriceItem("exam", "EMER", "02.1896", "Khám Cấp cứu", "Lần", Decimal(50600), GROUP_EXAM),
    PriceItem("exam", "IMP", "02.1896", "Khám Nội", "Lần", Decimal(50600), GROUP_EXAM),
    PriceItem(
        "bed", "IMP", "K03.1921", "Giường Nội khoa loại 1 Hạng II", "Ngày", Decimal(239000), 15
    ),
)


def demo_catalogue() -> Catalogue:
    """The built-in list that prices everything the demo population generates."""
    catalogue = Catalogue()
    for item in _DEMO:
        catalogue.add(item)
    return catalogue


def load_catalogue(path: Path) -> Catalogue:
    """Read a facility's price list from CSV (columns in the module docstring).

    Raises ValueError naming the line of the first bad row, so a broken list stops the export
    before any file is written.
    """
    catalogue = Catalogue(source=str(path))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                category = row["kind"].strip()
                if category not in CATEGORIES:
                    raise ValueError(f"kind must be one of {', '.join(CATEGORIES)}")
                price = Decimal(row["price"].strip())
                if price < 0:
                    raise ValueError("price must not be negative")
                catalogue.add(
                    PriceItem(
                        category,
                        row["key"].strip(),
                        row["code"].strip(),
                        row["name"].strip(),
                        row["unit"].strip(),
                        price,
                        int(row["group"]),
                        Decimal((row.get("per_day") or "1").strip()),
                        (row.get("ingredient") or "").strip(),
                        (row.get("route") or "").strip(),
                    )
                )
            except (KeyError, ValueError, InvalidOperation, AttributeError) as exc:
                raise ValueError(f"{path}:{line}: bad price-list row: {exc}") from exc
    return catalogue
