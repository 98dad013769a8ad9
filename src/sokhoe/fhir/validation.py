"""Validate a resource against the R4 structure definitions before anything is written.

``fhir.resources`` (the usual Python choice) ships R5, R4B and STU3 models but not R4, so this
walks the JSON against the official R4 snapshots distilled in ``definitions/types.json.gz``:
known elements only, cardinality, primitive formats (the regular expressions of the R4
datatypes page), choice types (``value[x]``), required value-set bindings, and the resource
types a Reference may point to. Every issue carries the FHIRPath of the offending element, so a
facility's integrator can fix the exact field.

The walk is compiled per element path once (``_children``), because validation sits on the
ingest hot path.
See: https://hl7.org/fhir/R4/validation.html and https://hl7.org/fhir/R4/datatypes.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sokhoe.errors import InvalidResource, Issue
from sokhoe.fhir.definitions import ElementDef, required_value_sets, resource_types, types

MAX_ISSUES = 100
"""Stop collecting after this many issues: a wholly wrong payload needs no 10,000-line answer."""

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE = rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?"

_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "id": r"[A-Za-z0-9\-\.]{1,64}",
        "code": r"[^\s]+( [^\s]+)*",
        "uri": r"\S*",
        "url": r"\S*",
        "canonical": r"\S*",
        "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
        "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "date": _DATE,
        "dateTime": rf"{_DATE}(T{_TIME}{_ZONE})?",
        "instant": rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T{_TIME}{_ZONE}",
        "time": _TIME,
        "base64Binary": r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+",
        "string": r"[\s\S]+",
        "markdown": r"[\s\S]+",
        "xhtml": r"\s*<div[\s\S]*</div>\s*",
    }.items()
}
_INTEGERS = {"integer": -(2**31), "unsignedInt": 0, "positiveInt": 1}
PRIMITIVES = frozenset(_PATTERNS) | frozenset(_INTEGERS) | {"boolean", "decimal"}
_NESTED = frozenset({"BackboneElement", "Element"})
"""Types whose children are listed under the element's own path in the same snapshot."""


@dataclass(frozen=True)
class Child:
    """One JSON property an object may carry: the element it belongs to and its type there."""

    element: ElementDef
    type_code: str
    targets: tuple[str, ...]
    choice: bool


def _capitalised(code: str) -> str:
    return code[0].upper() + code[1:]


@cache
def _elements_by_path() -> dict[str, ElementDef]:
    return {e.path: e for t in types().values() for e in t.elements}


@cache
def _children(path: str) -> dict[str, Child]:
    """The JSON properties allowed in an object described by snapshot ``path``."""
    prefix = path + "."
    out: dict[str, Child] = {}
    owner = path.split(".", 1)[0]
    for e in types()[owner].elements:
        if not e.path.startswith(prefix) or "." in e.path[len(prefix) :]:
            continue
        name = e.path[len(prefix) :]
        if name.endswith("[x]"):
            stem = name[:-3]
            for code, targets in e.types:
                out[stem + _capitalised(code)] = Child(e, code, targets, True)
        else:
            code, targets = e.types[0] if e.types else ("BackboneElement", ())
            out[name] = Child(e, code, targets, False)
    return out


@cache
def _required(path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(element name, JSON names that satisfy it) of every element with ``min >= 1``."""
    needed: dict[str, list[str]] = {}
    for name, child in _children(path).items():
        if child.element.min >= 1:
            base = child.element.path.rsplit(".", 1)[1]
            needed.setdefault(base, []).extend([name, "_" + name])
    return tuple((k, tuple(v)) for k, v in needed.items())


def _target_path(child: Child) -> str | None:
    """The snapshot path describing ``child``'s own children (None for primitives/resources)."""
    if child.element.content_reference:
        return child.element.content_reference.lstrip("#")
    if child.type_code in _NESTED:
        return child.element.path
    if child.type_code in PRIMITIVES or child.type_code == "Resource":
        return None
    return child.type_code


def _fhirpath(where: str, key: str, child: Child) -> str:
    """The FHIRPath of property ``key`` under ``where``: a choice element by its name and type
    (``Observation.value.ofType(Quantity)``), as peers report it."""
    if not child.choice:
        return f"{where}.{key}"
    stem = child.element.path.rsplit(".", 1)[1][:-3]
    return f"{where}.{stem}.ofType({child.type_code})"


class _Validator:
    def __init__(self, targets: dict[str, frozenset[str]] | None = None) -> None:
        self.issues: list[Issue] = []
        self.targets = targets

    def add(self, code: str, message: str, where: str) -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(Issue(code, message, where))

    def resource(self, value: Any, where: str, allowed: tuple[str, ...] = ()) -> None:
        if not isinstance(value, dict):
            self.add("structure", "A resource must be a JSON object", where)
            return
        rtype = value.get("resourceType")
        if not isinstance(rtype, str) or rtype not in resource_types():
            self.add("structure", f"Unknown resourceType '{rtype}'", f"{where}.resourceType")
            return
        if allowed and rtype not in allowed:
            self.add("structure", f"A {rtype} is not allowed here", where)
        self.object(value, rtype, where, is_resource=True)

    def object(self, obj: dict[str, Any], path: str, where: str, is_resource: bool = False) -> None:
        children = _children(path)
        chosen: dict[str, str] = {}
        for key, value in obj.items():
            if is_resource and key == "resourceType":
                continue
            if key.startswith("_"):
                self.primitive_extension(children.get(key[1:]), key, value, obj, where, path)
                continue
            child = children.get(key)
            if child is None:
                self.add("structure", f"Unknown element '{key}' in {path}", f"{where}.{key}")
                continue
            at = _fhirpath(where, key, child)
            if child.choice:
                other = chosen.setdefault(child.element.path, key)
                if other != key:
                    self.add("structure", f"Only one of {other} and {key} may be given", at)
            self.property(child, value, at, is_resource and key == "id", obj.get("_" + key))
        for name, accepted in _required(path):
            if not any(a in obj for a in accepted):
                self.add("required", f"Missing required element '{name}'", f"{where}.{name}")

    def property(
        self, child: Child, value: Any, where: str, resource_id: bool, extensions: Any = None
    ) -> None:
        if value is None:
            self.add("structure", "null is not a value; leave the element out", where)
            return
        repeats = child.element.max != "1"
        if repeats:
            if not isinstance(value, list):
                self.add("structure", "This element repeats: it must be a JSON array", where)
                return
            if not value:
                self.add("structure", "Empty arrays are not allowed; leave the element out", where)
                return
            if child.element.max not in ("*", "0") and len(value) > int(child.element.max):
                self.add("structure", f"At most {child.element.max} allowed", where)
            paired = extensions if isinstance(extensions, list) else []
            for i, item in enumerate(value):
                if item is None and i < len(paired) and isinstance(paired[i], dict):
                    continue  # a null filler: this repetition has only its extension
                if item is None:
                    self.add(
                        "structure",
                        "null is allowed in a repeating primitive only where the '_' array "
                        "gives that repetition's extension",
                        f"{where}[{i}]",
                    )
                    continue
                self.value(child, item, f"{where}[{i}]", resource_id)
        elif isinstance(value, list):
            self.add("structure", "This element does not repeat: it must not be an array", where)
        else:
            self.value(child, value, where, resource_id)

    def value(self, child: Child, value: Any, where: str, resource_id: bool) -> None:
        code = child.type_code
        if code in PRIMITIVES:
            problem = primitive_problem("id" if resource_id else code, value)
            if problem:
                self.add("value", problem, where)
            elif child.element.binding and isinstance(value, str):
                self.binding(child.element.binding, [(None, value)], where)
            return
        if code == "Resource":
            self.resource(value, where)
            return
        if not isinstance(value, dict):
            self.add("structure", f"Expected a {code} object", where)
            return
        if not value:
            self.add("structure", "Empty objects are not allowed; leave the element out", where)
            return
        target = _target_path(child)
        if target is not None:
            self.object(value, target, where)
        if child.element.binding:
            codings = _codings(code, value)
            if codings is not None:
                self.binding(child.element.binding, codings, where)
        if code == "Reference" and child.targets:
            self.reference_target(value, child.targets, where)

    def primitive_extension(
        self,
        child: Child | None,
        key: str,
        value: Any,
        owner: dict[str, Any],
        where: str,
        path: str,
    ) -> None:
        """``_x``: the id and extensions of the primitive ``x`` (an object; for a repeating
        primitive an array as long as ``x``'s, ``null`` where a repetition has none).
        See: https://hl7.org/fhir/R4/json.html#primitive"""
        name = key[1:]
        if child is None:
            self.add("structure", f"Unknown element '{key}' in {path}", f"{where}.{key}")
            return
        at = _fhirpath(where, name, child)
        if child.type_code not in PRIMITIVES:
            self.add(
                "structure",
                f"'{key}' is allowed only beside a primitive element; {name} is a "
                f"{child.type_code}: put its extensions inside it",
                at,
            )
            return
        if child.element.max == "1":
            if isinstance(value, list):
                self.add("structure", f"'{key}' must be an object, as {name} does not repeat", at)
            else:
                self.extension_holder(value, at)
            return
        if not isinstance(value, list):
            self.add("structure", f"'{key}' must be an array, as {name} repeats", at)
            return
        if not value:
            self.add("structure", "Empty arrays are not allowed; leave the element out", at)
            return
        values = owner.get(name)
        if isinstance(values, list) and len(values) != len(value):
            self.add(
                "structure",
                f"'{key}' must have as many items as '{name}' ({len(value)} for {len(values)})",
                at,
            )
        for i, item in enumerate(value):
            if item is None:  # (a null value beside it is reported with the value)
                if not isinstance(values, list) or i >= len(values):
                    self.add(
                        "structure", f"Item {i} has neither a value nor an extension", f"{at}[{i}]"
                    )
                continue
            self.extension_holder(item, f"{at}[{i}]")

    def extension_holder(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            self.add("structure", "A primitive's extension holder must be an object", where)
            return
        if not item:
            self.add("structure", "Empty objects are not allowed; leave the element out", where)
            return
        for key in item:
            if key not in ("id", "extension"):
                self.add(
                    "structure",
                    f"Unknown element '{key}' beside a primitive (only id and extension)",
                    f"{where}.{key}",
                )
        self.object({k: v for k, v in item.items() if k in ("id", "extension")}, "string", where)

    def binding(self, url: str, codings: list[tuple[str | None, str]], where: str) -> None:
        allowed = required_value_sets().get(url.split("|", 1)[0])
        if allowed is None or not codings:
            return
        codes = {c for _, c in allowed}
        for system, code in codings:
            if (system, code) in allowed or (system is None and code in codes):
                return
        shown = ", ".join(f"{s}|{c}" if s else c for s, c in codings)
        self.add("code-invalid", f"'{shown}' is not in the required value set {url}", where)

    def reference_target(self, ref: dict[str, Any], targets: tuple[str, ...], where: str) -> None:
        text = ref.get("reference")
        if not isinstance(text, str) or "Resource" in targets:
            return
        if self.targets is not None:
            held = self.targets.get(text)
            self.targets[text] = frozenset(targets) if held is None else held & set(targets)
        rtype = reference_type(text)
        if rtype is not None and rtype not in targets:
            self.add(
                "structure",
                f"A reference to {rtype} is not allowed here (allowed: {', '.join(targets)})",
                f"{where}.reference",
            )


def reference_type(text: str) -> str | None:
    """The resource type named by a literal reference (``Patient/1``, ``http://x/fhir/Patient/1``,
    ``Patient?identifier=...``); None for ``urn:``, ``#contained`` and unparsable ones."""
    if text.startswith(("urn:", "#")):
        return None
    path = text.split("?", 1)[0]
    parts = path.split("/")
    if "?" in text and len(parts) >= 1 and parts[-1] in resource_types():
        return parts[-1]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] in resource_types():
        return parts[-2]
    return None


def _codings(code: str, value: dict[str, Any]) -> list[tuple[str | None, str]] | None:
    """The (system, code) pairs a bound Coding/CodeableConcept/Quantity carries."""
    if code == "CodeableConcept":
        items = value.get("coding") or []
    elif code in ("Coding", "Quantity"):
        items = [value]
    else:
        return None
    return [
        (c.get("system"), c["code"])
        for c in items
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


def _check_int(code: str, value: Any) -> str | None:
    if type(value) is not int:
        return f"Expected a JSON integer ({code}), got {type(value).__name__} {value!r}"
    if not _INTEGERS[code] <= value <= 2**31 - 1:
        return f"{value} is out of range for {code}"
    return None


_CHECKS: dict[str, Callable[[str, Any], str | None]] = {
    **dict.fromkeys(_INTEGERS, _check_int),
    "boolean": lambda c, v: None if type(v) is bool else f"Expected true or false, got {v!r}",
    "decimal": lambda c, v: (
        None if type(v) in (int, float) else f"Expected a JSON number, got {type(v).__name__} {v!r}"
    ),
}


def primitive_problem(code: str, value: Any) -> str | None:
    """Why ``value`` is not a valid JSON form of FHIR primitive ``code``, or None."""
    check = _CHECKS.get(code)
    if check is not None:
        return check(code, value)
    if not isinstance(value, str):
        return f"Expected a string ({code}), got {type(value).__name__} {value!r}"
    if value == "":  # whatever the type's pattern allows (uri's does): JSON forbids it
        return "Empty strings are not allowed; leave the element out"
    if not _PATTERNS[code].fullmatch(value):
        return f"'{value[:80]}' is not a valid {code}"
    if code in ("date", "dateTime", "instant") and len(value) >= 10:
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            return f"'{value}' is not a real calendar date"
    return None


def find_issues(resource: Any, targets: dict[str, frozenset[str]] | None = None) -> list[Issue]:
    """Every structural problem of ``resource`` (empty when it is valid R4).

    ``targets``, when given, receives each literal reference's text with the resource types
    every place it appears in allows: a bundle's writer that rewrites ``urn:uuid:`` and
    conditional references after this check re-checks only the new references' types.
    """
    validator = _Validator(targets)
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    validator.resource(resource, rtype if isinstance(rtype, str) else "Resource")
    return validator.issues


def validate_resource(resource: Any) -> dict[str, Any]:
    """Return ``resource`` if valid, else raise :class:`InvalidResource` with every issue."""
    issues = find_issues(resource)
    if issues:
        raise InvalidResource(issues)
    return dict(resource)
