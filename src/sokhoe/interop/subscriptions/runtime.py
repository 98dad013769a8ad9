"""Building the dispatcher from settings, and running it with the web server's lifespan."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import platform_repository
from sokhoe.access.policy import Policy
from sokhoe.background import alongside
from sokhoe.config import Settings
from sokhoe.interop.subscriptions.delivery import Backoff, HttpSender, Sender
from sokhoe.interop.subscriptions.dispatcher import Dispatcher
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy
from sokhoe.store.ports import FhirStore


def build_dispatcher(
    settings: Settings,
    store: FhirStore,
    engine: Engine,
    *,
    sender: Sender | None = None,
    policy: Policy | None = None,
    auditor: AuditLog | None = None,
) -> Dispatcher:
    """A dispatcher over ``store``; ``engine`` is the access database (``access_engine``)."""
    audit = auditor or AuditLog(engine)
    repo = platform_repository(
        store, settings.fhir_base, name="sokhoe-subscriptions", auditor=audit
    )
    return Dispatcher(
        repo,
        engine,
        audit,
        sender or HttpSender(EndpointPolicy.from_settings(settings), settings.subscription_timeout),
        backoff=Backoff(
            settings.subscription_backoff_seconds,
            settings.subscription_max_backoff_seconds,
            settings.subscription_max_attempts,
        ),
        overlap=timedelta(seconds=settings.subscription_overlap_seconds),
        poll_seconds=settings.subscription_poll_seconds,
        lease_seconds=max(30.0, settings.subscription_poll_seconds * 10),
    )


def run_with_app(app: FastAPI, dispatcher: Dispatcher) -> None:
    """Start ``dispatcher`` when ``app`` starts and stop it when the app shuts down, keeping
    whatever lifespan the app already has."""
    alongside(app, dispatcher)
    app.state.subscriptions = dispatcher


__all__ = ["build_dispatcher", "run_with_app"]
