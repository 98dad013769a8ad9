"""Reading the ``Parameters`` resource that carries an operation's input.

See: https://hl7.org/fhir/R4/parameters.html
"""

from __future__ import annotations

from typing import Any

from sokhoe.errors import InvalidRequest


def parameters_by_name(body: Any) -> dict[str, list[dict[str, Any]]]:
    """``name`` -> its ``parameter`` entries; refuses anything that is not a Parameters."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("The body must be a Parameters resource", "Parameters")
    out: dict[str, list[dict[str, Any]]] = {}
    raw = body.get("parameter", [])
    if not isinstance(raw, list):
        raise InvalidRequest("Parameters.parameter must be an array", "Parameters.parameter")
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise InvalidRequest("Each parameter needs a name", f"Parameters.parameter[{i}]")
        out.setdefault(p["name"], []).append(p)
    return out


def string_parameter(params: dict[str, list[dict[str, Any]]], name: str) -> str | None:
    """The single ``valueString`` (or ``valueCode``) of ``name``, stripped; None when absent."""
    found = params.get(name, [])
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequest(f"Parameter '{name}' is given more than once", name)
    value = found[0].get("valueString", found[0].get("valueCode"))
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"Parameter '{name}' needs a non-empty valueString", name)
    return value.strip()
