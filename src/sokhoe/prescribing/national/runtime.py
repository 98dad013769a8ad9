"""Building the deliverer from settings, for the CLI and for the server process."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import platform_repository
from sokhoe.access.kek import KeyEncryptionKey, load_key_encryption_key
from sokhoe.background import alongside
from sokhoe.config import Settings
from sokhoe.prescribing.national.client import NationalClient
from sokhoe.prescribing.national.outbox import Backoff, Deliverer, PeriodicDelivery
from sokhoe.store.ports import FhirStore


def build_deliverer(
    settings: Settings,
    store: FhirStore,
    *,
    kek: KeyEncryptionKey | None = None,
    auditor: AuditLog | None = None,
) -> Deliverer:
    """A deliverer over ``store`` with the national client the settings describe
    (:class:`~sokhoe.prescribing.national.client.NotConfigured` without a URL)."""
    engine = access_engine(store)
    if kek is None:
        configured = settings.key_encryption_key
        kek = load_key_encryption_key(
            settings.var_dir, configured.get_secret_value() if configured else None
        )
    repo = platform_repository(
        store, settings.fhir_base, name="sokhoe-national-rx", auditor=auditor
    )
    return Deliverer(
        repo,
        engine,
        NationalClient.from_settings(settings, engine, kek),
        backoff=Backoff(
            settings.national_rx_backoff_seconds, settings.national_rx_max_backoff_seconds
        ),
        lease=timedelta(seconds=settings.national_rx_lease_seconds),
    )


def deliver_with_app(
    app: FastAPI,
    settings: Settings,
    store: FhirStore,
    *,
    kek: KeyEncryptionKey | None = None,
    auditor: AuditLog | None = None,
) -> PeriodicDelivery:
    """Deliver the outbox every ``national_rx_poll_seconds`` while ``app`` runs, keeping
    whatever lifespan the app already has."""
    periodic = PeriodicDelivery(
        build_deliverer(settings, store, kek=kek, auditor=auditor),
        settings.national_rx_poll_seconds,
    )
    alongside(app, periodic)
    app.state.national_rx = periodic
    return periodic


__all__ = ["build_deliverer", "deliver_with_app"]
