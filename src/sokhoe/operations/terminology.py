"""The terminology operations ``$lookup``, ``$expand`` and ``$validate-code``.

Each handler takes the operation's input parameters (from a query string or a ``Parameters``
resource, already flattened by ``parse_query``/``parse_parameters``) and returns the FHIR
resource to send back; the code systems themselves live in ``sokhoe.registry.terminology``.
See: https://hl7.org/fhir/R4/terminology-service.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sokhoe.errors import InvalidRequest, NotSupported
from sokhoe.fhir.resources import format_instant
from sokhoe.registry.terminology import (
    Row,
    code_system,
    expand,
    lookup,
    validate_code,
    value_set_system,
)

Params = dict[str, list[Any]]
"""Input parameters by name; values are strings, ints, booleans or Coding dicts."""
StoredCodes = Callable[[str], Sequence[Row] | None]
"""The rows of a value set kept in the store (the drug catalogue), or None for any other url."""


def parse_query(items: Iterable[tuple[str, str]]) -> Params:
    """Parameters of a GET: the query string, each name possibly repeated."""
    params: Params = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    return params


def parse_parameters(body: Any) -> Params:
    """Parameters of a POST: the ``value[x]`` of each ``Parameters.parameter``.

    See: https://hl7.org/fhir/R4/parameters.html
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("The body must be a Parameters resource", code="structure")
    params: Params = {}
    entries = body.get("parameter", [])
    if not isinstance(entries, list):
        raise InvalidRequest("Parameters.parameter must be an array", "Parameters.parameter")
    for i, entry in enumerate(entries):
        where = f"Parameters.parameter[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidRequest("Each parameter needs a name", where)
        values = [v for k, v in entry.items() if k.startswith("value")]
        if "resource" in entry:
            raise NotSupported(f"Parameter '{entry['name']}' as a resource is not supported")
        if len(values) != 1:
            raise InvalidRequest(f"Parameter '{entry['name']}' needs exactly one value[x]", where)
        params.setdefault(entry["name"], []).append(values[0])
    return params


def _one(params: Params, name: str) -> Any:
    values = params.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"Parameter '{name}' is given more than once", name)
    return values[0] if values else None


def _string(params: Params, name: str) -> str | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"Parameter '{name}' must be a string", name)
    return value


def _required(params: Params, name: str) -> str:
    value = _string(params, name)
    if value is None:
        raise InvalidRequest(f"Parameter '{name}' is required", name, code="required")
    return value


def _integer(params: Params, name: str) -> int | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidRequest(f"Parameter '{name}' must be a non-negative integer", name)


def _system_and_code(params: Params) -> tuple[str, str]:
    """``system`` + ``code``, or a ``coding`` carrying both (POST only)."""
    coding = _one(params, "coding")
    if isinstance(coding, dict):
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            raise InvalidRequest("Parameter 'coding' needs a system and a code", "coding")
        return system, code
    if coding is not None:
        raise InvalidRequest("Parameter 'coding' must be a Coding", "coding")
    code = _required(params, "code")
    return _required(params, "system"), code


def _part(name: str, value: str | bool | int, kind: str) -> dict[str, Any]:
    return {"name": name, f"value{kind}": value}


def lookup_operation(params: Params) -> dict[str, Any]:
    """CodeSystem/$lookup: name, version, display, Vietnamese designation and properties.

    In: ``system`` + ``code`` (or ``coding``), optional ``property`` (repeatable) to choose which
    properties come back. Out: a ``Parameters`` with ``name``, ``version``, ``display``,
    ``designation`` (language ``vi``, when known) and ``property`` parts (for ICD-10: ``kind``,
    ``parent``, ``child``, ``leaf``). An unknown system or code is a 404 OperationOutcome.
    See: https://hl7.org/fhir/R4/codesystem-operation-lookup.html
    """
    system, code = _system_and_code(params)
    wanted = {str(p) for p in params.get("property", [])}
    found = lookup(system, code)
    out = [
        _part("name", found.system.name, "String"),
        _part("version", found.system.version, "String"),
        _part("display", found.display, "String"),
    ]
    if found.display_vi:
        out.append(
            {
                "name": "designation",
                "part": [
                    _part("language", "vi", "Code"),
                    _part("value", found.display_vi, "String"),
                ],
            }
        )
    for prop, value in found.properties:
        if wanted and prop not in wanted:
            continue
        kind = "Boolean" if isinstance(value, bool) else "Code"
        out.append(
            {"name": "property", "part": [_part("code", prop, "Code"), _part("value", value, kind)]}
        )
    return {"resourceType": "Parameters", "parameter": out}


def _contains(row: Row, language: str | None) -> dict[str, Any]:
    return {"system": row.system, "code": row.code, "display": row.display_in(language)}


def expand_operation(params: Params, stored: StoredCodes | None = None) -> dict[str, Any]:
    """ValueSet/$expand: a ValueSet whose ``expansion`` lists one page of codes.

    In: ``url`` (required; an inline ``valueSet`` is not supported), ``filter``, ``offset``,
    ``count`` (at most 1000 a page), ``displayLanguage`` (``vi`` for Vietnamese displays where
    known). Value sets whose codes live in the store (the drug catalogue) are read through
    ``stored``. Out: the ValueSet with ``expansion.total``, ``offset``, the parameters used, and
    ``contains``.
    See: https://hl7.org/fhir/R4/valueset-operation-expand.html
    """
    if "valueSet" in params:
        raise NotSupported("Expanding an inline valueSet is not supported; pass its url")
    url = _required(params, "url")
    text_filter = _string(params, "filter")
    offset = _integer(params, "offset") or 0
    count = _integer(params, "count")
    language = _string(params, "displayLanguage")
    codes = stored(url) if stored is not None else None
    result = expand(url, text_filter, offset, count, codes)
    used: list[dict[str, Any]] = [{"name": "offset", "valueInteger": offset}]
    if count is not None:
        used.append({"name": "count", "valueInteger": count})
    if text_filter:
        used.append({"name": "filter", "valueString": text_filter})
    if language:
        used.append({"name": "displayLanguage", "valueCode": language})
    expansion: dict[str, Any] = {
        "identifier": f"urn:sokhoe:expansion:{url}",
        "timestamp": format_instant(datetime.now(UTC)),
        "total": result.total,
        "offset": result.offset,
        "parameter": used,
    }
    if result.contains:
        expansion["contains"] = [_contains(row, language) for row in result.contains]
    return {
        "resourceType": "ValueSet",
        "url": url,
        "status": "active",
        "compose": {"include": _include(url, codes)},
        "expansion": expansion,
    }


def _include(url: str, codes: Sequence[Row] | None) -> list[dict[str, Any]]:
    if codes is None:
        return [{"system": value_set_system(url)}]
    systems = dict.fromkeys(row.system for row in codes)
    return [{"system": s} for s in systems] or [{"valueSet": [url]}]


def validate_code_operation(params: Params, resource_type: str) -> dict[str, Any]:
    """CodeSystem/$validate-code and ValueSet/$validate-code: is this code valid here?

    In: ``code`` with ``system`` (or ``url``, which names the code system on CodeSystem and the
    value set on ValueSet), or ``coding``; optional ``display``. Out: a ``Parameters`` with
    ``result`` (boolean), ``message`` when false, and the code's ``display`` when known.
    See: https://hl7.org/fhir/R4/codesystem-operation-validate-code.html
    See: https://hl7.org/fhir/R4/valueset-operation-validate-code.html
    """
    url = _string(params, "url")
    value_set: str | None = None
    if resource_type == "ValueSet":
        value_set = url
        if "system" not in params and "coding" not in params:
            if url is None:
                raise InvalidRequest("Parameter 'url' or 'system' is required", "url", "required")
            params = {**params, "system": [value_set_system(url)]}
    elif url is not None and "system" not in params and "coding" not in params:
        params = {**params, "system": [url]}
    system, code = _system_and_code(params)
    if resource_type == "CodeSystem" and url is not None and url != system:
        code_system(url)  # an unknown url is reported as such before the mismatch
        raise InvalidRequest(f"Parameters 'url' ({url}) and 'system' ({system}) disagree", "url")
    checked = validate_code(system, code, _string(params, "display"), value_set)
    out: list[dict[str, Any]] = [_part("result", checked.result, "Boolean")]
    if checked.message:
        out.append(_part("message", checked.message, "String"))
    if checked.display:
        out.append(_part("display", checked.display, "String"))
    return {"resourceType": "Parameters", "parameter": out}
