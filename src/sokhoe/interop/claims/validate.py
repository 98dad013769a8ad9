"""Check a claim against the table definitions before it is written.

Why before writing: the portal rejects a whole file for one bad field and answers hours later;
everything we can check here (types, lengths, required fields, code formats, amounts that must
add up) is checked here, and a file with an error is not written at all.

The amount rules (QĐ 130 table 2/3 as amended): ``THANH_TIEN_BV = SO_LUONG × DON_GIA`` rounded
to 2 decimals; each row's payers add up to its amount; XML1 totals are the sums of the XML2/XML3
rows (``T_THUOC`` the drugs, ``T_VTYT`` the supplies, ``T_TONGCHI_BV`` everything).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sokhoe.interop.claims.catalogue import SUPPLY_GROUPS
from sokhoe.interop.claims.tables import TABLES, Field, Table
from sokhoe.messages import Text
from sokhoe.registry.terminology_icd10 import is_recordable

Severity = Literal["error", "warning"]
Row = dict[str, str]
"""One row: field name → text ("" when empty)."""

TOLERANCE = Decimal("0.01")
"""Rounding tolerance on amounts (one hundredth of a đồng)."""
_DT12 = re.compile(r"[0-9]{12}")
_D8 = re.compile(r"[0-9]{8}")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, located as the portal reports its own: table, MA_LK, row, field."""

    table: str
    ma_lk: str
    stt: int | None
    field: str
    message: Text
    """English; a Message where a clinic page shows it (the bill of a visit)."""
    severity: Severity = "error"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": str(self.message)}

    def __str__(self) -> str:
        row = f" row {self.stt}" if self.stt is not None else ""
        return f"{self.severity}: {self.table} {self.ma_lk}{row} {self.field}: {self.message}"


def _dt_ok(text: str, birth: bool) -> bool:
    """A ``yyyyMMddHHmm`` value that is a real moment (a birth date may have 00 day/month)."""
    if birth and text[6:8] == "00" and text[8:] == "0000":  # year or year-month only
        return int(text[:4]) > 0 and 0 <= int(text[4:6]) <= 12
    try:
        datetime.strptime(text, "%Y%m%d%H%M")
    except ValueError:
        return False
    return True


def check_field(spec: Field, value: str) -> str | None:
    """What is wrong with ``value`` for ``spec`` (None when it is fine)."""
    if value == "":
        return "required field is empty" if spec.required else None
    if spec.max_len is not None and len(value) > spec.max_len:
        return f"{len(value)} characters, at most {spec.max_len} allowed"
    if spec.kind == "num":
        if not _NUMBER.fullmatch(value):
            return f"{value!r} is not a number (digits, optional '.' decimals)"
    elif spec.kind == "dt12":
        if not _DT12.fullmatch(value) or not _dt_ok(value, spec.name == "NGAY_SINH"):
            return f"{value!r} is not a yyyyMMddHHmm date-time"
    elif spec.kind == "d8":
        if not _D8.fullmatch(value):
            return f"{value!r} is not a yyyyMMdd date"
        try:
            datetime.strptime(value, "%Y%m%d")
        except ValueError:
            return f"{value!r} is not a real date"
    if spec.pattern is not None:
        items = value.split(";") if spec.max_items else [value]
        if spec.max_items and len(items) > spec.max_items:
            return f"{len(items)} values, at most {spec.max_items} allowed"
        for item in items:
            if not spec.pattern.fullmatch(item):
                return f"{item!r} does not have the required format"
    return None


def check_rows(table: Table, ma_lk: str, rows: Sequence[Mapping[str, str]]) -> list[Problem]:
    """Types, lengths, required fields and formats of every row; MA_LK and STT links."""
    problems: list[Problem] = []
    names = set(table.names)
    for index, row in enumerate(rows, start=1):
        stt = None if table.single else index
        for extra in sorted(set(row) - names):
            problems.append(Problem(table.loai, ma_lk, stt, extra, "not a field of this table"))
        for spec in table.fields:
            message = check_field(spec, row.get(spec.name, ""))
            if message:
                problems.append(Problem(table.loai, ma_lk, stt, spec.name, message))
        if row.get("MA_LK", "") not in ("", ma_lk):
            problems.append(Problem(table.loai, ma_lk, stt, "MA_LK", "does not match XML1 MA_LK"))
        if "STT" in names and not table.single and row.get("STT") not in ("", str(index)):
            problems.append(Problem(table.loai, ma_lk, stt, "STT", f"should be {index}"))
    return problems


def _dec(value: str) -> Decimal:
    try:
        return Decimal(value) if value else Decimal(0)
    except InvalidOperation:
        return Decimal(0)  # reported by the type check


def _near(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= TOLERANCE


def check_amounts(ma_lk: str, tables: Mapping[str, Sequence[Mapping[str, str]]]) -> list[Problem]:
    """Row amounts and XML1 totals agree (within :data:`TOLERANCE`)."""
    problems: list[Problem] = []
    sums = {k: Decimal(0) for k in ("drugs", "supplies", "bv", "bh", "bntt", "bncct", "bhtt", "nk")}
    for loai, price_field in (("XML2", "DON_GIA"), ("XML3", "DON_GIA_BV")):
        for stt, row in enumerate(tables.get(loai, ()), start=1):
            bv = _dec(row.get("THANH_TIEN_BV", ""))
            expected = (_dec(row.get("SO_LUONG", "")) * _dec(row.get(price_field, ""))).quantize(
                TOLERANCE
            )
            if not _near(bv, expected):
                problems.append(
                    Problem(loai, ma_lk, stt, "THANH_TIEN_BV", f"{bv} ≠ SO_LUONG × {price_field}")
                )
            bh = _dec(row.get("THANH_TIEN_BH", ""))
            if bh > bv + TOLERANCE:
                problems.append(
                    Problem(loai, ma_lk, stt, "THANH_TIEN_BH", "larger than THANH_TIEN_BV")
                )
            payers = sum(
                (_dec(row.get(f, "")) for f in ("T_BNTT", "T_BNCCT", "T_BHTT", "T_NGUONKHAC")),
                Decimal(0),
            )
            if not _near(payers, bv):
                problems.append(
                    Problem(
                        loai,
                        ma_lk,
                        stt,
                        "T_BHTT",
                        f"T_BNTT + T_BNCCT + T_BHTT + T_NGUONKHAC = {payers} ≠ THANH_TIEN_BV {bv}",
                    )
                )
            if loai == "XML2":
                sums["drugs"] += bv
            elif _dec(row.get("MA_NHOM", "")) in SUPPLY_GROUPS:
                sums["supplies"] += bv
            sums["bv"] += bv
            sums["bh"] += bh
            sums["bntt"] += _dec(row.get("T_BNTT", ""))
            sums["bncct"] += _dec(row.get("T_BNCCT", ""))
            sums["bhtt"] += _dec(row.get("T_BHTT", ""))
            sums["nk"] += _dec(row.get("T_NGUONKHAC", ""))
    summary = (tables.get("XML1") or [{}])[0]
    for name, key in (
        ("T_THUOC", "drugs"),
        ("T_VTYT", "supplies"),
        ("T_TONGCHI_BV", "bv"),
        ("T_TONGCHI_BH", "bh"),
        ("T_BNTT", "bntt"),
        ("T_BNCCT", "bncct"),
        ("T_BHTT", "bhtt"),
        ("T_NGUONKHAC", "nk"),
    ):
        total = _dec(summary.get(name, ""))
        if not _near(total, sums[key]):
            problems.append(
                Problem("XML1", ma_lk, None, name, f"{total} ≠ {sums[key]}, the sum of XML2/XML3")
            )
    return problems


_ICD_FIELDS = (("XML1", "MA_BENH_CHINH"), ("XML1", "MA_BENH_KT"), ("XML3", "MA_BENH"))
_SEX = frozenset({"1", "2", "3"})


def check_rules(ma_lk: str, tables: Mapping[str, Sequence[Mapping[str, str]]]) -> list[Problem]:
    """Rules across fields: codes that exist, dates in order, orders inside the visit.

    ICD-10 codes are checked against the WHO 2019 edition plus the two categories the Ministry
    keeps (A90, A91) — the platform's own write-time list (``registry.terminology_icd10``);
    codes the Ministry's Circular 06/2026 adds beyond WHO would be refused here (unconfirmed
    whether any are in use)."""
    problems: list[Problem] = []
    for loai, name in _ICD_FIELDS:
        for index, row in enumerate(tables.get(loai, ()), start=1):
            stt = None if TABLES[loai].single else index
            for code in filter(None, row.get(name, "").split(";")):
                if not is_recordable(code):
                    problems.append(
                        Problem(loai, ma_lk, stt, name, f"{code} is not an ICD-10 (sub)category")
                    )
    summary = (tables.get("XML1") or [{}])[0]
    start, end = summary.get("NGAY_VAO", ""), summary.get("NGAY_RA", "")
    if summary.get("GIOI_TINH", "1") not in _SEX:
        problems.append(Problem("XML1", ma_lk, None, "GIOI_TINH", "must be 1, 2 or 3"))
    if start and end and end < start:
        problems.append(Problem("XML1", ma_lk, None, "NGAY_RA", f"{end} is before NGAY_VAO"))
    for loai in ("XML2", "XML3"):
        for stt, row in enumerate(tables.get(loai, ()), start=1):
            ordered = row.get("NGAY_YL", "")
            if ordered and start and end and not start <= ordered <= end:
                problems.append(
                    Problem(loai, ma_lk, stt, "NGAY_YL", f"{ordered} is outside the visit")
                )
    return problems


def validate_claim(ma_lk: str, tables: Mapping[str, Sequence[Mapping[str, str]]]) -> list[Problem]:
    """Every check on one encounter's tables (XML0 included when present)."""
    problems: list[Problem] = []
    if not tables.get("XML1"):
        problems.append(Problem("XML1", ma_lk, None, "MA_LK", "the summary table is missing"))
    for loai, rows in tables.items():
        problems.extend(check_rows(TABLES[loai], ma_lk, rows))
    problems.extend(check_amounts(ma_lk, tables))
    problems.extend(check_rules(ma_lk, tables))
    return problems


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
