"""Check a resource against one of the platform's profiles, reading the profile's snapshot.

What a profile adds to the base specification, and only that (the base validator has checked
the rest): cardinalities the profile changed, slices (which item belongs to which slice, and
how many each may have), fixed and pattern values, the types an extension's value may take,
required and extensible bindings to the platform's own value sets, and the profile's FHIRPath
constraints, evaluated with fhirpathpy. Issue locations are FHIRPath, as HAPI writes them:
``Patient.identifier[0].value``, ``Extension.value.ofType(Coding)``.

Used by every write (``fhir/profiles.py``) and by ``$validate``: one checker for both.
See: https://hl7.org/fhir/R4/validation.html#profile and
https://hl7.org/fhir/R4/profiling.html#slicing
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import fhirpathpy

from sokhoe.errors import Issue
from sokhoe.ig.profiles import known


@dataclass
class _Profile:
    """A snapshot indexed for walking: elements by id, direct children, slices."""

    url: str
    elements: dict[str, dict[str, Any]]
    children: dict[str, list[str]] = field(default_factory=dict)
    slices: dict[str, list[str]] = field(default_factory=dict)
    relevant: set[str] = field(default_factory=set)
    """Elements the profile changed (its differential), their slices and their ancestors: the
    only ones worth walking into (the base validator checked the rest)."""


@cache
def _indexed(url: str) -> _Profile | None:
    sd = known(url)
    if sd is None:
        return None
    elements = {e["id"]: e for e in sd["snapshot"]["element"]}
    profile = _Profile(sd["url"], elements)
    for eid in elements:
        parent, _, last = eid.rpartition(".")
        if ":" in last:
            profile.slices.setdefault(f"{parent}.{last.split(':', 1)[0]}", []).append(eid)
        elif parent:
            profile.children.setdefault(parent, []).append(eid)
    for change in sd["differential"]["element"]:
        eid = change["id"]
        while eid:
            profile.relevant.add(eid)
            parent, _, last = eid.rpartition(".")
            if ":" in last:  # a slice: its sliced element is walked too
                profile.relevant.add(f"{parent}.{last.split(':', 1)[0]}")
            eid = parent
    return profile


@cache
def _compiled(expression: str) -> Callable[..., list[Any]]:
    return fhirpathpy.compile(expression)


def check(resource: dict[str, Any], url: str) -> list[Issue]:
    """Issues of ``resource`` against the profile at ``url`` (which must be :func:`known`)."""
    profile = _indexed(url.split("|", 1)[0])
    if profile is None:
        raise KeyError(url)
    root = next(iter(profile.elements))
    issues: list[Issue] = []
    _visit(profile, root, resource, str(resource.get("resourceType", root)), issues)
    return issues


def _visit(p: _Profile, eid: str, node: Any, loc: str, issues: list[Issue]) -> None:
    elem = p.elements[eid]
    _values(elem, node, loc, issues)
    for constraint in elem.get("constraint", []):
        if constraint.get("source") == p.url and not _holds(constraint["expression"], node):
            issues.append(
                Issue(
                    "invariant",
                    f"Constraint failed: {constraint['key']}: {constraint['human']}",
                    loc,
                    "warning" if constraint.get("severity") == "warning" else "error",
                )
            )
    for type_ in elem.get("type", []):
        for ext_url in type_.get("profile", []) if type_.get("code") == "Extension" else []:
            if _indexed(ext_url) is not None and isinstance(node, dict):
                issues.extend(_rerooted(check(node, ext_url), loc))
    if not isinstance(node, dict):
        return
    for child in p.children.get(eid, []):
        if child not in p.relevant:
            continue
        name = child.rsplit(".", 1)[1]
        for key, shown, items in _instances(node, name):
            _children(p, child, key, shown, items, loc, issues)


def _instances(node: dict[str, Any], name: str) -> list[tuple[str, str, list[Any]]]:
    """(JSON key, FHIRPath name, items) of element ``name`` in ``node``: one per present type
    of a choice element."""
    if not name.endswith("[x]"):
        found = node.get(name)
        return [
            (name, name, [] if found is None else found if isinstance(found, list) else [found])
        ]
    stem = name[:-3]
    out = []
    for key, value in node.items():
        if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
            out.append((key, f"{stem}.ofType({key[len(stem) :]})", [value]))
    return out or [(stem, stem, [])]


def _children(
    p: _Profile,
    cid: str,
    key: str,
    shown: str,
    items: list[Any],
    loc: str,
    issues: list[Issue],
) -> None:
    elem = p.elements[cid]
    repeats = elem.get("base", {}).get("max", elem.get("max")) != "1"
    places = [f"{loc}.{shown}[{i}]" if repeats else f"{loc}.{shown}" for i in range(len(items))]
    if shown != key and not _type_allowed(elem, key):
        issues.append(Issue("structure", f"The type of {key} is not allowed here", places[0]))
        return
    changed = elem.get("base") is None or (elem["min"], elem["max"]) != (
        elem["base"]["min"],
        elem["base"]["max"],
    )
    if changed:
        _cardinality(cid, elem, items, places, loc, shown, issues)
    slices = p.slices.get(cid, []) if "slicing" in elem else []
    members: dict[str, list[int]] = {s: [] for s in slices}
    for i, item in enumerate(items):
        slice_id = next((s for s in slices if _matches(p, elem, s, item)), None)
        if slice_id is not None:
            members[slice_id].append(i)
        _visit(p, slice_id or cid, item, places[i], issues)
    for slice_id, found in members.items():
        s = p.elements[slice_id]
        _cardinality(
            slice_id, s, [items[i] for i in found], [places[i] for i in found], loc, shown, issues
        )


def _cardinality(
    eid: str,
    elem: dict[str, Any],
    items: list[Any],
    places: list[str],
    loc: str,
    shown: str,
    issues: list[Issue],
) -> None:
    low, high = int(elem.get("min", 0)), str(elem.get("max", "*"))
    what = f"slice '{elem['sliceName']}' of {shown}" if "sliceName" in elem else shown
    if len(items) < low:
        issues.append(
            Issue("required", f"{eid}: minimum required = {low}, but only found {len(items)}", loc)
        )
    if high != "*" and len(items) > int(high):
        issues.append(
            Issue(
                "structure",
                f"{eid}: {what} allows at most {high}, but found {len(items)}",
                places[int(high)],
            )
        )


def _type_allowed(elem: dict[str, Any], key: str) -> bool:
    allowed = {str(t.get("code", "")).lower() for t in elem.get("type", [])}
    stem = elem["path"].rsplit(".", 1)[1][:-3]
    return key[len(stem) :].lower() in allowed


def _matches(p: _Profile, sliced: dict[str, Any], slice_id: str, item: Any) -> bool:
    """Whether ``item`` belongs to the slice, by the slicing's discriminators."""
    entry = p.elements[slice_id]
    for disc in sliced["slicing"].get("discriminator", []):
        path = disc["path"]
        if disc["type"] == "pattern" and path == "$this":
            pattern = _prefixed(entry, "pattern")
            if pattern is None or not _contains(item, pattern):
                return False
        elif disc["type"] == "value" and path == "url":
            profiles = [u for t in entry.get("type", []) for u in t.get("profile", [])]
            if not isinstance(item, dict) or item.get("url") not in profiles:
                return False
        elif disc["type"] == "value":
            child = p.elements.get(f"{slice_id}.{path}", {})
            wanted = _prefixed(child, "fixed")
            if wanted is None:
                wanted = _prefixed(child, "pattern")
            if not isinstance(item, dict) or wanted is None or item.get(path) != wanted:
                return False
        else:
            return False
    return True


def _prefixed(elem: dict[str, Any], prefix: str) -> Any:
    """The value of ``fixed[x]`` or ``pattern[x]``, whatever its type."""
    return next((v for k, v in elem.items() if k.startswith(prefix) and k[len(prefix) :]), None)


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every element of the pattern is in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _contains(value.get(k), v) for k, v in pattern.items()
        )
    if isinstance(pattern, list):
        found = value if isinstance(value, list) else []
        return all(any(_contains(v, p) for v in found) for p in pattern)
    return bool(value == pattern)


def _values(elem: dict[str, Any], node: Any, loc: str, issues: list[Issue]) -> None:
    """Fixed and pattern values, and bindings to the platform's value sets."""
    fixed = _prefixed(elem, "fixed")
    if fixed is not None and node != fixed:
        issues.append(Issue("value", f"Value must be exactly {fixed!r}", loc))
    pattern = _prefixed(elem, "pattern")
    if pattern is not None and not _contains(node, pattern):
        issues.append(Issue("value", f"Value does not match the pattern {pattern!r}", loc))
    binding = elem.get("binding") or {}
    if binding.get("strength") in ("required", "extensible"):
        _binding(binding, node, loc, issues)


def _binding(binding: dict[str, Any], node: Any, loc: str, issues: list[Issue]) -> None:
    from sokhoe.ig.terminology import value_set_codes

    codes = value_set_codes().get(str(binding.get("valueSet", "")).split("|", 1)[0])
    if codes is None or not isinstance(node, (str, dict)):
        return  # a value of the wrong shape: the base validator reports it
    systems = {s for s, _ in codes}
    if isinstance(node, str):
        good = any((s, node) in codes for s in systems)
        own = [node]
    else:
        codings = node.get("coding", []) if "coding" in node or "text" in node else [node]
        pairs = [(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)]
        own = [str(code) for system, code in pairs if system in systems]
        good = any(pair in codes for pair in pairs)
        if binding["strength"] == "extensible" and not own:
            return  # another system, or text alone: what extensible allows
    if not good:
        issues.append(
            Issue(
                "code-invalid",
                f"The code {', '.join(map(str, own)) or '(none)'} is not in the value set "
                f"{binding['valueSet']} ({binding['strength']} binding)",
                loc,
            )
        )


_MATCHES = re.compile(r"matches\('((?:[^'\\]|\\.)*)'\)")


@cache
def _regex(expression: str) -> re.Pattern[str] | None:
    """The regular expression of a constraint that is one ``matches('…')`` call, else None."""
    found = _MATCHES.fullmatch(expression)
    return re.compile(found.group(1)) if found else None


def _holds(expression: str, node: Any) -> bool:
    """Whether the constraint holds on ``node``. A lone ``matches('…')`` on a string is
    evaluated as the regular expression it is (FHIRPath ``matches`` searches the string: the
    profiles anchor theirs); anything else by fhirpathpy, a hundred times slower."""
    regex = _regex(expression)
    if regex is not None and isinstance(node, str):
        return regex.search(node) is not None
    try:
        result = _compiled(expression)(node)
    except Exception:  # an expression fhirpathpy cannot evaluate on this node
        return False
    return result == [True]


def _rerooted(issues: list[Issue], loc: str) -> list[Issue]:
    """Issues of an extension checked on its own (``Extension.value…``) placed where it is."""
    return [
        Issue(
            i.code,
            i.diagnostics,
            loc + (i.expression or "Extension").removeprefix("Extension"),
            i.severity,
        )
        for i in issues
    ]
