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

import argparse
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sokhoe.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

FACTORY = "sokhoe.web.served:app_from_environment"
"""The import string uvicorn's workers call (``factory=True``)."""


def metrics_environment(var_dir: Path) -> dict[str, str]:
    """prometheus-client's multiprocess folder (``var/metrics``), emptied of an earlier run's
    counters: to be in the environment before ``sokhoe.metrics`` is first imported."""
    metrics = var_dir / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(metrics.resolve())}


def worker_environment(settings: Settings, workers: int) -> dict[str, str]:
    """The variables every worker needs: its settings (with the worker count, for
    ``/metrics``) and the metrics folder (:func:`metrics_environment`)."""
    env = settings.model_copy(update={"workers": workers}).environment()
    return {**env, **metrics_environment(settings.var_dir)}


def app_from_environment() -> FastAPI:
    """A worker's app, from the ``SOKHOE_*`` variables the parent set."""
    from sokhoe.web.app import create_app

    return create_app(Settings())


def serve_workers(host: str, port: int, workers: int, **options: Any) -> None:
    """uvicorn's multi-worker serving of :func:`app_from_environment`, with one change: the
    listening socket is declared TCP.

    uvicorn binds the socket it hands its workers with the protocol left at 0; connections
    accepted on it inherit that, and asyncio sets ``TCP_NODELAY`` only on sockets that say
    TCP, so every answer after a connection's first waited ~40 ms for the client's delayed
    ACK (Nagle): 90 answers a second instead of 1,200 on the same machine. Re-declaring the
    same descriptor as ``IPPROTO_TCP`` is the fix proposed upstream.
    See: https://github.com/Kludex/uvicorn/issues/3149
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(FACTORY, factory=True, workers=workers, host=host, port=port, **options)
    Multiprocess(config, sockets=[declared_tcp(config.bind_socket())]).run()


def declared_tcp(bound: socket.socket) -> socket.socket:
    """The same listening descriptor, declared ``IPPROTO_TCP`` (see :func:`serve_workers`)."""
    if bound.family not in (socket.AF_INET, socket.AF_INET6) or bound.proto:
        return bound
    tcp = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, bound.detach())
    tcp.set_inheritable(True)
    return tcp


def main() -> None:
    """``python -m sokhoe.web.served --workers N``: the workers alone, from settings already
    in the environment (the tests' served apps; ``sokhoe serve`` does the setup first)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    serve_workers(args.host, args.port, args.workers, timeout_worker_healthcheck=60)


if __name__ == "__main__":
    main()


__all__ = [
    "FACTORY",
    "app_from_environment",
    "declared_tcp",
    "metrics_environment",
    "serve_workers",
    "worker_environment",
]
