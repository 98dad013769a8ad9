"""One row's cells as typed values: dates, codes, identifiers, places; every problem named.

A row is read completely before anything is decided, so the report lists all of its problems
at once ("column 'Ngày sinh': 31/02/1980 is not a date; column 'Số CCCD': ...") instead of the
first only. Identifiers are normalised by the same functions the record uses on write
(``sokhoe.mpi.identifiers``), so what passes here passes there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sokhoe.interop.legacy.mapping import ALLOWED_VALUES, BoundMapping, DateFormat
from sokhoe.interop.legacy.reader import Cell, cell_text
from sokhoe.mpi.identifiers import validate_bhyt, validate_cccd
from sokhoe.registry.places import Province, Ward, find_ward, resolve_province

VIETNAM_OFFSET = "+07:00"
"""Legacy exports write local times (Asia/Ho_Chi_Minh, no daylight saving) without a zone."""
_EXCEL_EPOCH = date(1899, 12, 30)
_PHONE = re.compile(r"(?:\+?84|0)\d{8,10}")


class RowError(Exception):
    """The row cannot be imported; ``messages`` says why (all problems found)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class RowFields:
    """Typed access to one row through a bound mapping; problems pile up in ``errors``."""

    bound: BoundMapping
    cells: list[Cell]
    today: date
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def has(self, target: str) -> bool:
        return target in self.bound.columns

    def raw(self, target: str) -> Cell:
        if target not in self.bound.columns:
            return None
        index, _ = self.bound.columns[target]
        return self.cells[index] if index < len(self.cells) else None

    def fail(self, target: str, message: str) -> None:
        self.errors.append(f"column {self.bound.header_of(target)!r}: {message}")

    def check(self) -> None:
        """Raise the row's problems, if any."""
        if self.errors:
            raise RowError(self.errors)

    # -- values ------------------------------------------------------------------------
    def text(self, target: str, *, required: bool = False) -> str | None:
        value = " ".join(cell_text(self.raw(target)).split())
        if not value:
            if required:
                self.fail(target, "is empty (required)")
            return None
        return value

    def coded(self, target: str) -> str | None:
        """The value through the column's value map, checked against the allowed codes."""
        value = self.text(target)
        if value is None:
            return None
        _, rule = self.bound.columns[target]
        code = rule.translate(value)
        allowed = ALLOWED_VALUES.get(target)
        if allowed is not None and code not in allowed:
            self.fail(
                target,
                f"{value!r} is not one of {', '.join(sorted(allowed))}; add it to the "
                f"mapping's values for {target}",
            )
            return None
        return code

    def identifier(self, target: str) -> str | None:
        """A CCCD (Excel may have dropped its leading zero) or a BHYT card number."""
        cell = self.raw(target)
        value = self.text(target)
        if value is None:
            return None
        check = validate_cccd if target == "cccd" else validate_bhyt
        if target == "cccd" and isinstance(cell, int | float) and len(value) == 11:
            value = value.zfill(12)
        try:
            return check(value)
        except ValueError as exc:
            self.fail(target, str(exc))
            return None

    def phone(self, target: str) -> str | None:
        value = self.text(target)
        if value is None:
            return None
        digits = re.sub(r"[\s.\-()]", "", value)
        if isinstance(self.raw(target), int | float) and len(digits) == 9:
            digits = "0" + digits  # Excel dropped the trunk prefix
        if not _PHONE.fullmatch(digits):
            self.fail(target, f"{value!r} is not a Vietnamese phone number")
            return None
        return digits

    def when(self, target: str, *, year_only: bool = False) -> str | None:
        """A FHIR ``date`` or ``dateTime`` (local time with +07:00), or ``yyyy`` if allowed."""
        cell = self.raw(target)
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        formats = self.bound.mapping.date_formats
        found = _parse_when(cell, formats, year_only)
        if found is None:
            shown = ", ".join(f.pattern for f in formats) + (", yyyy" if year_only else "")
            self.fail(target, f"{cell_text(cell)!r} is not a date in the formats {shown}")
            return None
        day = date.fromisoformat(found[:10]) if len(found) >= 10 else date(int(found), 1, 1)
        if day > self.today:
            self.fail(target, f"{cell_text(cell)!r} is in the future")
            return None
        if day.year < 1900:
            self.fail(target, f"{cell_text(cell)!r} is before 1900")
            return None
        return found

    def place(self) -> tuple[Province | None, Ward | None]:
        """The province and the commune/ward of the address (current units, old names ok)."""
        province_text = self.text("province")
        ward_text = self.text("ward")
        province = resolve_province(province_text) if province_text else None
        if province_text and province is None:
            self.fail("province", f"{province_text!r} is not a Vietnamese province")
        ward = None
        if ward_text and province is not None:
            ward = find_ward(province, ward_text)
            if ward is None:
                self.fail(
                    "ward",
                    f"{ward_text!r} is not a (unique) commune or ward of {province.name} "
                    "(units after 1 July 2025)",
                )
        elif ward_text and province_text is None:
            self.fail("ward", "a commune or ward needs the province column too")
        return province, ward


def _parse_when(cell: Cell, formats: tuple[DateFormat, ...], year_only: bool) -> str | None:
    if isinstance(cell, datetime):
        return _iso(cell)
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        if year_only and float(cell).is_integer() and 1900 <= cell <= 2100:
            return str(int(cell))  # a year typed into a number cell, not a serial day
        if any(f.strptime is None for f in formats) and 1 <= cell < 2_958_466:
            moment = datetime.combine(_EXCEL_EPOCH, datetime.min.time()) + timedelta(days=cell)
            return _iso(moment.replace(microsecond=0))
        cell = cell_text(cell)  # 19800312 typed as a number
    text = str(cell).strip()
    if year_only and re.fullmatch(r"\d{4}", text):
        return text
    for f in formats:
        if f.strptime is None:
            continue
        try:
            moment = datetime.strptime(text, f.strptime)  # local time: zone added by _iso
        except ValueError:
            continue
        return _iso(moment) if f.has_time else moment.date().isoformat()
    return None


def _iso(moment: datetime) -> str:
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + VIETNAM_OFFSET
