"""Run a pure function over a stream of work items in worker processes, in order.

Used by bulk loads (``interop/load.py``) to validate and index in parallel while the single
database writer consumes the results in file order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """One worker per core beside the one the writer (and SQLite inside it) keeps busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def ordered_map(
    func: Callable[[T], R], items: Iterable[T], workers: int, lookahead: int = 4
) -> Iterator[tuple[T, R]]:
    """``(item, func(item))`` in input order, computed by ``workers`` processes.

    At most ``workers * lookahead`` items are in flight, so memory stays bounded however large
    the load. ``workers == 0`` computes in this process (small loads are not worth a pool).
    """
    if workers <= 0:
        for item in items:
            yield item, func(item)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            pending.append((item, pool.submit(func, item)))
            if len(pending) >= workers * lookahead:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
