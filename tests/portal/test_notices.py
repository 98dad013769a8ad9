"""A notice goes once: claimed before it is sent, confirmed after, given back when the gateway
fails, taken over when its sender died (on every backend: the claims are rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sokhoe.access.db import access_engine
from sokhoe.access.sms import MemoryGateway, SmsDeliveryError
from sokhoe.portal.notices import LEASE, _claim, already, send_once
from sokhoe.store import FhirStore

PHONE = "0912345678"


class Down(MemoryGateway):
    def send(self, phone: str, text: str) -> None:
        raise SmsDeliveryError("gateway down")


def test_a_notice_is_sent_once_and_retried_after_a_failure(store: FhirStore) -> None:
    engine = access_engine(store)
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert not send_once(engine, Down(), "glass:7:" + PHONE, PHONE, "glass", "x", now)
    assert already(engine, ["glass:7:" + PHONE]) == set()  # given back for the next round
    gateway = MemoryGateway()
    assert send_once(engine, gateway, "glass:7:" + PHONE, PHONE, "glass", "x", now)
    assert not send_once(engine, gateway, "glass:7:" + PHONE, PHONE, "glass", "x", now)
    assert not send_once(engine, gateway, "glass:7:" + PHONE, PHONE, "glass", "x", now + LEASE * 9)
    assert gateway.sent == [(PHONE, "x")]
    # a sender that claimed and died: held during its lease, taken over after it
    assert _claim(engine, "glass:8:" + PHONE, PHONE, "glass", now)
    assert not send_once(engine, gateway, "glass:8:" + PHONE, PHONE, "glass", "y", now)
    later = now + LEASE + timedelta(seconds=1)
    assert send_once(engine, gateway, "glass:8:" + PHONE, PHONE, "glass", "y", later)
    assert gateway.sent == [(PHONE, "x"), (PHONE, "y")]
    assert already(engine, ["glass:7:" + PHONE, "glass:8:" + PHONE, "glass:9:x"]) == {
        "glass:7:" + PHONE,
        "glass:8:" + PHONE,
    }
