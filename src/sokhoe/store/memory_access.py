"""The memory store's access database: a SQLite file copied from one migrated once per process.

Why: every memory store that meets the access door (accounts, tokens, the audit chain) needs
the access tables, and the memory store is the store of the fast tests and the demos. Replaying
every Alembic migration on each new file took 0.3-0.4 s, longer than most tests that use the
store; a copy of a file migrated once by the same migrations is the same schema, made in about
a millisecond. Each store still gets a file of its own, so nothing is shared between stores.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_templates: dict[int, Path] = {}
"""The migrated file of each process (by pid: a forked child makes its own, since the
parent removes its file when it exits)."""


def _migrated() -> Path:
    from sokhoe.store.sql import migrate
    from sokhoe.store.sql.engine import make_engine

    folder = Path(tempfile.mkdtemp(prefix="sokhoe-access-template-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "access.db"
    engine = make_engine(f"sqlite:///{path}", write=True)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()  # the last connection closing folds the WAL into the file
    return path


def new_access_file() -> str:
    """The path of a new SQLite file holding the migrated access tables, empty; the caller
    deletes it (with its ``-wal`` and ``-shm``) when done."""
    with _lock:
        template = _templates.get(os.getpid())
        if template is None or not template.exists():
            template = _templates[os.getpid()] = _migrated()
        handle, path = tempfile.mkstemp(prefix="sokhoe-access-", suffix=".db")
        os.close(handle)
        shutil.copyfile(template, path)
    return path
