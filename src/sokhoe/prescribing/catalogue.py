"""The drug catalogue (*danh mục thuốc*): what one medicine of a catalogue says.

A catalogue is a list of medicines published by a **source**: ``sokhoe`` (the reference list
that ships with the platform, ``data/reference.csv``), the Ministry's list, or one facility's own
list (*danh mục thuốc sử dụng tại cơ sở*). Each import of a source makes a new **version** of that
source's catalogue; each medicine is one FHIR ``Medication`` (``catalogue_fhir``).

The fields follow XML 130 table 2 (QĐ 130/QĐ-BYT as amended by QĐ 4750, 3176, 1931): ``MA_THUOC``
is the Ministry's active-ingredient code (*mã hoạt chất*), ``SO_DANG_KY`` the registration number
(*số đăng ký*), ``HAM_LUONG`` the strength, ``DUONG_DUNG`` the route, ``DON_VI_TINH`` the unit.
Unconfirmed: the format of ``MA_THUOC`` and ``SO_DANG_KY`` was not checked against the official
lists, so neither is pattern-checked; ATC codes are the WHO's public index. In the reference list
(``data/reference.csv``, see ``data/README.md``) the ``MA_THUOC`` codes are unconfirmed and given
only for the 13 demo medicines (each row says so in ``chua_xac_nhan``), no row has a registration
number, and the prescription-only and N/H flags were not checked against the circulars' lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sokhoe.demo.clinical import DRUG

REFERENCE_SOURCE = "sokhoe"
"""The source of the reference list that ships with the platform (``data/reference.csv``)."""

DRUG_SYSTEM = DRUG
"""Codes of the reference catalogue (the demo's MedicationRequests already use them)."""
MA_THUOC_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/ma-thuoc"
"""The Ministry's active-ingredient code, ``MA_THUOC`` of XML 130 table 2."""
ATC_SYSTEM = "http://www.whocc.no/atc"
INGREDIENT_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/active-ingredient"
"""sokhoe's own key for an active ingredient: its Vietnamese name folded (``natri-clorid``), so
that later checks (duplicate therapy, allergies) compare ingredients across catalogues."""
REGISTRATION_SYSTEM = "https://fhir.sokhoe.vn/sid/so-dang-ky"
"""The registration number (*số đăng ký*, ``SO_DANG_KY``) of a registered medicinal product."""
DRUG_CLASS_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/drug-class"
UCUM = "http://unitsofmeasure.org"

_EXT = "https://fhir.sokhoe.vn/StructureDefinition/"
EXT_DRUG_CLASS = _EXT + "drug-class"
EXT_ROUTE = _EXT + "drug-route"
EXT_UNIT = _EXT + "dispense-unit"
EXT_PRICE = _EXT + "drug-price"
EXT_STRENGTH_TEXT = _EXT + "strength-text"
EXT_CATALOGUE = _EXT + "catalogue-entry"
"""Complex: ``source`` (code) and ``version`` (the catalogue version that last changed it)."""
EXT_UNCONFIRMED = _EXT + "unconfirmed-field"
"""A column of this entry whose value was not checked against an official source."""

VALUE_SET_BASE = "https://fhir.sokhoe.vn/ValueSet/drug-catalogue"
"""``$expand`` of this URL searches every source; ``{VALUE_SET_BASE}-{source}`` one source."""

PRESCRIPTION_ONLY = "prescription-only"
NARCOTIC = "narcotic"
PSYCHOTROPIC = "psychotropic-precursor"
TRADITIONAL = "traditional"
DRUG_CLASSES: dict[str, str] = {
    PRESCRIPTION_ONLY: "Thuốc kê đơn",
    NARCOTIC: "Thuốc gây nghiện (N)",
    PSYCHOTROPIC: "Thuốc hướng thần, thuốc tiền chất (H)",
    TRADITIONAL: "Thuốc cổ truyền, thuốc dược liệu",
}
"""The flags a medicine may carry (codes of ``DRUG_CLASS_SYSTEM``)."""

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_/]{0,49}$")
ATC_PATTERN = re.compile(r"^[A-Z](\d{2}([A-Z]([A-Z](\d{2})?)?)?)?$")
"""Any ATC level: ``N``, ``N02``, ``N02B``, ``N02BE``, ``N02BE01``."""


@dataclass(frozen=True, slots=True)
class Ingredient:
    """One active ingredient (*hoạt chất*) and its strength as written (``500mg``, ``1g/100ml``)."""

    name: str
    strength: str = ""

    @property
    def key(self) -> str:
        """The folded name that identifies the ingredient across catalogues."""
        return ingredient_key(self.name)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One medicine of one catalogue, as a row of the catalogue file says it."""

    code: str
    """The catalogue's own code for this medicine (column ``ma``), unique within its source."""
    name: str
    """Vietnamese name (``ten_thuoc``), usually with the strength (``Paracetamol 500mg``)."""
    ingredients: tuple[Ingredient, ...]
    unit: str
    """Dispensing unit (*đơn vị tính*): Viên, Gói, Ống, Lọ, Chai…"""
    ma_thuoc: str = ""
    registration: str = ""
    atc: str = ""
    form: str = ""
    """Dose form (*dạng bào chế*)."""
    route: str = ""
    """Route (*đường dùng*), as text."""
    price: Decimal | None = None
    """Unit price in đồng, when the list gives one (prices are each facility's own)."""
    prescription_only: bool = False
    narcotic: bool = False
    psychotropic: bool = False
    """Psychotropic or precursor: the ``H`` prescriptions of Circular 26/2025."""
    traditional: bool = False
    unconfirmed: tuple[str, ...] = ()
    """Columns whose values in this row were not checked against an official source."""

    @property
    def strength(self) -> str:
        """The whole strength (*hàm lượng*) as XML 130 writes it: ingredients' joined by ``;``."""
        return ";".join(i.strength for i in self.ingredients if i.strength)

    @property
    def prescription_type(self) -> str:
        """The prescription a medicine goes on (Circular 26/2025): ``N``, ``H`` or ``C``."""
        return "N" if self.narcotic else "H" if self.psychotropic else "C"

    @property
    def classes(self) -> tuple[str, ...]:
        """The flags set, as codes of ``DRUG_CLASS_SYSTEM``."""
        flags = (
            (PRESCRIPTION_ONLY, self.prescription_only),
            (NARCOTIC, self.narcotic),
            (PSYCHOTROPIC, self.psychotropic),
            (TRADITIONAL, self.traditional),
        )
        return tuple(code for code, on in flags if on)


def ingredient_key(name: str) -> str:
    """``Natri clorid`` -> ``natri-clorid``: accents, case and spacing folded."""
    from sokhoe.search.index import normalize_string

    return "-".join(re.split(r"[^a-z0-9]+", normalize_string(name))).strip("-")


def system_of(source: str) -> str:
    """The code system of a source's catalogue codes (the reference list keeps ``DRUG``)."""
    return DRUG_SYSTEM if source == REFERENCE_SOURCE else f"{DRUG_SYSTEM}/{source}"


def value_set_url(source: str | None = None) -> str:
    """The value set of one source's current catalogue, or of all of them."""
    return VALUE_SET_BASE if source is None else f"{VALUE_SET_BASE}-{source}"
