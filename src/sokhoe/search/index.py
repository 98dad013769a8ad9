"""Extract the search index rows of a resource, by the R4 search parameters of its type.

Each parameter's FHIRPath is compiled once per resource type (``search/fhirpath.py``) into
walkers that yield values of a known FHIR type; a converter per (parameter type, value type)
turns them into the rows of ``search/rows.py``, normalised the way queries compare them.
String and date normalisation live here because the query parser must apply exactly the same.
See: https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache, lru_cache
from importlib import import_module
from typing import Any

from sokhoe.fhir.definitions import patient_compartment
from sokhoe.fhir.searchparams import registry
from sokhoe.search.fhirpath import CompiledExpression, compile_expression, parse_reference
from sokhoe.search.rows import (
    OF_TYPE,
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)

DEFAULT_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
"""Vietnam has one zone, UTC+07:00 without DST: the zone of dates and times given without one."""
OPEN_LOW = -1e18
"""``low`` of a period without a start (seconds since the epoch; far beyond any real date)."""
OPEN_HIGH = 1e18
"""``high`` of a period without an end."""
ISO_4217 = "urn:iso:std:iso:4217"

# -- normalisation shared with the query side ----------------------------------------------------

_D_STROKE = str.maketrans({"đ": "d", "Đ": "d"})


@lru_cache(maxsize=1 << 16)
def normalize_string(text: str) -> str:
    """Fold for string search: no accents, no case, single spaces (``Đặng  Văn`` -> ``dang van``).

    Vietnamese is written with stacked diacritics that people often omit when typing, so
    matching must ignore them (FHIR leaves string matching "case- and accent-insensitive").
    ``đ`` is a letter of its own, not ``d`` plus a mark, so it is mapped explicitly.
    See: https://hl7.org/fhir/R4/search.html#string
    """
    if text.isascii():
        return " ".join(text.lower().split())
    folded = unicodedata.normalize("NFD", text.translate(_D_STROKE).casefold())
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())


_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _zone(tz: str | None) -> timezone:
    if tz is None:
        return DEFAULT_TZ
    if tz == "Z":
        return UTC
    offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return timezone(-offset if tz[0] == "-" else offset)


@lru_cache(maxsize=1 << 16)
def date_range(value: str) -> tuple[float, float]:
    """The half-open ``[low, high)`` epoch seconds a date, dateTime or instant covers.

    The range follows the precision written: ``1990`` is the whole year, ``1990-05`` the month,
    ``…T10:00`` the minute, ``…T10:00:00.5`` a tenth of a second. Values without a zone (all
    dates, and times where the sender left it out) are in :data:`DEFAULT_TZ`. Raises
    ``ValueError`` for anything else.
    See: https://hl7.org/fhir/R4/search.html#date
    """
    m = _DATE.fullmatch(value)
    if m is None:
        raise ValueError(f"not a FHIR date, dateTime or instant: {value!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    zone = _zone(tz)
    y = int(year)
    if month is None:
        low = datetime(y, 1, 1, tzinfo=zone)
        return low.timestamp(), datetime(y + 1, 1, 1, tzinfo=zone).timestamp()
    mo = int(month)
    if day is None:
        low = datetime(y, mo, 1, tzinfo=zone)
        high = datetime(y + mo // 12, mo % 12 + 1, 1, tzinfo=zone)
        return low.timestamp(), high.timestamp()
    d = int(day)
    if hour is None:
        start = datetime(y, mo, d, tzinfo=zone).timestamp()
        return start, start + 86400.0
    if second is None:
        start = datetime(y, mo, d, int(hour), int(minute), tzinfo=zone).timestamp()
        return start, start + 60.0
    start = datetime(y, mo, d, int(hour), int(minute), int(second), tzinfo=zone).timestamp()
    if frac is None:
        return start, start + 1.0
    width = 10.0 ** -len(frac)
    start += int(frac) * width
    return start, start + width


# -- converters: one FHIR value of a known type -> rows ------------------------------------------

Converter = Callable[[str, Any, IndexRows], None]


def _norm_opt(text: Any) -> str | None:
    return normalize_string(text) if isinstance(text, str) and text else None


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) or isinstance(v, Decimal)


def _string(code: str, v: Any, rows: IndexRows) -> None:
    if isinstance(v, str) and v:
        rows.strings.append(StringRow(code, normalize_string(v), v))


def _add_strings(code: str, texts: list[str], rows: IndexRows) -> None:
    seen: set[str] = set()
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            rows.strings.append(StringRow(code, normalize_string(text), text))


def _strs(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [s for s in v if isinstance(s, str)] if isinstance(v, list) else []


def _human_name(code: str, v: Any, rows: IndexRows) -> None:
    """Every part, plus the whole name in both orders so ``name=nguyen van an`` can match."""
    if type(v) is not dict:
        return
    family, given = _strs(v.get("family")), _strs(v.get("given"))
    texts = [
        *family,
        *given,
        *_strs(v.get("prefix")),
        *_strs(v.get("suffix")),
        *_strs(v.get("text")),
    ]
    if given and (family or len(given) > 1):
        texts.append(" ".join([*given, *family]))
        texts.append(" ".join([*family, *given]))
    _add_strings(code, texts, rows)


_ADDRESS_PARTS = ("city", "district", "state", "postalCode", "country", "text")


def _address(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict:
        texts = _strs(v.get("line"))
        for part in _ADDRESS_PARTS:
            texts.extend(_strs(v.get(part)))
        _add_strings(code, texts, rows)


def _token_primitive(code: str, v: Any, rows: IndexRows) -> None:
    if isinstance(v, str) and v:
        rows.tokens.append(TokenRow(code, None, v))


def _token_boolean(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is bool:
        rows.tokens.append(TokenRow(code, None, "true" if v else "false"))


def _coding(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict:
        system, value, display = v.get("system"), v.get("code"), v.get("display")
        if system is not None or value is not None or display:
            rows.tokens.append(TokenRow(code, system, value, _norm_opt(display)))


def _codeable_concept(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is not dict:
        return
    for coding in v.get("coding") or ():
        _coding(code, coding, rows)
    text = v.get("text")
    if isinstance(text, str) and text:
        rows.tokens.append(TokenRow(code, None, None, normalize_string(text)))


def _identifier(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict:
        system, value = v.get("system"), v.get("value")
        if system is not None or value is not None:
            kind = v.get("type")
            text = _norm_opt(kind.get("text")) if type(kind) is dict else None
            rows.tokens.append(TokenRow(code, system, value, text))
            if type(kind) is dict and isinstance(value, str):
                _identifier_type(code, kind, value, rows)


def _identifier_type(code: str, kind: dict[str, Any], value: str, rows: IndexRows) -> None:
    """Rows for ``:of-type``: the value under each coding of the identifier's type."""
    codings = kind.get("coding")
    for coding in codings if type(codings) is list else ():
        if type(coding) is dict and coding.get("system") and coding.get("code"):
            kind_of = f"{coding['system']}|{coding['code']}"
            rows.tokens.append(TokenRow(f"{code}{OF_TYPE}", kind_of, value))


def _contact_point(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict and isinstance(v.get("value"), str):
        rows.tokens.append(TokenRow(code, None, v["value"]))


def _date(code: str, v: Any, rows: IndexRows) -> None:
    if isinstance(v, str):
        try:
            low, high = date_range(v)
        except ValueError:
            return
        rows.dates.append(DateRow(code, low, high))


def _period(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is not dict:
        return
    start, end = v.get("start"), v.get("end")
    if start is None and end is None:
        return
    try:
        low = date_range(start)[0] if isinstance(start, str) else OPEN_LOW
        high = date_range(end)[1] if isinstance(end, str) else OPEN_HIGH
    except ValueError:
        return
    rows.dates.append(DateRow(code, low, high))


def _timing(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is not dict:
        return
    for event in v.get("event") or ():
        _date(code, event, rows)
    repeat = v.get("repeat")
    if type(repeat) is dict and "boundsPeriod" in repeat:
        _period(code, repeat["boundsPeriod"], rows)


def _reference(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict:
        ref = v.get("reference")
        if isinstance(ref, str) and ref:
            rtype, rid = parse_reference(ref)
            rows.references.append(ReferenceRow(code, rtype, rid, ref))


def _reference_url(code: str, v: Any, rows: IndexRows) -> None:
    if isinstance(v, str) and v:
        rows.references.append(ReferenceRow(code, None, None, v))


def _quantity(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict and _is_number(v.get("value")):
        rows.quantities.append(
            QuantityRow(code, float(v["value"]), v.get("system"), v.get("code"), v.get("unit"))
        )


def _money(code: str, v: Any, rows: IndexRows) -> None:
    if type(v) is dict and _is_number(v.get("value")):
        currency = v.get("currency")
        system = ISO_4217 if currency else None
        rows.quantities.append(QuantityRow(code, float(v["value"]), system, currency, None))


def _number(code: str, v: Any, rows: IndexRows) -> None:
    if _is_number(v):
        rows.numbers.append(NumberRow(code, float(v)))


def _uri(code: str, v: Any, rows: IndexRows) -> None:
    if isinstance(v, str) and v:
        rows.uris.append(UriRow(code, v))


_TEXT = ("string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid")
_QUANTITIES = ("Quantity", "SimpleQuantity", "Age", "Duration", "Distance", "Count")
CONVERTERS: dict[tuple[str, str], Converter] = {
    **{("string", t): _string for t in _TEXT},
    ("string", "HumanName"): _human_name,
    ("string", "Address"): _address,
    **{("token", t): _token_primitive for t in _TEXT},
    ("token", "boolean"): _token_boolean,
    ("token", "Coding"): _coding,
    ("token", "CodeableConcept"): _codeable_concept,
    ("token", "Identifier"): _identifier,
    ("token", "ContactPoint"): _contact_point,
    **{("date", t): _date for t in ("date", "dateTime", "instant")},
    ("date", "Period"): _period,
    ("date", "Timing"): _timing,
    ("reference", "Reference"): _reference,
    **{("reference", t): _reference_url for t in ("canonical", "uri", "url")},
    **{("quantity", t): _quantity for t in _QUANTITIES},
    ("quantity", "Money"): _money,
    **{("number", t): _number for t in ("integer", "decimal", "positiveInt", "unsignedInt")},
    **{("uri", t): _uri for t in ("uri", "url", "canonical", "oid", "uuid")},
}
"""(parameter type, FHIR value type) -> converter; pairs not listed are not indexed."""


def _guess_type(v: Any, param_type: str) -> str | None:
    """The FHIR type of a value fhirpathpy returned (the fallback carries no type information)."""
    if type(v) is bool:
        return "boolean"
    if _is_number(v):
        return "decimal"
    if isinstance(v, str):
        return {"date": "dateTime", "reference": "uri"}.get(param_type, "string")
    if not isinstance(v, dict):
        return None
    for key, fhir_type in (
        ("reference", "Reference"),
        ("coding", "CodeableConcept"),
        ("currency", "Money"),
        ("family", "HumanName"),
        ("given", "HumanName"),
        ("line", "Address"),
        ("city", "Address"),
        ("start", "Period"),
        ("end", "Period"),
        ("event", "Timing"),
        ("repeat", "Timing"),
    ):
        if key in v:
            return fhir_type
    if param_type == "quantity":
        return "Quantity"
    if param_type == "token":
        return "Identifier" if "value" in v else "Coding" if "code" in v else "CodeableConcept"
    return None


# -- per-type extraction plans ---------------------------------------------------------------------

COMPUTED_VALUES = {"string": "string", "token": "Coding"}
"""Parameter type -> the FHIR type of the values a computed parameter's function returns."""

_Path = tuple[str, Callable[[dict[str, Any]], list[Any]], Converter]


@cache
def _plan(
    resource_type: str, only: str | None = None
) -> tuple[
    tuple[tuple[str, str, Callable[[dict[str, Any]], list[Any]], Converter], ...],
    tuple[tuple[str, tuple[_Path, ...]], ...],
    tuple[tuple[str, str, CompiledExpression], ...],
]:
    """(single walks, union params, fhirpathpy params) for one resource type, compiled once.

    A platform parameter computed in Python (``SearchParam.extractor``) is a single walk over
    the whole resource: its function returns values of a FHIR type its converter takes."""
    simple: list[tuple[str, str, Callable[[dict[str, Any]], list[Any]], Converter]] = []
    unions: list[tuple[str, tuple[_Path, ...]]] = []
    slow: list[tuple[str, str, CompiledExpression]] = []
    for sp in registry().supported(resource_type):
        if only is not None and sp.type != only:
            continue
        if sp.extractor is not None:
            module, function = sp.extractor.split(":")
            compute = getattr(import_module(module), function)
            convert = CONVERTERS[(sp.type, COMPUTED_VALUES[sp.type])]
            simple.append(("resourceType", sp.code, compute, convert))
            continue
        if sp.expression is None:
            continue
        compiled = compile_expression(resource_type, sp.expression)
        if compiled.paths is None:
            slow.append((sp.code, sp.type, compiled))
            continue
        paths = tuple(
            (p.first_key, p.walk, CONVERTERS[(sp.type, p.type_code)])
            for p in compiled.paths
            if (sp.type, p.type_code) in CONVERTERS
        )
        if compiled.union and len(paths) > 1:
            unions.append((sp.code, paths))
        else:
            simple.extend((key, sp.code, walk, conv) for key, walk, conv in paths)
    return tuple(simple), tuple(unions), tuple(slow)


def extract_index(resource: dict[str, Any], only: str | None = None) -> IndexRows:
    """All index rows of ``resource`` for the R4 parameters of its ``resourceType`` (those of
    parameter type ``only``, when given)."""
    rows = IndexRows()
    simple, unions, slow = _plan(resource["resourceType"], only)
    for key, code, walk, conv in simple:
        if key in resource:
            for v in walk(resource):
                conv(code, v, rows)
    for code, paths in unions:
        seen: list[Any] = []
        for key, walk, convert in paths:
            if key in resource:
                for v in walk(resource):
                    if v not in seen:
                        seen.append(v)
                        convert(code, v, rows)
    for code, param_type, compiled in slow:
        for v in compiled.values(resource):
            fhir_type = _guess_type(v, param_type)
            fallback = CONVERTERS.get((param_type, fhir_type)) if fhir_type else None
            if fallback is not None:
                fallback(code, v, rows)
    return rows


SERVER_PARAMS = ("_id", "_lastUpdated")
"""Parameters whose values the server assigns (``id``, ``meta.lastUpdated``) when it stores."""


def extract_client_index(resource: dict[str, Any]) -> IndexRows:
    """The index rows that do not depend on the server-assigned ``id`` and ``lastUpdated``.

    A bulk load computes these in worker processes, before the writer has decided ids and
    timestamps; :func:`with_server_rows` then completes them. The two together equal
    :func:`extract_index` of the stored version.
    """
    probe = dict(resource)
    probe.pop("id", None)
    meta = probe.get("meta")
    if isinstance(meta, dict) and "lastUpdated" in meta:
        probe["meta"] = {k: v for k, v in meta.items() if k != "lastUpdated"}
    return extract_index(probe)


def with_server_rows(client: IndexRows, rid: str, last_updated: str) -> IndexRows:
    """``client`` completed, in place, with the ``_id`` and ``_lastUpdated`` rows of the stored
    version (``client`` came from :func:`extract_client_index`, so it holds neither)."""
    _token_primitive("_id", rid, client)
    _date("_lastUpdated", last_updated, client)
    return client


def compartment_patient_id(resource: dict[str, Any], rows: IndexRows) -> str | None:
    """The Patient whose compartment holds ``resource``: itself for a Patient, else the first
    Patient referenced by one of the type's compartment parameters, in definition order.

    See: https://hl7.org/fhir/R4/compartmentdefinition-patient.html
    """
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    params = patient_compartment().get(rtype or "", ())
    for param in params:
        for ref in rows.references:
            if ref.param == param and ref.target_type == "Patient" and ref.target_id:
                return ref.target_id
    return None
