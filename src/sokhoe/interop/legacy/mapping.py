"""The column-mapping file: which column of a legacy export holds which field of the record.

Every hospital information system exports its patient list (*danh sách bệnh nhân*) and visit
register (*sổ khám bệnh*) with its own headers, date formats and codes. Rather than one parser
per vendor, the facility describes its export once in a small JSON file::

    {
      "kind": "patients",
      "facility": "79001",
      "sheet": "BenhNhan",
      "header_row": 1,
      "date_formats": ["dd/MM/yyyy", "yyyyMMdd", "excel"],
      "columns": {
        "mrn": "Mã BN",
        "full_name": "Họ và tên",
        "sex": {"column": "Giới tính", "values": {"Nam": "male", "Nữ": "female"}}
      }
    }

``kind`` is ``patients`` or ``visits``; ``facility`` the *mã CSKCB* (or ``--facility``);
``sheet`` is for Excel (default: the first sheet); ``header_row`` the row holding the column
titles; ``encoding`` and ``delimiter`` override what is detected in a CSV file. ``columns``
maps each target (:data:`PATIENT_TARGETS`, :data:`VISIT_TARGETS`) to a header text, or to
``{"column": ..., "values": {...}}`` with a value map.

Headers are matched ignoring case, accents and spacing (``"MA BN"`` finds ``"Mã  BN"``). Date
formats use the spreadsheet letters (``dd``, ``MM``, ``yyyy``, ``HH``, ``mm``, ``ss``); ``excel``
accepts Excel serial day numbers. The mapping is checked before any row is read: an unknown
target, a missing required one or a column the file does not have is an error naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sokhoe.errors import InvalidRequest
from sokhoe.mpi.identifiers import validate_facility_code
from sokhoe.search.index import normalize_string

Kind = Literal["patients", "visits"]

PATIENT_TARGETS: dict[str, str] = {
    "mrn": "the facility's medical record number (mã bệnh nhân), required",
    "full_name": "full name, family name first (họ và tên)",
    "birth_date": "date of birth, or the year alone (ngày sinh / năm sinh)",
    "sex": "male / female / other / unknown (giới tính)",
    "cccd": "12-digit personal ID (số CCCD / định danh cá nhân)",
    "bhyt": "15-character health-insurance card number (mã thẻ BHYT)",
    "phone": "phone number (điện thoại)",
    "address_line": "house number, street, hamlet (số nhà, đường, thôn)",
    "ward": "commune or ward (xã / phường), name or 5-digit code",
    "province": "province (tỉnh / thành phố), name or code, old names accepted",
    "ethnicity": "ethnic group (dân tộc), code or name",
}
VISIT_TARGETS: dict[str, str] = {
    "patient_mrn": "the patient's medical record number at this facility, required",
    "visit_number": "the visit number (mã lượt khám / MA_LK), required",
    "start": "start of the visit (ngày vào)",
    "end": "end of the visit (ngày ra)",
    "class": "outpatient / inpatient / emergency (loại KCB)",
    "diagnosis_primary": "main ICD-10 code (mã bệnh chính)",
    "diagnosis_secondary": "other ICD-10 codes, ';'-separated (mã bệnh kèm theo)",
    "reason": "reason for the visit (lý do vào viện)",
    "department": "department (khoa)",
    "doctor": "treating practitioner's licence number (mã bác sĩ / CCHN)",
}
TARGETS: dict[Kind, dict[str, str]] = {"patients": PATIENT_TARGETS, "visits": VISIT_TARGETS}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "patients": ("mrn",),
    "visits": ("patient_mrn", "visit_number"),
}

DEFAULT_VALUES: dict[str, dict[str, str]] = {
    "sex": {
        "nam": "male",
        "nu": "female",
        "1": "male",
        "2": "female",
        "3": "unknown",
        "m": "male",
        "f": "female",
        "male": "male",
        "female": "female",
        "other": "other",
        "unknown": "unknown",
        "khac": "other",
        "khong ro": "unknown",
    },
    "class": {
        "ngoai tru": "AMB",
        "kham benh": "AMB",
        "noi tru": "IMP",
        "cap cuu": "EMER",
        "outpatient": "AMB",
        "inpatient": "IMP",
        "emergency": "EMER",
        "amb": "AMB",
        "imp": "IMP",
        "emer": "EMER",
        "o": "AMB",
        "i": "IMP",
        "e": "EMER",
    },
}
"""Value maps used when the mapping gives none for these targets (keys folded: no accents,
lower case). A mapping's own ``values`` are consulted first, then these."""

ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "sex": frozenset({"male", "female", "other", "unknown"}),
    "class": frozenset({"AMB", "IMP", "EMER"}),
}

_TOKENS = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))
_KEYS = frozenset(
    {"kind", "facility", "sheet", "header_row", "date_formats", "columns", "encoding", "delimiter"}
)


def fold(text: str) -> str:
    """Compare headers and coded values ignoring case, accents, punctuation and spacing."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", normalize_string(text)).split())


@dataclass(frozen=True)
class DateFormat:
    """One accepted spelling of a date, e.g. ``dd/MM/yyyy HH:mm`` or ``excel``."""

    pattern: str
    strptime: str | None
    """The ``datetime.strptime`` format; None for Excel serial numbers."""
    has_time: bool


def parse_date_format(pattern: str) -> DateFormat:
    """``dd/MM/yyyy`` -> ``%d/%m/%Y``; refuse patterns with letters we do not know."""
    if pattern.strip().lower() == "excel":
        return DateFormat("excel", None, False)
    out, rest = "", pattern
    while rest:
        for token, directive in _TOKENS:
            if rest.startswith(token):
                out += directive
                rest = rest[len(token) :]
                break
        else:
            if rest[0].isalpha():
                raise InvalidRequest(
                    f"Date format {pattern!r}: unknown letter {rest[0]!r} "
                    "(use dd, MM, yyyy, HH, mm, ss or 'excel')",
                    "date_formats",
                )
            out += "%%" if rest[0] == "%" else rest[0]
            rest = rest[1:]
    return DateFormat(pattern, out, "%H" in out)


@dataclass(frozen=True)
class ColumnRule:
    """Where one target comes from and how its values translate."""

    target: str
    column: str
    values: dict[str, str] = field(default_factory=dict)
    """Folded source value -> target value (from the mapping file)."""

    def translate(self, raw: str) -> str:
        """The mapped value of ``raw``: the file's map, then the defaults, else unchanged."""
        key = fold(raw)
        if key in self.values:
            return self.values[key]
        return DEFAULT_VALUES.get(self.target, {}).get(key, raw.strip())


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file (see the module docstring)."""

    kind: Kind
    facility: str | None
    sheet: str | None
    header_row: int
    date_formats: tuple[DateFormat, ...]
    rules: tuple[ColumnRule, ...]
    encoding: str | None = None
    delimiter: str | None = None

    def bind(self, headers: Sequence[str]) -> BoundMapping:
        """Find each rule's column among ``headers``; every missing one is named at once."""
        positions: dict[str, int] = {}
        for i, header in enumerate(headers):
            positions.setdefault(fold(header), i)
        missing = [r for r in self.rules if fold(r.column) not in positions]
        if missing:
            shown = ", ".join(repr(h) for h in headers if h.strip())
            raise InvalidRequest(
                "The file has no column "
                + ", ".join(f"{r.column!r} (for {r.target})" for r in missing)
                + f"; its header row {self.header_row} has: {shown or 'nothing'}",
                "columns",
            )
        return BoundMapping(self, {r.target: (positions[fold(r.column)], r) for r in self.rules})

    def with_facility(self, facility: str | None) -> Mapping:
        """The facility given on the command line wins over the file's; one is required."""
        code = facility or self.facility
        if code is None:
            raise InvalidRequest(
                "No facility: give --facility CODE or 'facility' in the mapping", "facility"
            )
        try:
            code = validate_facility_code(code)
        except ValueError as exc:
            raise InvalidRequest(str(exc), "facility") from exc
        return Mapping(
            self.kind,
            code,
            self.sheet,
            self.header_row,
            self.date_formats,
            self.rules,
            self.encoding,
            self.delimiter,
        )


@dataclass(frozen=True)
class BoundMapping:
    """A mapping tied to one file's header: target -> (column index, rule)."""

    mapping: Mapping
    columns: dict[str, tuple[int, ColumnRule]]

    def header_of(self, target: str) -> str:
        return self.columns[target][1].column


def load_mapping(source: Path | MappingABC[str, Any]) -> Mapping:
    """Read and check a mapping file (JSON) or an already parsed dict."""
    if isinstance(source, Path):
        try:
            data = json.loads(source.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"Cannot read the mapping file {source}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise InvalidRequest(
                f"The mapping file {source} is not valid JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})"
            ) from exc
    else:
        data = dict(source)
    if not isinstance(data, dict):
        raise InvalidRequest("The mapping must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidRequest(
            f"Unknown mapping keys: {', '.join(unknown)} (allowed: {', '.join(sorted(_KEYS))})"
        )
    kind = data.get("kind")
    if kind not in TARGETS:
        raise InvalidRequest(f"'kind' must be 'patients' or 'visits', got {kind!r}", "kind")
    facility = _optional_str(data, "facility")
    if facility is not None:
        try:
            facility = validate_facility_code(facility)
        except ValueError as exc:
            raise InvalidRequest(str(exc), "facility") from exc
    header_row = data.get("header_row", 1)
    if not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1:
        raise InvalidRequest(f"'header_row' must be a row number from 1, got {header_row!r}")
    formats = data.get("date_formats", ["dd/MM/yyyy", "yyyy-MM-dd", "yyyyMMdd", "excel"])
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise InvalidRequest("'date_formats' must be a non-empty list of strings", "date_formats")
    delimiter = _optional_str(data, "delimiter")
    if delimiter is not None and len(delimiter) != 1:
        raise InvalidRequest(f"'delimiter' must be one character, got {delimiter!r}", "delimiter")
    return Mapping(
        kind=kind,
        facility=facility,
        sheet=_optional_str(data, "sheet"),
        header_row=header_row,
        date_formats=tuple(parse_date_format(f) for f in formats),
        rules=_rules(kind, data.get("columns")),
        encoding=_optional_str(data, "encoding"),
        delimiter=delimiter,
    )


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string, got {value!r}", key)
    return value


def _rules(kind: Kind, columns: Any) -> tuple[ColumnRule, ...]:
    if not isinstance(columns, dict) or not columns:
        raise InvalidRequest("'columns' must map targets to source columns", "columns")
    targets = TARGETS[kind]
    unknown = sorted(set(columns) - set(targets))
    if unknown:
        raise InvalidRequest(
            f"Unknown {kind} targets: {', '.join(unknown)}; known: {', '.join(targets)}",
            "columns",
        )
    missing = [t for t in REQUIRED[kind] if t not in columns]
    if missing:
        raise InvalidRequest(
            f"The mapping must give a column for {', '.join(missing)} ({kind})", "columns"
        )
    rules = []
    for target, spec in columns.items():
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
            raise InvalidRequest(
                f'columns.{target} must be a header text or {{"column": ..., "values": ...}}',
                f"columns.{target}",
            )
        extra = sorted(set(spec) - {"column", "values"})
        if extra:
            raise InvalidRequest(
                f"columns.{target}: unknown keys {', '.join(extra)}", f"columns.{target}"
            )
        values = spec.get("values", {})
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise InvalidRequest(
                f"columns.{target}.values must map source texts to target texts",
                f"columns.{target}.values",
            )
        allowed = ALLOWED_VALUES.get(target)
        bad = sorted(v for v in values.values() if allowed is not None and v not in allowed)
        if bad:
            raise InvalidRequest(
                f"columns.{target}.values: {', '.join(bad)} not in "
                + ", ".join(sorted(allowed or ())),
                f"columns.{target}.values",
            )
        rules.append(ColumnRule(target, spec["column"], {fold(k): v for k, v in values.items()}))
    return tuple(rules)
