"""``$export`` (FHIR Bulk Data Access v2.0.0): the kick-off parameters and who may export.

Three levels share one operation: ``[base]/$export`` (every resource type), ``[base]/Patient/
$export`` (the compartments of all patients) and ``[base]/Group/[id]/$export`` (the
compartments of the group's members). The kick-off is checked here, before a job exists:
parameters (``_outputFormat``, ``_since``, ``_type``; ``_typeFilter`` and the other optional
ones are refused with an OperationOutcome so a client can retry without them) and the caller
(read scopes for the requested types; analysts and citizens export nothing). Which resources
a facility's caller receives is decided resource by resource while the job runs, by the same
access rule as a search (``interop/bulk/export.py``).
See: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.scopes import scopes_allow
from sokhoe.errors import Forbidden, InvalidRequest, NotSupported
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.resources import parse_instant
from sokhoe.interop.bulk.export import ExportRequest, Kind, group_members

OUTPUT_FORMATS: Final = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
"""``_outputFormat`` values meaning NDJSON (the only format served)."""
UNSUPPORTED: Final = frozenset(
    {"_typeFilter", "_elements", "patient", "includeAssociatedData", "organizeOutputBy"}
)
"""Optional kick-off parameters this server does not implement: refused, not ignored, so a
client never receives more data than it filtered for."""
KNOWN: Final = frozenset({"_outputFormat", "_since", "_type"}) | UNSUPPORTED
REFUSED_ROLES: Final = frozenset({"analyst"})
"""Staff roles that see aggregates only (access/policy.py) and so export no record."""


def _definition(
    level: str, resource: list[str], type_level: bool, instance: bool
) -> dict[str, Any]:
    code = "export"
    ig_name = {"system": "export", "patient": "patient-export", "group": "group-export"}[level]
    our_id = f"{resource[0]}-export" if resource else "export"  # as the CapabilityStatement
    return {
        "resourceType": "OperationDefinition",
        "id": our_id,
        "url": f"https://fhir.sokhoe.vn/OperationDefinition/{our_id}",
        "base": f"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{ig_name}",
        "name": our_id.replace("-", "_").title().replace("_", ""),
        "status": "active",
        "kind": "operation",
        "code": code,
        "resource": resource,
        "system": level == "system",
        "type": type_level,
        "instance": instance,
        "description": "Asynchronous FHIR Bulk Data export (Prefer: respond-async): 202 with "
        "Content-Location of a status URL; the manifest lists NDJSON files.",
        "parameter": [
            {"name": "_outputFormat", "use": "in", "min": 0, "max": "1", "type": "string"},
            {"name": "_since", "use": "in", "min": 0, "max": "1", "type": "instant"},
            {"name": "_type", "use": "in", "min": 0, "max": "*", "type": "string"},
        ],
    }


DEFINITIONS: Final = {
    "system": _definition("system", [], False, False),
    "patient": _definition("patient", ["Patient"], True, False),
    "group": _definition("group", ["Group"], False, True),
}
"""What the three kick-offs take (published beside the handler, as other operations do)."""


def parameters_from_body(body: Any) -> dict[str, list[str]]:
    """A POST kick-off's ``Parameters`` as name -> values (the GET query's shape)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("A POST kick-off takes a Parameters resource")
    found: dict[str, list[str]] = {}
    for i, param in enumerate(body.get("parameter") or []):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise InvalidRequest("Each parameter needs a name", f"Parameters.parameter[{i}]")
        values = [v for k, v in param.items() if k.startswith("value") and isinstance(v, str)]
        if len(values) != 1:
            if param["name"] in UNSUPPORTED:
                values = [""]  # refused below by name, whatever its value type
            else:
                raise InvalidRequest(
                    f"Parameter '{param['name']}' needs one string value",
                    f"Parameters.parameter[{i}]",
                )
        found.setdefault(param["name"], []).append(values[0])
    return found


def parse_kick_off(
    params: Mapping[str, Sequence[str]], kind: Kind, group_id: str | None = None
) -> ExportRequest:
    """Check the kick-off parameters; 400 with an OperationOutcome for anything wrong."""
    for name in params:
        if name in UNSUPPORTED:
            raise NotSupported(
                f"The {name} parameter is not supported by this server; kick off again without it"
            )
        if name not in KNOWN:
            raise InvalidRequest(f"Unknown $export parameter '{name}'", name)
    for fmt in params.get("_outputFormat", []):
        if fmt.strip() not in OUTPUT_FORMATS:
            raise NotSupported(
                f"_outputFormat '{fmt}' is not supported; use application/fhir+ndjson"
            )
    since = None
    if values := params.get("_since"):
        if len(values) > 1:
            raise InvalidRequest("_since may be given once", "_since")
        try:
            since = parse_instant(values[0].strip())
        except ValueError as exc:
            raise InvalidRequest(
                f"_since '{values[0]}' is not a FHIR instant (e.g. 2026-01-01T00:00:00Z)",
                "_since",
            ) from exc
    types: tuple[str, ...] | None = None
    if "_type" in params:
        listed = [t.strip() for v in params["_type"] for t in v.split(",") if t.strip()]
        unknown = [t for t in listed if t not in resource_types()]
        if unknown:
            raise InvalidRequest(f"_type names unknown resource types: {', '.join(unknown)}")
        if not listed:
            raise InvalidRequest("_type is empty", "_type")
        types = tuple(sorted(set(listed)))
    return ExportRequest(kind=kind, types=types, since=since, group_id=group_id)


def authorise_export(guard: GuardedRepository, request: ExportRequest) -> ExportRequest:
    """Refuse callers who may not export and narrow the types to what the caller may read.

    Named types need the read scope each (403 otherwise). Without ``_type``, the export holds
    every type the scopes allow reading, as the specification asks ("all supported resource
    types the client is authorized to access").
    """
    principal = guard.principal
    if principal.kind == "citizen":
        guard.record_refusal("export", [], "citizen")
        raise Forbidden("Citizens cannot run $export; the health book pages show the record")
    if principal.role in REFUSED_ROLES:
        guard.record_refusal("export", [], "role")
        raise Forbidden(f"The {principal.role} role sees aggregates only and cannot $export")
    if request.kind == "group":
        guard.require_scope("Group", "read")
        group_members(guard, request.group_id or "")  # 404 now rather than a failed job
    if request.types is not None:
        for rtype in request.types:
            guard.require_scope(rtype, "read")
        return request
    readable = sorted(t for t in resource_types() if scopes_allow(principal.scopes, t, "read"))
    if not readable:
        guard.require_scope("*", "read")  # audits and raises with the granted scopes
    if len(readable) == len(resource_types()):
        return request
    return ExportRequest(request.kind, tuple(readable), request.since, request.group_id)
