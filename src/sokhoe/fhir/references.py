"""Finding the references inside a resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_references(node: Any) -> Iterator[dict[str, Any]]:
    """Every object with a string ``reference`` (Reference datatypes), anywhere in a resource."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            ref = cur.get("reference")
            if isinstance(ref, str):
                yield cur
            stack.extend(v for v in cur.values() if isinstance(v, dict | list))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, dict | list))


def reference_id(reference: Any, resource_type: str) -> str | None:
    """``{"reference": "Patient/abc"}`` (or ``Patient/abc/_history/2``) → ``abc``; None for
    another type, a missing reference or a non-Reference value."""
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str) and ref.startswith(f"{resource_type}/"):
        return ref.split("/")[1]
    return None


def codings(value: Any) -> list[dict[str, Any]]:
    """Every Coding of a CodeableConcept, or of a list of them."""
    if isinstance(value, dict):
        return [c for c in value.get("coding", []) if isinstance(c, dict)]
    if isinstance(value, list):
        return [c for v in value for c in codings(v)]
    return []
