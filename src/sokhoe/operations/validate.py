"""``$validate``: would this resource be accepted? The same checks as every write, nothing
stored.

Hospital vendors check their output before they send it; the answer must be the one a real
create or update would give, so this runs the validator and the platform rules of every write
(``fhir/validation.py``, ``fhir/profiles.py``) and adds what the requested ``mode`` implies: an
update needs the id (the one in the URL at instance level), a delete needs the resource to
exist. The resource comes directly as the body or as the ``resource`` parameter of a
``Parameters``; ``mode`` and ``profile`` as parameters or in the query.

The answer is always an ``OperationOutcome`` with 200, valid or not (errors are issues of
severity ``error``); a 4xx means the validation could not be performed (no resource given, a
mode that makes no sense at that level, an unknown type).
See: https://hl7.org/fhir/R4/resource-operation-validate.html
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sokhoe.errors import InvalidRequest, Issue, NotFound, operation_outcome
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.parameters import parameters_by_name
from sokhoe.fhir.profiles import conformance_issues, profile_issues
from sokhoe.fhir.validation import find_issues

MODES: Final = ("create", "update", "delete", "profile")
CORE_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/"

DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "Resource-validate",
    "url": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "name": "Validate",
    "status": "active",
    "kind": "operation",
    "code": "validate",
    "resource": ["Resource"],
    "system": True,
    "type": True,
    "instance": True,
    "parameter": [
        {"name": "resource", "use": "in", "min": 0, "max": "1", "type": "Resource"},
        {"name": "mode", "use": "in", "min": 0, "max": "1", "type": "code"},
        {"name": "profile", "use": "in", "min": 0, "max": "1", "type": "uri"},
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "OperationOutcome"},
    ],
}
"""The R4 definition of ``$validate`` (what a CapabilityStatement points to)."""


@dataclass(frozen=True)
class Request:
    """What to validate: the resource (None for a delete), the mode and profile asked."""

    resource: dict[str, Any] | None
    mode: str | None
    profile: str | None


def _wrapped(body: dict[str, Any]) -> bool:
    """Whether a ``Parameters`` body carries the input (rather than being the resource to
    validate): it names one of the operation's parameters."""
    raw = body.get("parameter")
    names = {p.get("name") for p in raw if isinstance(p, dict)} if isinstance(raw, list) else set()
    return body.get("resourceType") == "Parameters" and bool(
        names & {"resource", "mode", "profile"}
    )


def _value(entry: dict[str, Any], name: str, kinds: tuple[str, ...]) -> str:
    for kind in kinds:
        value = entry.get(f"value{kind}")
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise InvalidRequest(
        f"Parameter '{name}' needs a value of type {' or '.join(k.lower() for k in kinds)}",
        f"Parameters.parameter.where(name = '{name}')",
    )


def parse(body: Any, query: dict[str, str]) -> Request:
    """The input from the body (resource or Parameters) and the query's ``mode``/``profile``;
    :class:`InvalidRequest` when it is neither."""
    mode, profile = query.get("mode"), query.get("profile")
    resource: dict[str, Any] | None = None
    if body is None:
        pass
    elif not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise InvalidRequest("The body must be a FHIR resource, or a Parameters with 'resource'")
    elif _wrapped(body):
        params = parameters_by_name(body)
        for name in ("resource", "mode", "profile"):
            if len(params.get(name, [])) > 1:
                raise InvalidRequest(f"Parameter '{name}' is given more than once", name)
        if params.get("resource"):
            found = params["resource"][0].get("resource")
            if not isinstance(found, dict):
                raise InvalidRequest(
                    "Parameter 'resource' must hold a resource (its 'resource' element)",
                    "Parameters.parameter.where(name = 'resource')",
                )
            resource = found
        if params.get("mode"):
            mode = _value(params["mode"][0], "mode", ("Code", "String"))
        if params.get("profile"):
            profile = _value(params["profile"][0], "profile", ("Uri", "Canonical", "String"))
    else:
        resource = body
    if mode is not None and mode not in MODES:
        raise InvalidRequest(f"Unknown mode '{mode}'; one of {', '.join(MODES)}", "mode")
    return Request(resource, mode, profile)


def _known_profile(url: str, rtype: str) -> bool:
    """Profiles this server validates against: the core definition of the type, and the
    platform's own (``sokhoe.ig``: a profile of another type is reported by the checker)."""
    from sokhoe.ig.profiles import known

    bare = url.split("|", 1)[0]
    return bare == f"{CORE_PROFILE}{rtype}" or known(bare) is not None


def validate(
    asked: Request,
    resource_type: str | None,
    rid: str | None,
    exists: Callable[[str, str], bool],
) -> dict[str, Any]:
    """The OperationOutcome of validating ``asked`` at the system level (``resource_type``
    None), type level, or instance level (``rid``). ``exists(type, id)`` says whether the
    caller may see that resource (through the door: it refuses or answers False)."""
    if resource_type is not None and resource_type not in resource_types():
        raise NotFound(f"Unknown resource type '{resource_type}'")
    mode = asked.mode
    if mode in ("update", "delete") and rid is None:
        raise InvalidRequest(
            f"mode '{mode}' validates a change to one resource: call "
            f"{resource_type or '[type]'}/[id]/$validate",
            "mode",
        )
    if asked.resource is None:
        if mode != "delete":
            raise InvalidRequest(
                "Give the resource to validate: the body, or a Parameters with 'resource'",
                "resource",
            )
        target = f"{resource_type}/{rid}"
        if not exists(str(resource_type), str(rid)):
            return operation_outcome([Issue("not-found", f"{target} does not exist")])
        return _ok([])
    resource = copy.deepcopy(asked.resource)
    rtype = str(resource.get("resourceType"))
    issues: list[Issue] = []
    if resource_type is not None and rtype != resource_type:
        issues.append(
            Issue(
                "invalid",
                f"resourceType '{rtype}' does not match the URL type '{resource_type}'",
                "resourceType",
            )
        )
    issues += find_issues(resource)
    issues += [i for i in profile_issues(resource) if i not in issues]
    if mode == "update" or (rid is not None and mode is None):
        issues += _update_issues(resource, rtype, rid)
    if mode == "delete" and rid is not None and not exists(rtype, rid):
        issues.append(Issue("not-found", f"{rtype}/{rid} does not exist"))
    issues += [i for i in conformance_issues(resource, asked.profile) if i not in issues]
    issues += _profile_issues(resource, rtype, asked.profile)
    return _ok(issues)


def _update_issues(resource: dict[str, Any], rtype: str, rid: str | None) -> list[Issue]:
    """An update names the resource it replaces: its id, equal to the URL's."""
    found = resource.get("id")
    if not isinstance(found, str) or not found:
        return [Issue("required", "An update needs the resource's id", f"{rtype}.id")]
    if rid is not None and found != rid:
        return [
            Issue(
                "invalid", f"The resource's id '{found}' is not the URL's id '{rid}'", f"{rtype}.id"
            )
        ]
    return []


def _profile_issues(resource: dict[str, Any], rtype: str, asked: str | None) -> list[Issue]:
    """An explicit profile the server does not know is an error (nothing was checked against
    it); one claimed in ``meta.profile`` is a warning (the base specification was checked)."""
    issues = []
    if asked is not None and not _known_profile(asked, rtype):
        issues.append(
            Issue(
                "not-supported",
                f"Profile '{asked}' is not known to this server; the resource was not "
                "validated against it",
                "profile",
            )
        )
    claimed = (
        (resource.get("meta") or {}).get("profile")
        if isinstance(resource.get("meta"), dict)
        else None
    )
    for i, url in enumerate(claimed if isinstance(claimed, list) else []):
        if isinstance(url, str) and not _known_profile(url, rtype) and url != asked:
            issues.append(
                Issue(
                    "not-supported",
                    f"Profile '{url}' is not known to this server: validated against the base "
                    "R4 specification only",
                    f"{rtype}.meta.profile[{i}]",
                    severity="warning",
                )
            )
    return issues


def _ok(issues: list[Issue]) -> dict[str, Any]:
    """The outcome; one informational issue when there is nothing to say (an OperationOutcome
    needs at least one issue)."""
    if not issues:
        issues = [
            Issue("informational", "No issues detected during validation", severity="information")
        ]
    return operation_outcome(issues)


__all__ = ["DEFINITION", "MODES", "Request", "parse", "validate"]
