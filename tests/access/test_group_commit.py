"""Group commit of audit rows: fewer transactions, the same guarantee (a caller returns only
once its row is committed), and one bad write fails nobody else."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, insert, select

from sokhoe.access.audit import AuditLog
from sokhoe.access.group_commit import GroupCommit
from sokhoe.access.principal import system_principal
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event, auth_revoked_token


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqlStore(f"sqlite:///{tmp_path / 'g.db'}")
    yield s
    s.close()


def _transactions(store: SqlStore) -> list[int]:
    begun: list[int] = []
    event.listen(store.writer, "begin", lambda conn: begun.append(1))
    return begun


def test_writes_waiting_behind_a_batch_share_the_next_transaction(store: SqlStore) -> None:
    """The first write leads and holds its transaction until nine others are queued; those
    nine then commit together: two transactions for ten writes, each caller its own result."""
    group = GroupCommit(store.writer)
    begun = _transactions(store)
    queued = threading.Event()

    def row(n: int) -> Any:
        def work(conn: Connection) -> int:
            if n == 0:  # the leader waits inside its transaction for the others to queue
                deadline = time.monotonic() + 30
                while len(group._queue) < 9 and time.monotonic() < deadline:
                    time.sleep(0.005)
                queued.set()
            conn.execute(insert(auth_revoked_token).values(jti=f"j{n}", expires=_now()))
            return n * 10

        return work

    with ThreadPoolExecutor(10) as pool:
        first = pool.submit(group.run, row(0))
        time.sleep(0.05)
        rest = [pool.submit(group.run, row(n)) for n in range(1, 10)]
        results = [first.result(), *(f.result() for f in rest)]
    assert queued.is_set()
    assert results == [n * 10 for n in range(10)]
    assert len(begun) == 2
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(auth_revoked_token)).scalar() == 10


def test_a_failing_write_fails_its_own_caller_only(store: SqlStore) -> None:
    group = GroupCommit(store.writer)
    release = threading.Event()

    def good(n: int) -> Any:
        def work(conn: Connection) -> str:
            if n == 0:
                release.wait(10)
            conn.execute(insert(auth_revoked_token).values(jti=f"ok{n}", expires=_now()))
            return f"ok{n}"

        return work

    def bad(conn: Connection) -> str:
        conn.execute(insert(auth_revoked_token).values(jti="ok1", expires=_now()))  # duplicate
        return "never"

    with ThreadPoolExecutor(4) as pool:
        leader = pool.submit(group.run, good(0))
        time.sleep(0.05)
        others = [pool.submit(group.run, good(1)), pool.submit(group.run, bad)]
        others.append(pool.submit(group.run, good(2)))
        time.sleep(0.05)
        release.set()
        assert leader.result() == "ok0"
        assert others[0].result() == "ok1" and others[2].result() == "ok2"
        with pytest.raises(Exception, match=r"(?i)unique"):
            others[1].result()
    with store.reader.connect() as conn:
        jtis = set(conn.execute(select(auth_revoked_token.c.jti)).scalars())
    assert jtis == {"ok0", "ok1", "ok2"}


def test_concurrent_audit_rows_make_one_unbroken_chain(store: SqlStore) -> None:
    """Through the audit log as the door writes it (the group commit on): every row there,
    each caller told its own sequence number, the chain verifies."""
    log = AuditLog(store.writer)
    who = system_principal("bench", "bench", frozenset({"system/*.rs"}))

    def read(n: int) -> int:
        return log.record(
            who, "read", "success", patient_ids=[f"p{n % 7}"], entities=[f"Patient/p{n}"]
        )

    with ThreadPoolExecutor(16) as pool:
        seqs = list(pool.map(read, range(400)))
    assert sorted(seqs) == list(range(1, 401))  # each caller its own row, none lost
    assert log.verify().ok
    with store.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_event)).scalar() == 400


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
