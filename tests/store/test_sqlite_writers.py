"""SQLite writers of one process queue at a gate before ``BEGIN IMMEDIATE``
(``store/sql/engine.py``): one at a time, each let in when the one before ends its transaction
(committed or rolled back), handed from thread to thread; re-entrant for a thread that nests."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from sokhoe.store.sql.engine import _WriterGate, make_engine


def test_concurrent_writers_are_let_in_one_at_a_time_and_all_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", write=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    inside, most, errors = [0], [0], []
    count = threading.Lock()

    def writer(k: int) -> None:
        try:
            for n in range(20):
                with engine.begin() as conn:
                    with count:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": k * 100 + n})
                    with count:
                        inside[0] -= 1
                    if n == 7 and k % 2 == 0:  # half the threads roll their eighth back
                        raise KeyError(n)
        except KeyError:
            pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert most[0] == 1  # never two inside a write transaction at once
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM t")).scalar_one()
    # the even threads stopped at their eighth (rolled back): 3 × 7 + 3 × 20
    assert rows == 3 * 7 + 3 * 20
    engine.dispose()


def test_a_rolled_back_writer_lets_the_next_one_in(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", write=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    with pytest.raises(ZeroDivisionError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        _ = 1 / 0
    done = threading.Event()

    def other() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert done.wait(timeout=10)  # not held by the rolled-back transaction
    thread.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [2]
    engine.dispose()


def test_the_gate_is_reentrant_released_by_any_thread_and_gives_up_after_its_timeout(
    tmp_path: Path,
) -> None:
    gate = _WriterGate.of(str(tmp_path / "g.db"))
    assert gate is _WriterGate.of(str(tmp_path / "." / "g.db"))  # one per file
    assert gate.acquire(timeout=1) and gate.acquire(timeout=1)  # the same thread nests
    gate.release()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(gate.acquire(timeout=0.05)))
    waiter.start()
    waiter.join()
    assert results == [False]  # still held once: the other thread gave up
    releaser = threading.Thread(target=gate.release)  # the transaction ended elsewhere
    releaser.start()
    releaser.join()
    taken = threading.Thread(target=lambda: results.append(gate.acquire(timeout=1)))
    taken.start()
    taken.join()
    assert results == [False, True]
    gate.release()


def test_a_connection_abandoned_mid_transaction_frees_the_gate(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", write=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    leaked = engine.connect()
    leaked.execute(text("INSERT INTO t VALUES (1)"))  # begins, never committed nor closed
    del leaked  # collected: the pool takes the connection back and rolls it back
    gc.collect()
    done = threading.Event()

    def other() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert done.wait(timeout=10)
    thread.join()
    engine.dispose()
