"""Group commit: many threads' small writes in one transaction, each caller answered only after
that transaction committed.

Every read a facility makes is audited before its answer leaves (``DESIGN.md``: no answered
request without its audit row). One transaction per audit row makes concurrent readers queue
for the database's write lock (on SQLite, one writer for all processes) one by one, each
paying a lock, a read of the chain's head and a commit. Here the first thread to arrive
leads: it takes every write waiting at that moment, runs them in one transaction, commits,
and only then releases each waiting caller with its own result; writes that arrived meanwhile
are led by the next of them, so nobody waits behind more than one batch and nobody is left
leading for others for long. The guarantee is unchanged (a caller returns only once its row
is committed; an error reaches every caller of the failed batch, whose rows were all rolled
back together), only the number of transactions falls.
See: https://www.postgresql.org/docs/current/wal-configuration.html (commit_delay, the
same idea inside PostgreSQL)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")


@dataclass
class _Waiting(Generic[T]):
    work: Callable[[Connection], T]
    state: str = "queued"
    """queued, then lead (this thread commits the next batch) or straight to done."""
    wake: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """Runs ``work(conn)`` callables in shared transactions on ``engine`` (see the module).

    One leader at a time: ``_leading`` is True while a thread leads, and the queue is empty
    whenever it is False, so a thread that finds no leader is alone in the queue and leads its
    own batch; a leader hands the lead to the oldest waiting write, which is then first in the
    next batch.
    """

    def __init__(self, engine: Engine, *, most: int = 256) -> None:
        self.engine = engine
        self.most = most
        """Writes per transaction at most: one batch never holds the lock for long."""
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a committed transaction, possibly shared with other threads'."""
        item: _Waiting[T] = _Waiting(work)
        with self._lock:
            self._queue.append(item)
            if not self._leading:
                self._leading = True
                item.state = "lead"
        while item.state != "done":
            if item.state == "lead":
                self._lead()
                continue
            item.wake.wait()
            item.wake.clear()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Commit one batch (the leader's write first), then hand the lead on."""
        with self._lock:
            batch, self._queue = self._queue[: self.most], self._queue[self.most :]
        try:
            with self.engine.begin() as conn:
                for waiting in batch:
                    waiting.result = waiting.work(conn)
        except Exception:
            # the batch rolled back whole: each write again on its own, so one bad write
            # fails its own caller only
            for waiting in batch:
                self._alone(waiting)
        except BaseException as exc:  # interrupted: nobody's row was committed
            for waiting in batch:
                waiting.result, waiting.error = None, exc
        with self._lock:
            for waiting in batch:
                waiting.state = "done"
                waiting.wake.set()
            if self._queue:
                self._queue[0].state = "lead"
                self._queue[0].wake.set()
            else:
                self._leading = False

    def _alone(self, waiting: _Waiting[Any]) -> None:
        try:
            with self.engine.begin() as conn:
                waiting.result, waiting.error = waiting.work(conn), None
        except Exception as exc:
            waiting.result, waiting.error = None, exc


__all__ = ["GroupCommit"]
