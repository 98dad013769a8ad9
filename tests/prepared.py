"""Worlds built once per test process and copied for each test that asks for one.

A test world on SQLite is a folder (the database file, the key-encryption key, whatever else
the world wrote). Building it replays the migrations and writes through the door (a second or
so); copying the finished folder takes milliseconds, and each test still gets a world of its
own that nothing else touches. ``tests/conftest.py`` does the same for an empty migrated store.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_BUILT: dict[Hashable, tuple[Path, Any]] = {}


def prepared(key: Hashable, folder: Path, build: Callable[[Path], T]) -> T:
    """Fill ``folder`` with a copy of what ``build(template)`` wrote into its (empty) template
    folder, built at the first call for ``key`` in this process, and return what that build
    returned. ``build`` must leave nothing open on the folder (close its stores: SQLite folds
    the write-ahead log into the file on the last close), so the copy is whole."""
    if key not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix="sokhoe-prepared-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        template = root / "world"
        template.mkdir()
        _BUILT[key] = (template, build(template))
    template, result = _BUILT[key]
    shutil.copytree(template, folder, dirs_exist_ok=True)
    return result  # type: ignore[no-any-return]
