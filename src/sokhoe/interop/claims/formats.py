"""How values are written in the appraisal XML, and small readers of FHIR resources.

Dates are local (Asia/Ho_Chi_Minh) ``yyyyMMddHHmm`` or ``yyyyMMdd``; numbers use "." and no
exponent; money is rounded half-up to 2 decimals (QĐ 130 table 2: ``THANH_TIEN`` to 2 places).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sokhoe.interop.claims.sources import local_datetime

CENT = Decimal("0.01")


def dt12(value: str | None) -> str:
    """A FHIR dateTime as ``yyyyMMddHHmm`` in Vietnam time ("" when absent)."""
    return local_datetime(value).strftime("%Y%m%d%H%M") if value else ""


def d8(value: str | None) -> str:
    return value.replace("-", "")[:8] if value else ""


def birth12(value: str | None) -> str:
    """``NGAY_SINH``: a date gets "0000" for the time; a year or year-month gets 00s."""
    if not value:
        return ""
    digits = value[:10].replace("-", "")
    return digits.ljust(8, "0") + "0000"


def number(value: Decimal | int) -> str:
    """A decimal as the XML writes it: "." separator, no exponent, no trailing zeros."""
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def coding_of(concept: Any, system: str) -> dict[str, Any]:
    for coding in (concept or {}).get("coding", []):
        if coding.get("system") == system:
            return dict(coding)
    return {}


def identifiers(resource: dict[str, Any], system: str) -> list[dict[str, Any]]:
    return [
        i
        for i in resource.get("identifier", [])
        if i.get("system") == system and i.get("use") != "old" and i.get("value")
    ]


def name_text(resource: dict[str, Any]) -> str:
    names = resource.get("name") or [{}]
    first = next((n for n in names if n.get("use") == "official"), names[0])
    if first.get("text"):
        return str(first["text"])
    return " ".join([*([first["family"]] if first.get("family") else []), *first.get("given", [])])
