"""What a provincial IT team watches: Prometheus metrics of requests, audit writes, queues.

The counters live in this module so the access layer (audit latency) and the web layer
(requests per route family) record into the same ones without knowing about each other.
Under ``sokhoe serve --workers N`` each worker counts on its own and the scrape adds them up:
prometheus-client's multiprocess mode, switched on by ``PROMETHEUS_MULTIPROC_DIR`` before
this module is first imported (``sokhoe serve`` sets it). Queue depths are not counted at
all but read from the database at scrape time, so every worker reports the same truth.
Labels never carry personal data: routes are templates (``/fhir/{resource_type}/{id}``),
never the path asked.
See: https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

MULTIPROCESS_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS: Final = Counter(
    "sokhoe_http_requests",
    "HTTP requests answered, by method, route family and status class.",
    ["method", "route", "status"],
)
LATENCY: Final = Histogram(
    "sokhoe_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route family.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUDIT_WRITE: Final = Histogram(
    "sokhoe_audit_write_duration_seconds",
    "Time to append rows to the audit chain (inside the transaction they record).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1),
)


class StateCollector(Collector):
    """Gauges read at scrape time: the work queues' depths and the worker processes."""

    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.workers = workers

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from sokhoe.store.sql.bulk_schema import bulk_job
        from sokhoe.store.sql.prescribing_schema import prescription_outbox
        from sokhoe.store.sql.subscription_schema import subscription_delivery

        depth = GaugeMetricFamily(
            "sokhoe_queue_depth", "Items waiting in a work queue.", labels=["queue"]
        )
        queues = (
            ("subscriptions", subscription_delivery, subscription_delivery.c.status, "pending"),
            ("prescription_outbox", prescription_outbox, prescription_outbox.c.status, "pending"),
            ("prescription_refused", prescription_outbox, prescription_outbox.c.status, "refused"),
        )
        with self.engine.connect() as conn:
            for name, table, column, status in queues:
                count = conn.execute(
                    select(func.count()).select_from(table).where(column == status)
                ).scalar_one()
                depth.add_metric([name], float(count))
            exports = conn.execute(
                select(func.count())
                .select_from(bulk_job)
                .where(bulk_job.c.status.in_(("queued", "running")))
            ).scalar_one()
        depth.add_metric(["exports"], float(exports))
        yield depth
        yield GaugeMetricFamily(
            "sokhoe_workers", "Worker processes serving this address.", value=self.workers
        )


def exposition(engine: Engine, workers: int) -> tuple[bytes, str]:
    """The text a Prometheus scrape receives, and its content type."""
    state = CollectorRegistry()
    state.register(StateCollector(engine, workers))
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.MultiProcessCollector(state)  # type: ignore[no-untyped-call]  # all workers'
        return generate_latest(state), CONTENT_TYPE_LATEST
    # one process: its counters, CPU and memory from the default registry
    text = generate_latest(REGISTRY) + generate_latest(state)
    return text, CONTENT_TYPE_LATEST


__all__ = [
    "AUDIT_WRITE",
    "LATENCY",
    "MULTIPROCESS_DIR",
    "REQUESTS",
    "StateCollector",
    "exposition",
]
