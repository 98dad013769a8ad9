"""Derive a profile's snapshot from its base snapshot and its differential.

Published FHIR packages carry snapshots: a validator reads the complete list of elements
(every element of the base, with the profile's changes applied) instead of deriving it. The
derivation here covers what the Vietnam core profiles use: changing an element (cardinality,
short text, pattern, fixed value, binding, allowed types), adding constraints, slicing an
element and defining slices, and constraining the children of a complex type (the
``system``/``value`` of an identifier slice, the extensions of an address), whose elements are
copied from the type's own definition with their ids and paths rewritten. Element ids follow
the R4 rules (``Patient.identifier:cccd.value``).
See: https://hl7.org/fhir/R4/profiling.html#snapshot and
https://hl7.org/fhir/R4/elementdefinition.html#id
"""

from __future__ import annotations

import copy
import re
from typing import Any

from sokhoe.ig.base import base_elements

_SLICE = re.compile(r":[^.]+")


def path_of(element_id: str) -> str:
    """The element path of an element id (slice names dropped)."""
    return _SLICE.sub("", element_id)


def _index(elements: list[dict[str, Any]], element_id: str) -> int | None:
    return next((i for i, e in enumerate(elements) if e["id"] == element_id), None)


def _last_descendant(elements: list[dict[str, Any]], element_id: str) -> int:
    """Index of the last element that is ``element_id``, one of its children or its slices."""
    last = -1
    for i, e in enumerate(elements):
        eid = e["id"]
        if eid == element_id or eid.startswith((f"{element_id}.", f"{element_id}:")):
            last = i
    return last


def _expand(elements: list[dict[str, Any]], at: int) -> None:
    """Insert the children of a complex-typed element from its type's definition."""
    parent = elements[at]
    types = parent.get("type") or []
    if len(types) != 1:
        raise ValueError(f"{parent['id']}: cannot expand an element of {len(types)} types")
    children = base_elements(types[0]["code"])[1:]
    type_name = types[0]["code"]
    for child in children:
        child["id"] = parent["id"] + child["id"][len(type_name) :]
        child["path"] = parent["path"] + child["path"][len(type_name) :]
    elements[at + 1 : at + 1] = children


def _ensure(elements: list[dict[str, Any]], element_id: str) -> int:
    """The index of ``element_id``, creating the slice or expanding the type it lies in."""
    found = _index(elements, element_id)
    if found is not None:
        return found
    parent_id, _, last = element_id.rpartition(".")
    if not parent_id:
        raise ValueError(f"{element_id}: not an element of the base")
    if ":" in last:
        name, slice_name = last.split(":", 1)
        sliced_id = f"{parent_id}.{name}"
        sliced = elements[_ensure(elements, sliced_id)]
        entry = copy.deepcopy(sliced)
        entry.pop("slicing", None)
        entry["id"], entry["sliceName"] = element_id, slice_name
        at = _last_descendant(elements, sliced_id) + 1
        elements.insert(at, entry)
        return at
    parent_at = _ensure(elements, parent_id)
    if not any(e["id"].startswith(f"{parent_id}.") for e in elements):
        _expand(elements, parent_at)
    found = _index(elements, element_id)
    if found is None:
        raise ValueError(f"{element_id}: not an element of {parent_id}")
    return found


def _apply(target: dict[str, Any], change: dict[str, Any], source: str) -> None:
    for key, value in change.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            target["constraint"] = [
                *target.get("constraint", []),
                *({**c, "source": source} for c in value),
            ]
        else:
            target[key] = copy.deepcopy(value)


def _slice_name(element_id: str) -> dict[str, str]:
    """``sliceName`` of a slice's entry (its id ends with ``:name``), as the differential must
    say it too: a validator regenerating the snapshot reads slices from the differential."""
    last = element_id.rsplit(".", 1)[-1]
    return {"sliceName": last.split(":", 1)[1]} if ":" in last else {}


def derive(
    base_type: str, differential: list[dict[str, Any]], url: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(snapshot, differential) of a profile of ``base_type`` whose changes are
    ``differential`` (elements by ``id``, in any order); the returned differential carries
    paths and is in snapshot order, as the specification requires."""
    elements = base_elements(base_type)
    for change in differential:
        _apply(elements[_ensure(elements, change["id"])], change, url)
    order = {e["id"]: i for i, e in enumerate(elements)}
    diff = sorted(
        (
            {"id": c["id"], "path": path_of(c["id"]), **_slice_name(c["id"]), **c}
            for c in differential
        ),
        key=lambda c: order[c["id"]],
    )
    for c in diff:
        for constraint in c.get("constraint", []):
            constraint.setdefault("source", url)
    return elements, diff
