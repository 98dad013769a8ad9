"""Engines for the SQL store: SQLite in WAL mode with serialised writers, or PostgreSQL.

SQLite allows one writer at a time; a write transaction starts with ``BEGIN IMMEDIATE`` so two
writers queue on the lock instead of failing half-way with "database is locked" on upgrade.
Readers use plain ``BEGIN`` and, under WAL, never block the writer.

How writers queue matters under load. SQLite's own wait (``busy_timeout``) polls: a writer that
finds the lock taken sleeps 1, 2, 5, … up to 100 ms between tries, so under contention the lock
sits free while waiters sleep and an unlucky one waits seconds (8 pharmacies dispensing at once:
p95 1.4 s for a 60 ms transaction). Within one process the writers of a database file therefore
first take a Python lock (:class:`_WriterGate`) and only then ``BEGIN IMMEDIATE``: a waiter is
woken the moment the previous writer commits or rolls back. ``busy_timeout`` still orders
writers of *other* processes (the CLI beside the server), and a writer that waited for the gate
longer than that timeout goes on to SQLite's own wait rather than hang, as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from pathlib import Path
from time import monotonic, sleep
from typing import Any, ClassVar, Final

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


BUSY_TIMEOUT_S: Final = 60
_GATE: Final = "sokhoe_writer_gate"
"""``Connection.info`` key: the gate this connection's open write transaction holds."""


class _WriterGate:
    """The writers of one SQLite file in this process, one at a time, first come first served
    (see the module docstring).

    The gate is handed from one writer straight to the next in line: only that thread wakes
    (a condition variable would wake them all, each taking Python's GIL in turn to find it is
    not its turn). Re-entrant, as SQLite is not: a thread that opens a second write transaction
    while its first is open gets past the gate and meets SQLite's busy wait, as it did without
    a gate. Released by whichever thread ends the transaction (a ``threading.RLock`` would
    insist on the thread that began it)."""

    _gates: ClassVar[dict[str, _WriterGate]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._line: deque[tuple[int, threading.Lock]] = deque()

    @classmethod
    def of(cls, database: str) -> _WriterGate:
        key = str(Path(database).resolve())
        with cls._guard:
            return cls._gates.setdefault(key, cls())

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._lock:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._line:
                self._owner, self._depth = me, 1
                return True
            turn = threading.Lock()
            turn.acquire()
            waiter = (me, turn)
            self._line.append(waiter)
        if turn.acquire(timeout=timeout):
            return True  # handed over: :meth:`release` made this thread the owner
        with self._lock:
            if waiter in self._line:
                self._line.remove(waiter)
                return False
            return True  # handed over just as the wait ended

    def release(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth > 0:
                return
            if self._line:
                who, turn = self._line.popleft()
                self._owner, self._depth = who, 1
                turn.release()
            else:
                self._owner, self._depth = None, 0


def _open_gate(conn: Any) -> None:
    gate = conn.info.pop(_GATE, None)
    if gate is not None:
        gate.release()


def _end_then_open_gate(conn: Any, end: str) -> None:
    """Commit (or roll back) the DBAPI transaction *now*, then let the next writer in.

    SQLAlchemy calls these listeners just before its own commit or rollback; releasing the gate
    there would wake the next writer while this one still holds SQLite's lock. Ending the
    transaction here leaves SQLAlchemy's own call nothing to do (sqlite3 ignores a commit or
    rollback outside a transaction); should it fail, SQLAlchemy's call fails the same way and
    reports it as usual."""
    if _GATE not in conn.info:
        return
    try:
        getattr(conn.connection.dbapi_connection, end)()
    except Exception:  # noqa: S110 - SQLAlchemy's own call raises it, wrapped
        pass
    finally:
        _open_gate(conn)


def _commit(conn: Any) -> None:
    _end_then_open_gate(conn, "commit")


def _rollback(conn: Any) -> None:
    _end_then_open_gate(conn, "rollback")


_FIRST_PAUSE: Final = 0.0002
_LONGEST_PAUSE: Final = 0.002


def _begin_immediate(dbapi_conn: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for a writer of *another process* by polling every
    0.2–2 ms rather than with SQLite's own busy wait.

    SQLite's wait sleeps 1, 2, 5, 10 … up to 100 ms between tries; between two server
    processes that each write an audit row per read, the lock then sat free most of the time
    while both slept (two workers answered fewer reads than one). Writers of this process
    are already in line at the gate, so only the other processes' are waited for here. The
    connection's ``busy_timeout`` is set back at once: the rest of the transaction keeps
    SQLite's own wait for the rare checkpoint it may meet.
    """
    deadline = monotonic() + BUSY_TIMEOUT_S
    pause = _FIRST_PAUSE
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                locked = "locked" in str(exc) or "busy" in str(exc)
                if not locked or monotonic() > deadline:
                    raise
            sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")


class _HintingCompiler(SQLiteCompiler):
    """SQLite's statement compiler, rendering the table hints it otherwise drops: a search
    names the index of a per-candidate probe (``INDEXED BY``, ``store/sql/search.py``), which
    the planner, without statistics, passes over for the index on the searched values."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _no_jit(dbapi_conn: Any, _record: Any) -> None:
    """``SET jit = off`` on each new PostgreSQL connection.

    PostgreSQL compiles a query to machine code when its estimated cost passes
    ``jit_above_cost`` (100,000). A facility's confined search on tables partitioned by
    patient is estimated above it (the confinement's subplans, once per partition), and at
    100,000 people compiling took 2.9 s of a 2.94 s name search whose execution took 50 ms
    (``EXPLAIN ANALYZE``). A record system's queries are short: compiling never pays back.
    A ``SET`` rather than the ``options`` startup parameter, which PgBouncer refuses."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        dbapi_conn.execute("SET jit = off")
    finally:
        dbapi_conn.autocommit = autocommit


def make_engine(url: str, *, write: bool) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            pool_pre_ping=True,
        )
        event.listen(engine, "connect", _no_jit)
        return engine
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(
            f"Unsupported database '{parsed.get_backend_name()}': use sqlite or postgresql"
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
    )
    engine.dialect.statement_compiler = _HintingCompiler
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"
    file_backed = bool(parsed.database) and parsed.database != ":memory:"
    gate = _WriterGate.of(str(parsed.database)) if write and file_backed else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        # checkpoint every ~40 MB of WAL rather than 4 MB: index pages touched by many
        # transactions are then copied back to the database file once, not each time
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if gate is not None and gate.acquire(timeout=BUSY_TIMEOUT_S):
            conn.info[_GATE] = gate
        try:
            if write and file_backed:
                _begin_immediate(conn.connection.dbapi_connection)
            else:
                conn.exec_driver_sql(begin)
        except BaseException:
            _open_gate(conn)
            raise

    if gate is not None:
        # the transaction's end, whichever way: the next writer may begin
        event.listen(engine, "commit", _commit)
        event.listen(engine, "rollback", _rollback)

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            # a connection given back with its transaction still open (one never closed, and
            # collected): the pool rolls it back, which no transaction event reports
            held = record.info.pop(_GATE, None)
            if held is not None:
                held.release()

    return engine
