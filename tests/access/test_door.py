"""The access door is the only way to write a record, by construction.

Read over the source of the whole package (its import graph and its calls): outside
``sokhoe.access`` and ``sokhoe.store``, no module opens a write transaction on a store, imports
a store's own session classes, or makes a repository of its own; the one implementation of the
FHIR interactions that can open a transaction is the door's.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import sokhoe
from sokhoe.access.guard import GuardedRepository
from sokhoe.fhir.repository import FhirRepository

SRC = Path(sokhoe.__file__).parent
INSIDE = ("sokhoe.access", "sokhoe.store")
SESSION_MODULES = ("sokhoe.store.sql.repository", "sokhoe.store.memory")
"""Where the stores' own sessions live: whoever holds one writes without the door."""


@functools.cache
def _parsed() -> tuple[tuple[str, ast.Module], ...]:
    """Every module of the package by name, parsed once per test process: four tests walk the
    trees (none changes one), and parsing the whole package costs seconds each time."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return tuple(found)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    return iter(_parsed())


def _outside(name: str) -> bool:
    return not any(name == inside or name.startswith(inside + ".") for inside in INSIDE)


def test_the_source_is_read() -> None:
    names = [name for name, _ in _modules()]
    assert "sokhoe.web.fhir_api" in names and "sokhoe.interop.hl7v2.processor" in names
    assert len([n for n in names if _outside(n)]) > 100


def test_no_module_outside_the_door_opens_a_write_transaction() -> None:
    """``store.begin(write=True)`` outside access/ and store/ would write without the door."""
    found = []
    for name, tree in _modules():
        if not _outside(name):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "begin"
                and any(k.arg == "write" for k in node.keywords)
            ):
                found.append(f"{name}:{node.lineno}")
    assert not found, f"write transactions opened outside the door: {found}"


def test_no_module_outside_the_door_imports_a_store_session() -> None:
    found = []
    for name, tree in _modules():
        if not _outside(name):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in SESSION_MODULES:
                found.append(f"{name}:{node.lineno} from {node.module}")
            if isinstance(node, ast.ImportFrom) and node.module in (
                "sokhoe.store",
                "sokhoe.store.sql",
            ):
                wrong = {a.name for a in node.names} & {"SqlSession", "MemorySession"}
                if wrong:
                    found.append(f"{name}:{node.lineno} {wrong}")
            if isinstance(node, ast.Import):
                found += [
                    f"{name}:{node.lineno} import {a.name}"
                    for a in node.names
                    if a.name in SESSION_MODULES
                ]
    assert not found, f"store sessions reached outside the door: {found}"


def test_no_module_outside_the_door_makes_a_repository() -> None:
    """Repositories are made by the door (``GuardedRepository``, ``platform_repository``,
    ``for_caller``), never by an adapter."""
    found = []
    for name, tree in _modules():
        if not _outside(name):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "FhirRepository":
                    found.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id in ("FhirRepository", "GuardedRepository")
                for b in node.bases
            ):
                found.append(f"{name}:{node.lineno} class {node.name}")
    assert not found, f"repositories made outside the door: {found}"


def test_the_door_is_the_only_repository_that_opens_transactions() -> None:
    for module in pkgutil.walk_packages(sokhoe.__path__, "sokhoe."):
        importlib.import_module(module.name)
    assert FhirRepository.__subclasses__() == [GuardedRepository]
    plain = FhirRepository("http://x/fhir")
    with pytest.raises(NotImplementedError):
        plain.transaction()
    with pytest.raises(NotImplementedError):
        plain.snapshot()
