"""Latency percentiles and the printed table."""

from __future__ import annotations

import time
from collections.abc import Callable
from statistics import quantiles
from typing import Any


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if len(samples_ms) < 2:
        v = samples_ms[0] if samples_ms else float("nan")
        return {"p50": v, "p95": v, "p99": v, "n": len(samples_ms)}
    q = quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "n": len(samples_ms),
    }


def timed(fn: Callable[[Any], object], args: list[Any]) -> dict[str, float]:
    """Call ``fn`` once per argument (after one warm-up call) and return latency percentiles."""
    if args:
        fn(args[0])
    samples = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        samples.append((time.perf_counter() - t0) * 1000)
    return percentiles(samples)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
