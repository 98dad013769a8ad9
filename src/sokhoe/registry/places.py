"""The 34 provinces and their communes/wards after the July 2025 reorganisation.

Why: Resolution 202/2025/QH15 (in force 1 July 2025) merged 63 provinces into 34 and abolished
districts, leaving two tiers (province → commune/ward/special zone). Addresses, insurance
residence codes and the demo population all need the new units with their statistics-office
codes; the installed ``vietnam_provinces`` package carries them (not the old three-level
history, which insurance XML still references: keep unit codes with validity dates elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province as _VpProvince
from vietnam_provinces import Ward as _VpWard


@dataclass(frozen=True, slots=True)
class Ward:
    """A commune (xã), ward (phường) or special zone (đặc khu)."""

    code: str
    """5-digit statistics-office code."""
    name: str
    province_code: str


@dataclass(frozen=True, slots=True)
class Province:
    """A province or centrally governed city."""

    code: str
    """2-digit statistics-office code (e.g. "01" Hà Nội, "79" TP Hồ Chí Minh)."""
    name: str
    wards: tuple[Ward, ...]


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
