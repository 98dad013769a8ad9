"""Stream the rows of a legacy export (CSV or Excel ``.xlsx``) without loading the file.

Vietnamese hospital software of the 2000s and 2010s often writes CSV in Windows-1258 (the
Vietnamese ANSI code page, where tones are combining marks), newer versions UTF-8 with or
without a byte-order mark, and Excel users save with ``;`` as the separator when their locale
uses a decimal comma. The encoding is decided by checking the whole file as UTF-8 in chunks
(constant memory) and falling back to Windows-1258; the separator is sniffed from the start.
Text is returned NFC-normalised, so ``Nguyễn`` from either encoding compares equal.

Excel files are read with openpyxl in read-only mode, which streams the sheet's XML.
See: https://openpyxl.readthedocs.io/en/stable/optimized.html
"""

from __future__ import annotations

import codecs
import csv
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from sokhoe.errors import InvalidRequest

Cell = str | int | float | date | datetime | None
"""A raw cell: text from CSV; from Excel also numbers and dates."""

_CHUNK = 1 << 16
FALLBACK_ENCODING = "cp1258"


@dataclass
class Table:
    """An open export: its header and an iterator of (row number, cells).

    Row numbers are what the user sees in the spreadsheet (the first line is row 1), so a
    report can send them straight to the right line.
    """

    header: list[str]
    rows: Iterator[tuple[int, list[Cell]]]
    encoding: str | None = None
    delimiter: str | None = None


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8 (BOM or not), else Windows-1258."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FALLBACK_ENCODING
    return "utf-8-sig"


def sniff_delimiter(sample: str) -> str:
    """``;``, ``,`` or tab, whichever the sample's first lines use consistently."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=";,\t").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(";,\t", key=first.count) if first else ","


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@contextmanager
def open_table(
    path: Path,
    *,
    header_row: int = 1,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[Table]:
    """Open ``path`` (by its extension) and position it after the header row."""
    if not path.is_file():
        raise InvalidRequest(f"No such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        with _open_excel(path, header_row, sheet) as table:
            yield table
    elif suffix in (".csv", ".txt", ".tsv"):
        with _open_csv(path, header_row, encoding, delimiter) as table:
            yield table
    else:
        raise InvalidRequest(
            f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv or .xlsx "
            "(save older .xls files as .xlsx first)"
        )


@contextmanager
def _open_csv(
    path: Path, header_row: int, encoding: str | None, delimiter: str | None
) -> Iterator[Table]:
    chosen = encoding or detect_encoding(path)
    try:
        codecs.lookup(chosen)
    except LookupError as exc:
        raise InvalidRequest(f"Unknown encoding {chosen!r}", "encoding") from exc
    with path.open(encoding=chosen, newline="") as f:
        sep = delimiter or sniff_delimiter(f.read(_CHUNK))
        f.seek(0)
        reader = csv.reader(f, delimiter=sep)
        header = _skip_to_header(reader, header_row, path)
        yield Table([_nfc(h).strip() for h in header], _csv_rows(reader, header_row), chosen, sep)


def _skip_to_header(reader: Iterator[list[str]], header_row: int, path: Path) -> list[str]:
    for number, row in enumerate(reader, start=1):
        if number == header_row:
            return row
    raise InvalidRequest(f"{path.name} has fewer than {header_row} rows: no header row")


def _csv_rows(reader: Any, header_row: int) -> Iterator[tuple[int, list[Cell]]]:
    for number, row in enumerate(reader, start=header_row + 1):
        cells: list[Cell] = [_nfc(c) for c in row]
        if any(isinstance(c, str) and c.strip() for c in cells):
            yield number, cells


@contextmanager
def _open_excel(path: Path, header_row: int, sheet: str | None) -> Iterator[Table]:
    from openpyxl import load_workbook

    stream: IO[bytes] = path.open("rb")
    try:
        try:
            book = load_workbook(stream, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise InvalidRequest(f"{path.name} is not a readable .xlsx workbook: {exc}") from exc
        try:
            if sheet is not None and sheet not in book.sheetnames:
                raise InvalidRequest(
                    f"{path.name} has no sheet {sheet!r}; its sheets: {', '.join(book.sheetnames)}",
                    "sheet",
                )
            ws = book[sheet] if sheet is not None else book.worksheets[0]
            rows = ws.iter_rows(values_only=True)
            header: list[str] | None = None
            for number, values in enumerate(rows, start=1):
                if number == header_row:
                    header = [_nfc(str(v)).strip() if v is not None else "" for v in values]
                    break
            if header is None:
                raise InvalidRequest(f"{path.name} has fewer than {header_row} rows: no header")
            yield Table(header, _excel_rows(rows, header_row))
        finally:
            book.close()
    finally:
        stream.close()


def _excel_rows(
    rows: Iterator[tuple[Any, ...]], header_row: int
) -> Iterator[tuple[int, list[Cell]]]:
    for number, values in enumerate(rows, start=header_row + 1):
        cells = [_excel_cell(v) for v in values]
        if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
            yield number, cells


def _excel_cell(value: Any) -> Cell:
    if value is None or isinstance(value, int | float | date | datetime):
        return value
    if isinstance(value, time):
        return value.isoformat()
    return _nfc(str(value))


def cell_text(cell: Cell) -> str:
    """A cell as text: integral numbers without ``.0``, dates as ISO (for messages)."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell).strip()
