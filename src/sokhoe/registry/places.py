"""The 34 provinces and their communes/wards after the July 2025 reorganisation, and the old 63.

Why: Resolution 202/2025/QH15 (in force 1 July 2025) merged 63 provinces into 34 and abolished
districts, leaving two tiers (province → commune/ward/special zone). Addresses, insurance
residence codes and the demo population all need the new units with their statistics-office
codes; the installed ``vietnam_provinces`` package carries them. It ships no history (checked:
version 2025.10.1 has only the new units), so the old provinces and where each went are the
table ``_OLD`` below, transcribed from the resolution; people keep typing the old names and
CCCD numbers keep the old codes, so :func:`resolve_province` accepts both. Commune-level
history (old district/commune → new ward) is not included.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache

from vietnam_provinces import Province as _VpProvince
from vietnam_provinces import Ward as _VpWard

from sokhoe.search.index import normalize_string

REFORM_DATE = date(2025, 7, 1)
"""Day Resolution 202/2025/QH15 took effect: new units valid from here, old ones until the day
before."""
OLD_VALID_TO = date(2025, 6, 30)


@dataclass(frozen=True, slots=True)
class Ward:
    """A commune (xã), ward (phường) or special zone (đặc khu)."""

    code: str
    """5-digit statistics-office code."""
    name: str
    province_code: str
    valid_from: date = REFORM_DATE


@dataclass(frozen=True, slots=True)
class Province:
    """A province or centrally governed city."""

    code: str
    """2-digit statistics-office code (e.g. "01" Hà Nội, "79" TP Hồ Chí Minh)."""
    name: str
    wards: tuple[Ward, ...]
    valid_from: date = REFORM_DATE

    @property
    def short_name(self) -> str:
        """The name without "Thành phố" ("Hồ Chí Minh"), as used inside facility names."""
        return self.name.removeprefix("Thành phố ")


@dataclass(frozen=True, slots=True)
class OldProvince:
    """One of the 63 provinces before 1 July 2025 and the new province it became part of."""

    code: str
    """2-digit statistics code before the merger (also the middle of CCCD province codes)."""
    name: str
    new_code: str
    valid_to: date = OLD_VALID_TO


# Old code, name (without "Tỉnh"/"Thành phố"), new province code. Resolution 202/2025/QH15,
# Article 1: each new province keeps the code of one of its members, so an old code that is
# also a new code always maps to itself (tests check this).
_OLD: tuple[tuple[str, str, str], ...] = (
    ("01", "Hà Nội", "01"),
    ("02", "Hà Giang", "08"),
    ("04", "Cao Bằng", "04"),
    ("06", "Bắc Kạn", "19"),
    ("08", "Tuyên Quang", "08"),
    ("10", "Lào Cai", "15"),
    ("11", "Điện Biên", "11"),
    ("12", "Lai Châu", "12"),
    ("14", "Sơn La", "14"),
    ("15", "Yên Bái", "15"),
    ("17", "Hòa Bình", "25"),
    ("19", "Thái Nguyên", "19"),
    ("20", "Lạng Sơn", "20"),
    ("22", "Quảng Ninh", "22"),
    ("24", "Bắc Giang", "24"),
    ("25", "Phú Thọ", "25"),
    ("26", "Vĩnh Phúc", "25"),
    ("27", "Bắc Ninh", "24"),
    ("30", "Hải Dương", "31"),
    ("31", "Hải Phòng", "31"),
    ("33", "Hưng Yên", "33"),
    ("34", "Thái Bình", "33"),
    ("35", "Hà Nam", "37"),
    ("36", "Nam Định", "37"),
    ("37", "Ninh Bình", "37"),
    ("38", "Thanh Hóa", "38"),
    ("40", "Nghệ An", "40"),
    ("42", "Hà Tĩnh", "42"),
    ("44", "Quảng Bình", "44"),
    ("45", "Quảng Trị", "44"),
    ("46", "Thừa Thiên Huế", "46"),
    ("48", "Đà Nẵng", "48"),
    ("49", "Quảng Nam", "48"),
    ("51", "Quảng Ngãi", "51"),
    ("52", "Bình Định", "52"),
    ("54", "Phú Yên", "66"),
    ("56", "Khánh Hòa", "56"),
    ("58", "Ninh Thuận", "56"),
    ("60", "Bình Thuận", "68"),
    ("62", "Kon Tum", "51"),
    ("64", "Gia Lai", "52"),
    ("66", "Đắk Lắk", "66"),
    ("67", "Đắk Nông", "68"),
    ("68", "Lâm Đồng", "68"),
    ("70", "Bình Phước", "75"),
    ("72", "Tây Ninh", "80"),
    ("74", "Bình Dương", "79"),
    ("75", "Đồng Nai", "75"),
    ("77", "Bà Rịa - Vũng Tàu", "79"),
    ("79", "Hồ Chí Minh", "79"),
    ("80", "Long An", "80"),
    ("82", "Tiền Giang", "82"),
    ("83", "Bến Tre", "86"),
    ("84", "Trà Vinh", "86"),
    ("86", "Vĩnh Long", "86"),
    ("87", "Đồng Tháp", "82"),
    ("89", "An Giang", "91"),
    ("91", "Kiên Giang", "91"),
    ("92", "Cần Thơ", "92"),
    ("93", "Hậu Giang", "92"),
    ("94", "Sóc Trăng", "92"),
    ("95", "Bạc Liêu", "96"),
    ("96", "Cà Mau", "96"),
)

# Informal names people type at reception; keys are already folded by _key.
_ALIASES = {
    "hcm": "79",
    "tphcm": "79",
    "sai gon": "79",
    "saigon": "79",
    "brvt": "79",
    "vung tau": "79",
    "hue": "46",
    "hn": "01",
}
_PROVINCE_PREFIX = re.compile(r"^(tinh|thanh pho|tp)\s+")
_WARD_PREFIX = re.compile(r"^(phuong|xa|dac khu|thi tran|p|x)\s+")
_EXACT_WARD_PREFIX = re.compile(r"^(phường|xã|đặc khu|thị trấn|p|x)\s+")


def _key(text: str) -> str:
    """Fold accents/case and punctuation ("TP. Hồ Chí Minh" → "tp ho chi minh")."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", normalize_string(text)).split())


def _code(value: object, width: int) -> str:
    raw = getattr(value, "value", value)
    return str(int(str(raw))).zfill(width)


@cache
def provinces() -> list[Province]:
    """All 34 provinces with their wards, ordered by code."""
    wards: dict[str, list[Ward]] = {}
    for w in _VpWard.iter_all():
        pcode = _code(w.province_code, 2)
        wards.setdefault(pcode, []).append(Ward(_code(w.code, 5), str(w.name), pcode))
    result = []
    for p in _VpProvince.iter_all():
        code = _code(p.code, 2)
        units = tuple(sorted(wards.get(code, []), key=lambda u: u.code))
        result.append(Province(code, str(p.name), units))
    return sorted(result, key=lambda p: p.code)


@cache
def province_by_code(code: str) -> Province:
    """The province with this 2-digit code; ValueError if unknown."""
    for p in provinces():
        if p.code == code:
            return p
    raise ValueError(f"unknown province code {code!r}")


@cache
def old_provinces() -> tuple[OldProvince, ...]:
    """The 63 provinces in force until 30 June 2025, ordered by old code."""
    return tuple(OldProvince(code, name, new) for code, name, new in _OLD)


def old_province(code2: str) -> OldProvince | None:
    """The pre-2025 province with this 2-digit code (as in CCCD numbers), or None."""
    code = code2.strip().zfill(2)
    return next((p for p in old_provinces() if p.code == code), None)


@cache
def _province_names() -> dict[str, str]:
    names = dict(_ALIASES)
    for old in old_provinces():
        names[_key(old.name)] = old.new_code
    for p in provinces():  # new names win over old ones (e.g. "Quảng Trị" is the new 44)
        names[_PROVINCE_PREFIX.sub("", _key(p.name))] = p.code
    return names


def resolve_province(name_or_code: str) -> Province | None:
    """The current province for an old or new name or code, or None.

    Accepts "79", "079" (CCCD style), "Hà Giang" (→ Tuyên Quang), "tp. ho chi minh",
    "Tỉnh Bình Dương" (→ TP Hồ Chí Minh): accents, case, punctuation and the "Tỉnh"/"Thành
    phố"/"TP." prefixes are ignored. Old names resolve to the province they merged into.
    """
    text = name_or_code.strip()
    if text.isdigit() and 1 <= len(text) <= 3:
        code = str(int(text)).zfill(2)
        current = {p.code for p in provinces()}
        if code in current:
            return province_by_code(code)
        old = old_province(code)
        return province_by_code(old.new_code) if old else None
    key = _key(text)
    names = _province_names()
    code_or_none = names.get(key) or names.get(_PROVINCE_PREFIX.sub("", key))
    return province_by_code(code_or_none) if code_or_none else None


def _exact_key(text: str) -> str:
    """Fold case and punctuation but keep accents: "Văn Lang" and "Văn Lăng" are two communes."""
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFC", text).casefold()).split())


_Index = dict[str, tuple[Ward, ...]]


@cache
def _ward_keys(province_code: str) -> tuple[_Index, _Index, _Index, _Index]:
    """Four indexes, most exact first: accented full/bare name, folded full/bare name."""
    indexes: tuple[dict[str, list[Ward]], ...] = ({}, {}, {}, {})
    for w in province_by_code(province_code).wards:
        exact, folded = _exact_key(w.name), _key(w.name)
        keys = (exact, _EXACT_WARD_PREFIX.sub("", exact), folded, _WARD_PREFIX.sub("", folded))
        for index, key in zip(indexes, keys, strict=True):
            index.setdefault(key, []).append(w)
    a, b, c, d = ({k: tuple(v) for k, v in index.items()} for index in indexes)
    return a, b, c, d


def find_ward(province: Province | str, name: str) -> Ward | None:
    """The ward or commune of ``province`` called ``name``, tolerant like resolve_province.

    "Phường Hoàn Kiếm", "phuong hoan kiem", "P. Hoàn Kiếm" and "Hoàn Kiếm" all match. Accents
    are compared first and folded only when that finds nothing, because some communes of one
    province differ only by accents ("Xã Văn Lang", "Xã Văn Lăng"); a name that still matches
    several units returns None rather than a guess. A 5-digit ward code is accepted too.
    Old (pre-2025) communes are not mapped.
    """
    prov = province if isinstance(province, Province) else resolve_province(province)
    if prov is None:
        return None
    text = name.strip()
    if text.isdigit():
        code = text.zfill(5)
        return next((w for w in prov.wards if w.code == code), None)
    exact, folded = _exact_key(text), _key(text)
    keys = (exact, _EXACT_WARD_PREFIX.sub("", exact), folded, _WARD_PREFIX.sub("", folded))
    for index, key in zip(_ward_keys(prov.code), keys, strict=True):
        found = index.get(key, ())
        if found:
            return found[0] if len(found) == 1 else None
    return None


@cache
def _wards_by_code() -> dict[str, tuple[Ward, Province]]:
    return {w.code: (w, p) for p in provinces() for w in p.wards}


def ward_by_code(code: str) -> tuple[Ward, Province] | None:
    """The ward (or commune) with this 5-digit statistics-office code and its province; None
    when no current unit has it (``26740`` is Phường Sài Gòn, Thành phố Hồ Chí Minh)."""
    return _wards_by_code().get(code.strip())
