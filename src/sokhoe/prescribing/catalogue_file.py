"""Reading a catalogue file (CSV or Excel ``.xlsx``) into checked :class:`CatalogueEntry` rows.

Every row is checked before anything is stored, and every problem is reported with its row
number as the spreadsheet shows it (the header is row 1), so that whoever keeps the list can fix
all of it in one pass; a file with any error is refused as a whole.

Columns (first row; case, spaces and dashes ignored; unknown columns are ignored):
``ma`` (required: the list's own code, unique), ``ten_thuoc`` (required: Vietnamese name),
``hoat_chat`` (required: active ingredients, separated by ``;`` or ``+``), ``don_vi_tinh``
(required: dispensing unit), ``ham_luong`` (strength per ingredient, same separators),
``ma_thuoc`` (Ministry active-ingredient code), ``so_dang_ky``, ``atc``, ``dang_bao_che``,
``duong_dung``, ``don_gia`` (đồng, no thousands separators), the flags ``ke_don``,
``gay_nghien`` (N), ``huong_than_tien_chat`` (H), ``y_hoc_co_truyen`` (1/0, có/không, x or
empty), and ``chua_xac_nhan`` (columns of the row that are unconfirmed, separated by ``;``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sokhoe.prescribing.catalogue import (
    ATC_PATTERN,
    CODE_PATTERN,
    CatalogueEntry,
    Ingredient,
)
from sokhoe.search.index import normalize_string

COLUMNS = (
    "ma",
    "ma_thuoc",
    "so_dang_ky",
    "atc",
    "hoat_chat",
    "ten_thuoc",
    "ham_luong",
    "dang_bao_che",
    "duong_dung",
    "don_vi_tinh",
    "don_gia",
    "ke_don",
    "gay_nghien",
    "huong_than_tien_chat",
    "y_hoc_co_truyen",
    "chua_xac_nhan",
)
REQUIRED = ("ma", "ten_thuoc", "hoat_chat", "don_vi_tinh")
MAX_REPORTED = 50
"""Errors listed in the refusal; the rest are counted."""

_TRUE = frozenset({"1", "x", "co", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "khong", "false", "no", "n"})
_SPLIT = re.compile(r"\s*[;+]\s*")
_GROUPED = re.compile(r"^\d{1,3}([.,]\d{3})+$")
_TEXT_LIMIT = 255

Row = dict[str, str]


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class CatalogueFileError(ValueError):
    """A catalogue file that cannot be imported; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = [str(e) for e in errors[:MAX_REPORTED]]
        if len(errors) > MAX_REPORTED:
            shown.append(f"… and {len(errors) - MAX_REPORTED} more")
        super().__init__(f"{len(errors)} error(s) in the catalogue file:\n" + "\n".join(shown))


def read_catalogue(
    path: Path, progress: Callable[[int], object] | None = None
) -> list[CatalogueEntry]:
    """Every row of the CSV or ``.xlsx`` file at ``path``, checked; raises
    :class:`CatalogueFileError` listing every problem (``progress`` is told of each row)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(path)
    elif suffix in (".csv", ".txt"):
        rows = _csv_rows(path)
    else:
        raise CatalogueFileError([RowError(0, None, f"{path.name}: expected a .csv or .xlsx file")])
    return parse_rows(rows, progress)


def parse_rows(
    rows: Iterable[tuple[int, Row]], progress: Callable[[int], object] | None = None
) -> list[CatalogueEntry]:
    """Check ``(row number, {column: text})`` pairs; the first pair may be the header check."""
    errors: list[RowError] = []
    entries: list[CatalogueEntry] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        if progress is not None:
            progress(1)
        if number == 1:  # the header, reported by the readers as a row of missing columns
            missing = [c for c in REQUIRED if c not in row]
            if missing:
                errors.append(RowError(1, None, f"missing column(s): {', '.join(missing)}"))
                break
            continue
        if not any(v.strip() for v in row.values()):
            continue
        problems: list[RowError] = []
        entry = _entry(number, row, problems)
        if entry is not None and entry.code in seen:
            problems.append(
                RowError(number, "ma", f"'{entry.code}' is also on row {seen[entry.code]}")
            )
        if problems:
            errors.extend(problems)
        elif entry is not None:
            seen[entry.code] = number
            entries.append(entry)
    if not errors and not entries:
        errors.append(RowError(2, None, "the file has no medicines"))
    if errors:
        raise CatalogueFileError(errors)
    return entries


def _header(names: Iterable[object]) -> list[str]:
    return [re.sub(r"[\s\-]+", "_", str(n or "").strip().lower()) for n in names]


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = _header(next(reader, []))
        yield 1, dict.fromkeys(header, "")
        for number, values in enumerate(reader, start=2):
            yield number, {h: (values[i] if i < len(values) else "") for i, h in enumerate(header)}


def _xlsx_rows(path: Path) -> Iterator[tuple[int, Row]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        lines = sheet.iter_rows(values_only=True)
        header = _header(next(lines, ()))
        yield 1, dict.fromkeys(header, "")
        for number, values in enumerate(lines, start=2):
            yield number, {h: _cell(values[i]) for i, h in enumerate(header) if i < len(values)}
    finally:
        book.close()


def _cell(value: object) -> str:
    """Excel's numbers come back as floats: ``1200.0`` is the price ``1200``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _entry(number: int, row: Row, errors: list[RowError]) -> CatalogueEntry | None:
    def text(column: str, required: bool = False) -> str:
        value = " ".join(row.get(column, "").split())
        if required and not value:
            errors.append(RowError(number, column, "is required"))
        elif len(value) > _TEXT_LIMIT:
            errors.append(RowError(number, column, f"is longer than {_TEXT_LIMIT} characters"))
        return value

    def flag(column: str) -> bool | None:
        value = normalize_string(row.get(column, ""))
        if value in _TRUE:
            return True
        if value in _FALSE:
            return None if value == "" else False
        errors.append(RowError(number, column, f"'{row[column]}' is not 1/0, có/không or x"))
        return None

    code = text("ma", required=True)
    if code and not CODE_PATTERN.match(code):
        errors.append(
            RowError(number, "ma", f"'{code}' must be letters, digits and . - _ / (up to 50)")
        )
    name = text("ten_thuoc", required=True)
    unit = text("don_vi_tinh", required=True)
    names = [n for n in _SPLIT.split(text("hoat_chat", required=True)) if n]
    strengths = [s for s in _SPLIT.split(text("ham_luong")) if s]
    if names and strengths and len(strengths) != len(names):
        errors.append(
            RowError(
                number,
                "ham_luong",
                f"{len(strengths)} strength(s) for {len(names)} ingredient(s); give one per "
                "ingredient, separated by ';'",
            )
        )
    atc = text("atc").upper()
    if atc and not ATC_PATTERN.match(atc):
        errors.append(RowError(number, "atc", f"'{atc}' is not an ATC code (e.g. N02BE01)"))
    price = _price(number, text("don_gia"), errors)
    prescription_only = flag("ke_don")
    narcotic = bool(flag("gay_nghien"))
    psychotropic = bool(flag("huong_than_tien_chat"))
    traditional = bool(flag("y_hoc_co_truyen"))
    if narcotic and psychotropic:
        errors.append(
            RowError(number, "huong_than_tien_chat", "a medicine is either N or H, not both")
        )
    if (narcotic or psychotropic) and prescription_only is False:
        errors.append(
            RowError(number, "ke_don", "narcotic and psychotropic medicines are prescription-only")
        )
    unconfirmed = tuple(c for c in _SPLIT.split(text("chua_xac_nhan").lower()) if c)
    unknown = [c for c in unconfirmed if c not in COLUMNS]
    if unknown:
        errors.append(RowError(number, "chua_xac_nhan", f"unknown column(s): {', '.join(unknown)}"))
    if errors:
        return None
    return CatalogueEntry(
        code=code,
        name=name,
        ingredients=tuple(
            Ingredient(n, strengths[i] if strengths else "") for i, n in enumerate(names)
        ),
        unit=unit,
        ma_thuoc=text("ma_thuoc"),
        registration=text("so_dang_ky"),
        atc=atc,
        form=text("dang_bao_che"),
        route=text("duong_dung"),
        price=price,
        prescription_only=bool(prescription_only) or narcotic or psychotropic,
        narcotic=narcotic,
        psychotropic=psychotropic,
        traditional=traditional,
        unconfirmed=unconfirmed,
    )


def _price(number: int, value: str, errors: list[RowError]) -> Decimal | None:
    if not value:
        return None
    if _GROUPED.match(value):
        errors.append(
            RowError(number, "don_gia", f"'{value}': write the price without thousands separators")
        )
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        errors.append(RowError(number, "don_gia", f"'{value}' is not a number"))
        return None
    if not price.is_finite() or price < 0:
        errors.append(RowError(number, "don_gia", f"'{value}' is not a price"))
        return None
    return price
