"""Reading the built warehouse: its file attached to one in-memory DuckDB kept by the process.

Every dashboard request reads the warehouse, and a new DuckDB database costs some 25 ms of CPU
to start (its catalogue of built-in functions, its threads) before the file is even read, ten
times what attaching the file to a running one costs. So the process keeps one in-memory
DuckDB and, for as long as at least one reader uses it, the warehouse file attached to it read
only (``ATTACH … (READ_ONLY)``); each reader gets a cursor of its own with the file as its
default database (``USE``). The file is detached when its last reader is done, so, as with a
connection per request, the file is held only while requests read it: ``sokhoe warehouse
build`` (another process, the file lock) or a build in this process (``sokhoe serve --demo``,
DuckDB's own check) is refused while a request reads, and a request is refused while a build
writes (the pages then say to try again).

https://duckdb.org/docs/stable/sql/statements/attach
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import duckdb

_lock = threading.Lock()
_reader: duckdb.DuckDBPyConnection | None = None
_attached: dict[Path, tuple[str, int]] = {}
"""Attached file -> (its database name in the reader, how many readers use it)."""
_names = 0


def _attach(path: Path) -> tuple[str, duckdb.DuckDBPyConnection]:
    """Attach ``path`` (once for every concurrent reader); its database name in the reader
    and a cursor of the reader's own."""
    global _reader, _names
    with _lock:
        if _reader is None:
            _reader = duckdb.connect()
        if path in _attached:
            name, users = _attached[path]
        else:
            _names += 1
            name, users = f"warehouse_{_names}", 0
            quoted = str(path).replace("'", "''")
            _reader.execute(f"ATTACH '{quoted}' AS {name} (READ_ONLY)")
        _attached[path] = (name, users + 1)
        return name, _reader.cursor()


def _release(path: Path) -> None:
    with _lock:
        name, users = _attached[path]
        if users > 1:
            _attached[path] = (name, users - 1)
            return
        del _attached[path]
        if _reader is not None:
            _reader.execute(f"DETACH {name}")


class Reading:
    """A read-only connection to one warehouse file until :meth:`close` (or the end of a
    ``with`` block, which gives the connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        name, self.connection = _attach(self.path)
        try:
            self.connection.execute(f"USE {name}")
        except BaseException:
            self.connection.close()
            _release(self.path)
            raise
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self.connection.close()
            finally:
                _release(self.path)

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        return self.connection

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
