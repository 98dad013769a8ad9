"""``sokhoe bench``: ingest throughput against a raw-insert floor, and query latencies."""

from sokhoe.bench.runner import run_bench

__all__ = ["run_bench"]
