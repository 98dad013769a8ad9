"""Small helpers on resources as JSON: ids, instants, meta, summaries and element subsets."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sokhoe.fhir.definitions import types

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def new_id() -> str:
    return str(uuid.uuid4())


@lru_cache(maxsize=256)
def format_instant(value: datetime) -> str:
    """FHIR ``instant`` in UTC with milliseconds, e.g. ``2026-11-23T03:00:00.123Z``.

    Cached: every version a transaction writes carries the same instant."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def parse_instant(text: str) -> datetime:
    """Parse an instant or dateTime with timezone (``_since``, ``If-Modified-Since``)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def http_date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def with_meta(resource: dict[str, Any], rid: str, version: int, when: datetime) -> dict[str, Any]:
    """A copy with the server-owned ``id``, ``meta.versionId`` and ``meta.lastUpdated`` set."""
    out = dict(resource)
    out["id"] = rid
    meta = dict(out.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = format_instant(when)
    out["meta"] = meta
    return out


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from ``meta.versionId``/``lastUpdated`` (a no-op update makes no version)."""

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        r = dict(r)
        meta = {
            k: v for k, v in (r.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
        }
        r.pop("meta", None)
        if meta:
            r["meta"] = meta
        return r

    return strip(a) == strip(b)


def _in_summary(resource_type: str, key: str) -> bool:
    """Is top-level element ``key`` (``deceasedBoolean`` for ``deceased[x]``) a summary element?"""
    if resource_type not in types():
        return False
    for e in types()[resource_type].elements:
        if not e.summary or e.path.count(".") != 1:
            continue
        name = e.path.split(".", 1)[1]
        if name == key or (name.endswith("[x]") and key.startswith(name[:-3])):
            return True
    return False


def subset(
    resource: dict[str, Any], summary: str | None, elements: list[str] | None
) -> dict[str, Any]:
    """Apply ``_summary`` / ``_elements``, tagging the result SUBSETTED as the spec asks.

    See: https://hl7.org/fhir/R4/search.html#summary
    """
    if summary in (None, "false") and not elements:
        return resource
    rtype = resource["resourceType"]
    keep_always = {"resourceType", "id", "meta"}
    if summary == "text":
        keep = keep_always | {"text"}
        out = {k: v for k, v in resource.items() if k in keep}
    elif summary == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif summary == "true":
        out = {k: v for k, v in resource.items() if k in keep_always or _in_summary(rtype, k)}
    else:
        wanted = set(elements or [])
        out = {k: v for k, v in resource.items() if k in keep_always or k in wanted}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out
