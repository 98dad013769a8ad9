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
