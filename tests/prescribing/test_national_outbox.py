"""The outbox to the national prescription system, against a stand-in over real HTTP, on the
memory store, SQLite and PostgreSQL: every field checked, nothing lost, nothing sent twice, a
refusal left as a Task that only the prescribing facility sees."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from sokhoe.errors import FhirError
from sokhoe.prescribing.national import TASK_SYSTEM, NationalClient
from sokhoe.prescribing.national.outbox import pending, rows
from sokhoe.store import FhirStore
from sokhoe.store.sql.prescribing_schema import national_rx_token
from tests.prescribing.national_world import A, B, World, make_world


@pytest.fixture
def world(store: FhirStore) -> Iterator[World]:
    w = make_world(store)
    try:
        yield w
    finally:
        w.standin.stop()


def _lower(code: str) -> str:
    return code[:-1] + code[-1].lower()


def test_a_prescription_and_its_sale_reach_the_national_system_with_every_field(
    world: World,
) -> None:
    code, request_ids = world.issue(lines=2)
    report = world.deliverer().run_once()

    assert (report.claimed, report.delivered, report.refused) == (1, 1, 0)
    assert world.standin.invalid == []
    sent = world.standin.prescriptions[_lower(code)]
    assert sent["loai_don_thuoc"] == "c" and sent["gioi_tinh"] == 3  # female in 808's coding
    assert sent["ma_dinh_danh_cong_dan"] == "079190001234"
    assert sent["ma_so_the_bao_hiem_y_te"] == "DN4797912345678"
    assert sent["ngay_sinh_benh_nhan"] == "07/03/1990"
    assert sent["chan_doan"][0]["ma_chan_doan"] == "J06.9"
    assert [line["so_luong"] for line in sent["thong_tin_don_thuoc"]] == [20, 15]
    assert [r.status for r in rows(world.engine, [code])] == ["delivered"]

    world.dispense(code, request_ids, invoice="HD-0001")
    report = world.deliverer().run_once()
    assert (report.claimed, report.delivered) == (1, 1)
    assert world.standin.invalid == []
    (sale,) = world.standin.reports
    assert sale["ma_don_thuoc"] == _lower(code) and sale["ma_hoa_don"] == "HD-0001"
    plain, substituted = sale["thong_tin_thuoc"]
    assert plain["so_luong_ban"] == 10 and "ly_do_thay_the" not in plain
    assert substituted["ma_thuoc_da_ke_don"] == "40.152"
    assert substituted["ma_thuoc"] == "40.152.2"
    assert substituted["ly_do_thay_the"].startswith("Hết biệt dược")

    # a delivered row is never sent again, by this worker or another
    world.clock.advance(days=1)
    assert world.deliverer().run_once().claimed == 0
    assert world.standin.sends_of(_lower(code)) == 1 and len(world.standin.reports) == 1


def test_the_doctors_token_is_shared_through_the_database_and_renewed_when_refused(
    world: World,
) -> None:
    world.issue()
    world.deliverer().run_once()
    world.issue()
    world.deliverer().run_once()  # another client, as in another process
    assert world.standin.sign_ins == ["doctor:BS-0001"]
    with world.engine.connect() as conn:
        stored = conn.execute(select(national_rx_token.c.token)).scalar_one()
    assert stored.startswith("kek1:") and "eyJ" not in stored  # sealed, never in clear

    with world.engine.begin() as conn:  # a token the system no longer accepts
        token = world.kek.seal("not-a-token", f"national-rx:doctor:{A}:000123/HCM-CCHN")
        conn.execute(national_rx_token.update().values(token=token))
    code, _ = world.issue()
    assert world.deliverer().run_once().delivered == 1
    assert world.standin.sign_ins == ["doctor:BS-0001", "doctor:BS-0001"]
    assert _lower(code) in world.standin.prescriptions


def test_nothing_is_queued_when_the_prescription_is_not_written(world: World) -> None:
    def fail() -> None:
        raise RuntimeError("the write fails after the row was queued")

    with pytest.raises(RuntimeError):
        world.issue(fail=fail)
    assert rows(world.engine) == []
    with world.store.begin() as tx:
        assert tx.history("MedicationRequest", None, None, 10, 0)[1] == 0


def test_an_unreachable_system_keeps_rows_pending_with_back_off_then_delivers_once(
    world: World,
) -> None:
    code, _ = world.issue()
    world.standin.stop()
    start = world.clock()

    report = world.deliverer().run_once()
    (row,) = pending(world.engine)
    assert report.retried == 1 and row.attempts == 1 and "ConnectError" in row.last_error
    wait = _utc(row.next_attempt) - start
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)
    assert world.deliverer().run_once().claimed == 0  # not before its time

    world.clock.advance(seconds=31)
    world.deliverer().run_once()
    (row,) = pending(world.engine)
    assert row.attempts == 2
    assert timedelta(seconds=30) <= _utc(row.next_attempt) - world.clock() <= timedelta(seconds=60)

    world.standin.start()  # up again, but overloaded
    world.standin.failing = 503
    world.clock.advance(seconds=61)
    assert world.deliverer().run_once().retried == 1
    (row,) = pending(world.engine)
    assert row.attempts == 3 and row.last_error.startswith("503")

    world.standin.failing = None
    world.clock.advance(seconds=121)
    assert world.deliverer().run_once().delivered == 1
    assert pending(world.engine) == []
    assert world.standin.sends_of(_lower(code)) == 1
    assert list(world.standin.prescriptions) == [_lower(code)]
    assert world.standin.invalid == []


class CrashAfterSend(NationalClient):
    """The worker's process dies once the request has gone out, before the row is marked."""

    def send_prescription(self, payload: dict[str, Any], facility: str, certificate: str) -> Any:
        super().send_prescription(payload, facility, certificate)
        raise SystemExit("killed")


def test_a_crash_between_send_and_mark_is_delivered_once(world: World) -> None:
    code, _ = world.issue()
    base = world.client()
    crashing = CrashAfterSend(
        base.base_url,
        base.tokens,
        facilities=base.facilities,
        doctors=base.doctors,
        clock=world.clock,
    )
    with pytest.raises(SystemExit):
        world.deliverer(crashing).run_once()
    assert _lower(code) in world.standin.prescriptions
    (row,) = pending(world.engine)
    assert row.claimed_by is not None  # still claimed by the dead worker

    assert world.deliverer().run_once().claimed == 0  # its lease has not run out
    world.clock.advance(minutes=3)
    report = world.deliverer().run_once()
    assert (report.delivered, report.duplicates) == (1, 1)
    assert pending(world.engine) == []
    assert list(world.standin.prescriptions) == [_lower(code)]  # stored once
    world.clock.advance(days=1)
    assert world.deliverer().run_once().claimed == 0
    assert world.standin.sends_of(_lower(code)) == 2  # the first send and the recognised one


def test_a_refusal_is_a_task_of_the_prescribing_facility_only(world: World) -> None:
    code, request_ids = world.issue()
    world.standin.refuse_next("Bác sĩ chưa được cấp mã liên thông tại cơ sở này")
    report = world.deliverer().run_once()
    assert (report.refused, report.delivered) == (1, 0)
    (row,) = rows(world.engine, [code])
    assert row.status == "refused" and row.task_id == report.tasks[0]

    doctor_a = world.staff("bs.an", A)
    query = doctor_a.parse_query("Task", [("code", f"{TASK_SYSTEM}|prescription-refused")])
    (found,) = doctor_a.search(query).matches
    task = found.content or {}
    assert task["status"] == "requested"
    assert task["owner"] == {"reference": f"Organization/{world.ids['org_a']}"}
    assert task["focus"] == {"reference": f"MedicationRequest/{request_ids[0]}"}
    assert "chưa được cấp mã liên thông" in task["description"] and code in task["description"]

    doctor_b = world.staff("bs.binh", B)
    assert doctor_b.search(doctor_b.parse_query("Task", [])).matches == []
    with pytest.raises(FhirError):
        doctor_b.read("Task", found.id)

    # refused rows are not sent again; the Task is the server's, not a client's to write
    world.clock.advance(days=1)
    assert world.deliverer().run_once().claimed == 0
    forged = {k: v for k, v in task.items() if k not in ("id", "meta")}
    with pytest.raises(FhirError, match="national prescription"):
        world.system_a.create(forged, "Task")


def test_two_workers_in_parallel_send_each_prescription_once(world: World) -> None:
    codes = [world.issue(lines=1)[0] for _ in range(16)]
    workers = [world.deliverer(batch=3, worker=f"w{n}") for n in range(2)]
    start = threading.Barrier(2)
    delivered = [0, 0]

    def work(n: int) -> None:
        start.wait()
        while True:
            report = workers[n].run_once()
            delivered[n] += report.delivered
            if report.claimed == 0:
                return

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(delivered) == 16 and pending(world.engine) == []
    assert all(world.standin.sends_of(_lower(c)) == 1 for c in codes)
    assert sorted(world.standin.prescriptions) == sorted(_lower(c) for c in codes)
    assert world.standin.invalid == []


def _utc(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
