"""Background workers that live as long as the web app: started with it, stopped with it.

The subscription dispatcher and the national prescription outbox both poll the database on a
thread of their own while the server runs; this wraps the app's lifespan once for any of them,
keeping whatever lifespan the app already has (others may wrap it too).
See: https://www.starlette.io/lifespan/
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def alongside(app: FastAPI, worker: Worker) -> None:
    """Start ``worker`` when ``app`` starts and stop it when the app shuts down."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        worker.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            worker.stop()

    app.router.lifespan_context = lifespan


__all__ = ["Worker", "alongside"]
