"""An SMS to the citizen when a clinician opens their record by breaking the glass.

The 2019 workshop's promise is that a patient can see who looked at their record; an
emergency opening is the one access they should not have to go looking for. The alert is
decided and audited by the door (``access/glass.py``: a security alert in the audit chain, in
the transaction that opens the record); this notifier reads the chain afterwards rather than
sending from inside that transaction, so an SMS gateway that is slow or down never holds up
an emergency, and an alert whose transaction rolled back is never told.

Each round (:meth:`GlassAlerts.run_once`, every ``glass_alert_seconds`` in the server process
and ``sokhoe audit glass-alerts``) takes the openings of the last :data:`LOOKBACK`
(``access.glass.openings``: one per clinician, record and shift) and texts each phone that
should know (the phone linked to the record; for a child, the guardians a facility
confirmed) once, through ``portal/notices.py`` (key ``glass:<audit seq>:<phone>``). The
message says which facility opened the record and when, never what was seen: an SMS is read
on a lock screen, by whoever holds the phone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import FastAPI
from sqlalchemy import Engine

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.glass import Opening, alert_phones, openings
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.sms import SmsGateway
from sokhoe.background import alongside
from sokhoe.config import Settings
from sokhoe.portal.facilities import display_name, facilities
from sokhoe.portal.notices import already, send_once
from sokhoe.store.ports import FhirStore

log = logging.getLogger(__name__)

LOOKBACK: Final = timedelta(days=2)
"""How far back a round looks: a notifier stopped for longer does not text people about old
openings (they stay in the access log), and a round reads a small slice of the log."""
KIND: Final = "glass"
VIETNAM: Final = timedelta(hours=7)
"""Asia/Ho_Chi_Minh has no daylight saving: a fixed offset keeps the SMS text simple."""


def notice_key(seq: int, phone: str) -> str:
    """The notice of one opening to one phone (a child's two guardians each get theirs)."""
    return f"glass:{seq}:{phone}"


def message(opening: Opening, facility_name: str, child: str | None = None) -> str:
    """The SMS: who opened the record (the facility) and when, in Vietnam's time; to a
    guardian, whose record (the child's name)."""
    local = (opening.recorded.astimezone(UTC) + VIETNAM).strftime("%H:%M ngày %d/%m/%Y")
    whose = f"của {child}" if child else "của bạn"
    return (
        f"Sổ sức khỏe: {facility_name} đã mở hồ sơ sức khỏe {whose} trong tình huống khẩn cấp "
        f"lúc {local}. Xem lý do, và báo nếu thấy điều bất thường, ở mục "
        '"Ai đã xem hồ sơ của tôi".'
    )


@dataclass
class Report:
    openings: int = 0
    sent: int = 0
    """Messages this round sent."""
    waiting: int = 0
    """Messages not sent this round (the gateway failed, or another sender holds them)."""


class GlassAlerts:
    """One notifier over the platform's door (reads of the registry and the care index are
    the platform's own processing) and the access tables."""

    def __init__(
        self,
        repo: GuardedRepository,
        engine: Engine,
        gateway: SmsGateway,
        *,
        auditor: AuditLog | None = None,
        clock: Callable[[], datetime] | None = None,
        lookback: timedelta = LOOKBACK,
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.gateway = gateway
        self.auditor = auditor or repo.auditor
        self.clock = clock or repo.clock
        self.lookback = lookback

    def run_once(self) -> Report:
        report = Report()
        found = openings(self.auditor, self.clock() - self.lookback)
        report.openings = len(found)
        if not found:
            return report
        places = facilities(self.repo, [o.facility or "" for o in found])
        for opening in found:
            phones = alert_phones(self.repo, self.engine, opening.patient_id)
            keys = {phone: notice_key(opening.seq, phone) for phone, _ in phones}
            done = already(self.engine, list(keys.values()))
            for phone, guardian in phones:
                key = keys[phone]
                if key in done:
                    continue
                place = places[opening.facility].name if opening.facility else "Một cơ sở y tế"
                child = self._name(opening.patient_id) if guardian else None
                text = message(opening, place, child)
                if send_once(self.engine, self.gateway, key, phone, KIND, text, self.clock()):
                    report.sent += 1
                else:
                    report.waiting += 1
        return report

    def _name(self, patient_id: str) -> str | None:
        with self.repo.snapshot() as tx:
            found = tx.read("Patient", patient_id)
        return display_name(found.content or {}) or None if found is not None else None


class PeriodicAlerts:
    """Runs :meth:`GlassAlerts.run_once` every ``seconds`` in a thread of the server process
    (safe with several processes: each notice is claimed by one sender)."""

    def __init__(self, alerts: GlassAlerts, seconds: float) -> None:
        self.alerts = alerts
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="glass-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # the first round after one interval: a server started again and again (a deployment,
        # a test) does not read the log at every start
        while not self._stop.wait(self.seconds):
            try:
                self.alerts.run_once()
            except Exception:
                log.exception("break-the-glass alert round failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def build_alerts(
    settings: Settings, store: FhirStore, gateway: SmsGateway, auditor: AuditLog | None = None
) -> GlassAlerts:
    """The notifier over ``store`` as the settings describe it (the server and the CLI)."""
    repo = platform_repository(
        store, settings.fhir_base, name="sokhoe-glass-alerts", auditor=auditor
    )
    return GlassAlerts(repo, access_engine(store), gateway)


def alerts_with_app(
    app: FastAPI,
    settings: Settings,
    store: FhirStore,
    gateway: SmsGateway,
    auditor: AuditLog | None = None,
) -> PeriodicAlerts:
    """Run the notifier every ``glass_alert_seconds`` while ``app`` runs."""
    periodic = PeriodicAlerts(
        build_alerts(settings, store, gateway, auditor), settings.glass_alert_seconds
    )
    alongside(app, periodic)
    app.state.glass_alerts = periodic
    return periodic


__all__ = [
    "KIND",
    "LOOKBACK",
    "GlassAlerts",
    "PeriodicAlerts",
    "Report",
    "alerts_with_app",
    "build_alerts",
    "message",
    "notice_key",
]
