"""The platform's rules on top of R4: Vietnamese identifiers and coded diagnoses.

R4 accepts any string as an identifier value; the record must not. A CCCD with a space typed
in the middle, a BHYT number in lower case, or an ICD-10 code that does not exist would each
make the same person or disease look like two. Known identifier systems are normalised in
place (so the stored and indexed value is the canonical one) and refused when their structure
is wrong, with the path of the offending element. Sensitive codes (mental health, HIV,
sexual and reproductive health) label the resource in ``meta.security`` so a patient's
restriction of those categories covers it without anyone remembering to tick a box.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sokhoe.errors import Issue
from sokhoe.messages import message_of
from sokhoe.mpi import identifiers as ids
from sokhoe.registry.sensitivity import label_sensitive
from sokhoe.registry.terminology import diagnosis_issues

_NORMALISERS: dict[str, Callable[[str], str]] = {
    ids.CCCD: ids.validate_cccd,
    ids.CMND: ids.validate_cmnd,
    ids.BHYT: ids.validate_bhyt,
    ids.BHXH: ids.validate_bhxh,
    ids.FACILITY: ids.validate_facility_code,
}
"""Identifier system -> function returning the canonical value or raising ValueError."""


def identifier_issues(resource: dict[str, Any]) -> list[Issue]:
    """Normalise the resource's own identifiers of known systems; issues for invalid ones."""
    issues: list[Issue] = []
    rtype = resource.get("resourceType", "Resource")
    found = resource.get("identifier")
    for i, ident in enumerate(found if isinstance(found, list) else []):
        if not isinstance(ident, dict):
            continue
        check = _NORMALISERS.get(ident.get("system", ""))
        value = ident.get("value")
        if check is None or not isinstance(value, str):
            continue
        try:
            ident["value"] = check(value)
        except ValueError as exc:
            issues.append(Issue.of("value", message_of(exc), f"{rtype}.identifier[{i}].value"))
    return issues


def profile_issues(resource: dict[str, Any]) -> list[Issue]:
    """Every platform rule; normalises and labels in place what it can (call before
    indexing)."""
    issues = identifier_issues(resource) + diagnosis_issues(resource)
    if not issues:
        label_sensitive(resource)
    return issues
