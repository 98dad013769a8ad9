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
from dataclasses import dataclass
from typing import Any, Final

from sokhoe.errors import Issue
from sokhoe.messages import message_of
from sokhoe.mpi import identifiers as ids
from sokhoe.registry.sensitivity import add_labels, label_sensitive
from sokhoe.registry.terminology import diagnosis_issues

_NORMALISERS: dict[str, Callable[[str], str]] = {
    ids.CCCD: ids.validate_cccd,
    ids.CMND: ids.validate_cmnd,
    ids.BHYT: ids.validate_bhyt,
    ids.BHXH: ids.validate_bhxh,
    ids.FACILITY: ids.validate_facility_code,
}
"""Identifier system -> function returning the canonical value or raising ValueError."""


def _normalise_identifiers(resource: dict[str, Any]) -> tuple[list[Issue], list[tuple[int, str]]]:
    """Normalise the resource's own identifiers of known systems in place: the issues of invalid
    ones, and ``(position, canonical value)`` of each whose value changed."""
    issues: list[Issue] = []
    changed: list[tuple[int, str]] = []
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
            canonical = check(value)
        except ValueError as exc:
            issues.append(Issue.of("value", message_of(exc), f"{rtype}.identifier[{i}].value"))
            continue
        if canonical != value:
            ident["value"] = canonical
            changed.append((i, canonical))
    return issues, changed


def claimed_profiles(resource: dict[str, Any]) -> list[str]:
    """The canonical URLs in ``meta.profile`` (none when absent or malformed)."""
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    return [u for u in claimed if isinstance(u, str)] if isinstance(claimed, list) else []


def conformance_issues(resource: dict[str, Any], asked: str | None = None) -> list[Issue]:
    """Issues (errors and warnings) of ``resource`` against each profile of the platform it
    claims in ``meta.profile``, and ``asked`` (``$validate?profile=``) when that is one of
    ours. A profile of another resource type is an error; a profile the server does not know
    is left to the caller (a warning in ``$validate``, as HAPI says it).
    See: https://hl7.org/fhir/R4/validation.html#profile
    """
    urls = claimed_profiles(resource)
    if asked is not None:
        urls.append(asked)
    if not urls:
        return []
    from sokhoe.ig.check import check
    from sokhoe.ig.profiles import known

    rtype = resource.get("resourceType")
    bare = [u.split("|", 1)[0] for u in urls]
    issues: list[Issue] = []
    for url in dict.fromkeys(bare):
        sd = known(url)
        if sd is None or sd["kind"] != "resource":
            continue
        if sd["type"] != rtype:
            at = bare.index(url)
            where = f"{rtype}.meta.profile[{at}]" if at < len(urls) - (asked is not None) else None
            issues.append(
                Issue(
                    "invalid",
                    f"Profile '{url}' is for {sd['type']}, not {rtype}",
                    where or "profile",
                )
            )
            continue
        issues += [i for i in check(resource, url) if i not in issues]
    return issues


@dataclass(frozen=True, slots=True)
class Normalised:
    """The in-place changes the platform rules made to a resource, so that a bulk loader's
    writer can make them on its own copy of what a worker process checked, without running
    the rules again (``fhir.precheck``)."""

    identifiers: tuple[tuple[int, str], ...] = ()
    """``(position in identifier, canonical value)`` of each identifier value rewritten."""
    labels: tuple[str, ...] = ()
    """The sensitive categories added to ``meta.security``."""

    def apply(self, resource: dict[str, Any]) -> None:
        found = resource.get("identifier")
        for i, value in self.identifiers:
            if isinstance(found, list) and i < len(found) and isinstance(found[i], dict):
                found[i] = {**found[i], "value": value}
        add_labels(resource, self.labels)


UNCHANGED: Final = Normalised()


def platform_rules(resource: dict[str, Any]) -> tuple[list[Issue], Normalised]:
    """Every platform rule, and the errors against the platform's profiles the resource claims;
    normalises and labels in place what it can (call before indexing), and says what it
    changed."""
    issues, changed = _normalise_identifiers(resource)
    issues += diagnosis_issues(resource)
    issues += [i for i in conformance_issues(resource) if i.severity == "error"]
    labels: set[str] = set() if issues else label_sensitive(resource)
    return issues, Normalised(tuple(changed), tuple(sorted(labels)))


def profile_issues(resource: dict[str, Any]) -> list[Issue]:
    """:func:`platform_rules`' issues."""
    return platform_rules(resource)[0]
