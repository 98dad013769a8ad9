"""The app as each worker process of ``sokhoe serve --workers N`` builds it.

Uvicorn starts every worker from an import string, not from an app object, so the settings
the parent assembled travel through the environment (:meth:`Settings.environment`) and each
worker builds its own app, store and connection pool from them. Nothing else is shared
between the processes but the database: sessions, one-time codes, rate limits, the audit
chain's head and the background workers' leases all live there (``DESIGN.md``: nothing may
assume one process).
See: https://www.uvicorn.org/deployment/#built-in
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from sokhoe.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

FACTORY = "sokhoe.web.served:app_from_environment"
"""The import string uvicorn's workers call (``factory=True``)."""


def worker_environment(settings: Settings, workers: int) -> dict[str, str]:
    """The variables every worker needs: its settings (with the worker count, for
    ``/metrics``) and prometheus-client's multiprocess folder, emptied of an earlier run's
    counters (``var/metrics``)."""
    metrics = settings.var_dir / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    env = settings.model_copy(update={"workers": workers}).environment()
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics.resolve())}


def app_from_environment() -> FastAPI:
    """A worker's app, from the ``SOKHOE_*`` variables the parent set."""
    from sokhoe.web.app import create_app

    return create_app(Settings())


__all__ = ["FACTORY", "app_from_environment", "worker_environment"]
