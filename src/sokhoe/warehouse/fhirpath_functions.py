"""The functions SQL on FHIR views need beyond what fhirpathpy provides.

- ``getResourceKey()`` and ``getReferenceKey([type])``, which the specification requires so
  views can be joined without knowing how ids and references are spelled;
- ``lowBoundary([precision])`` / ``highBoundary([precision])`` for decimals, dates, dateTimes and
  times (FHIRPath 3.0), which fhirpathpy 2.x lacks;
- ``extension(url)`` returning *every* matching extension (fhirpathpy returns only the first)
  and ``join([separator])`` giving ``''`` for an empty collection, as the spec's tests expect.

They are registered through fhirpathpy's user invocation table (see ``fhirpath_ext``), and
receive fhirpathpy's raw items, so a boundary can tell a ``date`` from a ``dateTime`` by the
node's FHIR type.

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/#required-fhirpath-expressionsfunctions
See: https://hl7.org/fhirpath/N1/#lowboundaryprecision-integer-decimal--date--datetime--time
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fhirpathpy.engine.nodes import FP_DateTime, FP_Time, ResourceNode, TypeInfo
from fhirpathpy.models import models

#: The FHIR R4 model fhirpathpy uses to resolve choice types (``value.ofType(Quantity)``).
MODEL: dict[str, Any] = models["r4"]


class FhirPathError(Exception):
    """An expression could not be parsed, or failed while being evaluated."""


def temporal_text(item: FP_DateTime | FP_Time) -> str:
    """A date/time value's text as written (``str()`` fills missing parts: 2010-10 → 2010-10-23)."""
    text = item.asStr
    return text if isinstance(text, str) else str(item)


def get_resource_key(ctx: dict[str, Any], inputs: list[Any]) -> list[Any]:
    """The key of a resource: its logical ``id`` (unique per type in the store).

    See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/#getresourcekey--keytype
    """
    out = []
    for item in inputs:
        data = item.data if isinstance(item, ResourceNode) else item
        if isinstance(data, dict) and "resourceType" in data and isinstance(data.get("id"), str):
            out.append(data["id"])
    return out


_REFERENCE_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def _get_reference_key(
    ctx: dict[str, Any], inputs: list[Any], type_info: TypeInfo | None = None
) -> list[Any]:
    """The key of the resource a Reference points to, comparable with ``getResourceKey()``.

    Relative (``Patient/1``), absolute (``http://x/fhir/Patient/1``) and versioned references
    give the id; ``urn:uuid:``/``urn:oid:`` references give the UUID/OID when no type is asked
    for; contained (``#x``) and logical (identifier-only) references give nothing. With a type
    argument, only references to that type give a key.

    See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/#getreferencekey--keytype
    """
    return reference_keys(inputs, type_info.name if type_info else None)


def reference_keys(inputs: list[Any], wanted: str | None) -> list[Any]:
    """``getReferenceKey`` on References (nodes or plain dicts), optionally of one type only."""
    out = []
    for item in inputs:
        data = item.data if isinstance(item, ResourceNode) else item
        ref = data.get("reference") if isinstance(data, dict) else None
        if not isinstance(ref, str):
            continue
        match = _REFERENCE_RE.search(ref)
        if match:
            if wanted is None or match.group(1) == wanted:
                out.append(match.group(2))
        elif wanted is None and ref.startswith(("urn:uuid:", "urn:oid:")):
            out.append(ref.split(":", 2)[2])
    return out


def join(ctx: dict[str, Any], inputs: list[Any], separator: Any = "") -> list[Any]:
    """``join([separator])``: the empty collection joins to ``''`` (as the spec's tests expect)."""
    parts = []
    for item in inputs:
        data = item.data if isinstance(item, ResourceNode) else item
        if not isinstance(data, str):
            raise FhirPathError("join() needs a collection of strings")
        parts.append(data)
    return [(separator if isinstance(separator, str) else "").join(parts)]


def _extension(ctx: dict[str, Any], inputs: list[Any], url: Any) -> list[Any]:
    """``extension(url)``: every extension with that url, on elements and on primitives."""
    out = []
    for item in inputs:
        holders = [item.data if isinstance(item, ResourceNode) else item]
        if isinstance(item, ResourceNode) and isinstance(item._data, dict):
            holders.append(item._data)  # a primitive's extensions live in "_element"
        for holder in holders:
            if not isinstance(holder, dict):
                continue
            for ext in holder.get("extension") or ():
                if isinstance(ext, dict) and ext.get("url") == url:
                    out.append(ResourceNode.create_node(ext, "Extension"))  # type: ignore[no-untyped-call]
    return out


def _fhir_type(item: Any) -> str | None:
    """The FHIR/System type name of an evaluation item, as far as boundaries need it."""
    if isinstance(item, ResourceNode):
        name = MODEL["path2Type"].get(item.path, item.path) if item.path else None
        if name in ("date", "dateTime", "instant", "time", "decimal", "integer"):
            return str(name)
        item = item.data
    if isinstance(item, FP_Time):
        return "time"
    if isinstance(item, FP_DateTime):
        return "dateTime" if "T" in temporal_text(item) else "date"
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return "integer"
    if isinstance(item, Decimal | float):
        return "decimal"
    return None


_DATETIME_PARTS = re.compile(
    r"^(?P<y>\d{4})(-(?P<mo>\d{2})(-(?P<d>\d{2})(T(?P<h>\d{2})(:(?P<mi>\d{2})"
    r"(:(?P<s>\d{2})(\.(?P<f>\d+))?)?)?)?)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?$"
)
_TIME_PARTS = re.compile(r"^(?P<h>\d{2})(:(?P<mi>\d{2})(:(?P<s>\d{2})(\.(?P<f>\d+))?)?)?$")


def _time_boundary(parts: dict[str, str | None], high: bool) -> str:
    h = parts.get("h") or ("23" if high else "00")
    mi = parts.get("mi") or ("59" if high else "00")
    s = parts.get("s") or ("59" if high else "00")
    f = (parts.get("f") or "")[:3].ljust(3, "9" if high else "0")
    return f"{h}:{mi}:{s}.{f}"


def _boundary(item: Any, high: bool, precision: int | None) -> Any:
    kind = _fhir_type(item)
    data = item.data if isinstance(item, ResourceNode) else item
    if kind in ("decimal", "integer"):
        value = Decimal(str(data))
        exponent = value.as_tuple().exponent
        digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        half = Decimal(5).scaleb(-(digits + 1))
        result = value + half if high else value - half
        if precision is not None:
            if not 0 <= precision <= 28:
                return None
            result = result.quantize(Decimal(1).scaleb(-precision))
        return result
    text = temporal_text(data) if isinstance(data, FP_DateTime | FP_Time) else str(data)
    if precision is not None:
        raise FhirPathError("lowBoundary()/highBoundary() precision is supported for decimals only")
    if kind == "time":
        match = _TIME_PARTS.match(text)
        return _time_boundary(match.groupdict(), high) if match else None
    match = _DATETIME_PARTS.match(text)
    if not match or kind not in ("date", "dateTime", "instant"):
        return None
    p = match.groupdict()
    year = int(p["y"])
    month = p["mo"] or ("12" if high else "01")
    day = p["d"] or (f"{calendar.monthrange(year, int(month))[1]:02d}" if high else "01")
    date = f"{p['y']}-{month}-{day}"
    if kind == "date":
        return date
    zone = p["tz"] or ("-12:00" if high else "+14:00")
    return f"{date}T{_time_boundary(p, high)}{zone}"


def _boundary_fn(high: bool) -> Callable[..., list[Any]]:
    def fn(ctx: dict[str, Any], inputs: list[Any], precision: Any = None) -> list[Any]:
        if len(inputs) > 1:
            raise FhirPathError("lowBoundary()/highBoundary() needs a single value")
        out = [_boundary(item, high, precision if isinstance(precision, int) else None)
               for item in inputs]  # fmt: skip
        return [value for value in out if value is not None]

    return fn


#: The table handed to fhirpathpy (``userInvocationTable``); entries override built-ins.
FUNCTIONS: dict[str, dict[str, Any]] = {
    "getResourceKey": {"fn": get_resource_key},
    "getReferenceKey": {"fn": _get_reference_key, "arity": {0: [], 1: ["TypeSpecifier"]}},
    "join": {"fn": join, "arity": {0: [], 1: ["String"]}},
    "extension": {"fn": _extension, "arity": {1: ["String"]}},
    "lowBoundary": {"fn": _boundary_fn(high=False), "arity": {0: [], 1: ["Integer"]}},
    "highBoundary": {"fn": _boundary_fn(high=True), "arity": {0: [], 1: ["Integer"]}},
}
