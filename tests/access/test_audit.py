"""The audit log: valid AuditEvents, a hash chain that detects edits and deletions, concurrent
writers that never fork it, and the citizen's listing — on every backend (STYLE.md §9)."""

from __future__ import annotations

import base64
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, text, update
from sqlalchemy import event as sa_event
from typer.testing import CliRunner

from sokhoe.access.audit import GENESIS, AuditLog, chain_hash
from sokhoe.access.db import access_engine
from sokhoe.access.principal import Principal
from sokhoe.cli import app
from sokhoe.fhir.validation import find_issues
from sokhoe.store import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2025, 7, 1, 8, 30, 15, 123456, tzinfo=HANOI)

DOCTOR = Principal("staff", "bs.lan", "BS. Nguyễn Thị Lan", role="doctor", facility="01001")
CITIZEN = Principal("citizen", "0912345678", "Trần Văn Bình", patient_ids=("p1",))
HIS = Principal("client", "his-bachmai", "HIS Bạch Mai", role="system", facility="01001")


@pytest.fixture
def engine(store: FhirStore) -> Engine:
    return access_engine(store)


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    return AuditLog(engine)


def _fill(log: AuditLog, n: int = 6) -> None:
    for i in range(n):
        log.record(DOCTOR, "read", "success", patient_ids=[f"p{i % 2}"], when=T0 + timedelta(i))


def test_every_action_is_a_valid_audit_event(log: AuditLog) -> None:
    actions = ["read", "vread", "search", "create", "update", "delete", "history"]
    actions += ["operation", "export", "login", "login-failed", "break-the-glass", "consent"]
    for i, action in enumerate(actions):
        log.record(
            DOCTOR,
            action,
            ["success", "denied", "error"][i % 3],
            patient_ids=["p1"],
            entities=["Observation/o1", "Patient/p1"],
            query="Observation?subject=Patient/p1&code=8867-4",
            reason="khám cấp cứu",
            source="203.113.1.7",
            when=T0,
        )
    log.record(None, "login-failed", "denied", source="203.113.1.8")
    events, total = log.for_patient(["p1"], count=100)
    assert total == len(actions)
    for event in events:
        assert find_issues(event) == [], event
    with log.engine.connect() as conn:
        stored = [r.content for r in conn.execute(audit_event.select())]
    assert len(stored) == len(actions) + 1
    for event in stored:
        assert find_issues(event) == [], event


def test_event_content(log: AuditLog) -> None:
    seq = log.record(
        DOCTOR,
        "search",
        "success",
        patient_ids=["p1", "p2", "p1"],
        query="Patient?name=Nguyen",
        source="10.1.2.3",
        when=T0,
    )
    assert seq == 2  # one row per distinct patient
    with log.engine.connect() as conn:
        rows = conn.execute(audit_event.select().order_by(audit_event.c.seq)).all()
    assert [r.patient_id for r in rows] == ["p1", "p2"]
    assert rows[0].prev_hash == GENESIS and rows[1].prev_hash == rows[0].hash
    event = rows[1].content
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "search-type"}
    ]
    assert event["action"] == "E" and event["outcome"] == "0"
    assert event["recorded"] == "2025-07-01T01:30:15.123456+00:00"
    agent = event["agent"][0]
    assert agent["requestor"] is True
    assert agent["who"]["identifier"] == {
        "system": "https://fhir.sokhoe.vn/sid/user",
        "value": "bs.lan",
    }
    assert agent["role"] == [{"text": "doctor"}]
    assert agent["network"]["address"] == "10.1.2.3"
    assert event["source"] == {"site": "01001", "observer": {"display": "sokhoe"}}
    refs = [e["what"]["reference"] for e in event["entity"] if "what" in e]
    assert refs == ["Patient/p2"]  # never another patient's id
    (query,) = [e["query"] for e in event["entity"] if "query" in e]
    assert base64.b64decode(query).decode() == "Patient?name=Nguyen"


def test_login_and_break_the_glass(log: AuditLog) -> None:
    log.record(CITIZEN, "login", "success", when=T0)
    log.record(DOCTOR, "break-the-glass", "success", patient_ids=["p9"], reason="bất tỉnh")
    with log.engine.connect() as conn:
        rows = conn.execute(audit_event.select().order_by(audit_event.c.seq)).all()
    login, btg = rows[0], rows[1]
    assert login.patient_id is None
    assert login.content["type"] == {
        "system": "http://dicom.nema.org/resources/ontology/DCM",
        "code": "110114",
        "display": "User Authentication",
    }
    assert login.content["agent"][0]["who"]["identifier"]["system"] == (
        "https://fhir.sokhoe.vn/sid/phone"
    )
    assert "site" not in login.content["source"]
    purpose = btg.content["purposeOfEvent"][0]
    assert purpose["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    assert purpose["coding"][0]["code"] == "ETREAT"
    assert btg.content["outcomeDesc"] == "bất tỉnh"
    client_seq = log.record(HIS, "create", "error", patient_ids=["p9"])
    events, _ = log.for_patient(["p9"])
    assert events[0]["id"] == str(client_seq)
    assert events[0]["outcome"] == "8"
    assert events[0]["agent"][0]["who"]["identifier"]["system"] == (
        "https://fhir.sokhoe.vn/sid/client"
    )


def test_invalid_action_or_outcome(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="action"):
        log.record(DOCTOR, "browse", "success")
    with pytest.raises(ValueError, match="outcome"):
        log.record(DOCTOR, "read", "maybe")
    assert log.verify().checked == 0


def test_empty_and_intact_chain_verifies(log: AuditLog) -> None:
    assert log.verify().ok
    _fill(log, 7)
    report = log.verify(batch=3)  # crosses batch boundaries
    assert report.ok and report.checked == 7 and report.first_bad_seq is None
    assert report.head != GENESIS


def test_edited_content_is_detected(log: AuditLog) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        content = conn.execute(audit_event.select().where(audit_event.c.seq == 4)).one().content
        content["agent"][0]["who"]["display"] = "someone else"
        conn.execute(update(audit_event).where(audit_event.c.seq == 4).values(content=content))
    report = log.verify(batch=2)
    assert not report.ok and report.first_bad_seq == 4
    assert "altered" in report.reason


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET agent = 'staff:nobody' WHERE seq = 3",
        "UPDATE audit_event SET patient_id = 'p7' WHERE seq = 3",
        "UPDATE audit_event SET outcome = 'denied' WHERE seq = 3",
    ],
)
def test_edited_column_is_detected(log: AuditLog, statement: str) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        conn.execute(text(statement))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 3


def test_rehashed_row_is_detected_at_the_next(log: AuditLog) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_event SET agent = 'x', hash = :h WHERE seq = 3"), {"h": "f" * 64}
        )
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 3
    with log.engine.begin() as conn:  # a forger who also fixes the hash breaks the next link
        row = conn.execute(audit_event.select().where(audit_event.c.seq == 3)).one()
        forged = chain_hash(
            row.prev_hash,
            3,
            row.recorded,
            row.patient_id,
            row.agent,
            row.action,
            row.outcome,
            row.content,
        )
        conn.execute(update(audit_event).where(audit_event.c.seq == 3).values(hash=forged))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 4


def test_deleted_row_is_detected(log: AuditLog) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        conn.execute(delete(audit_event).where(audit_event.c.seq == 3))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 4 and report.checked == 2
    assert "missing" in report.reason


def test_deleted_first_row_is_detected(log: AuditLog) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        conn.execute(delete(audit_event).where(audit_event.c.seq == 1))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2


def test_swapped_rows_are_detected(log: AuditLog) -> None:
    _fill(log)
    with log.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET seq = 100 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_event SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_event SET seq = 3 WHERE seq = 100"))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2


def test_concurrent_writers_never_fork_the_chain(log: AuditLog) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                log.record(DOCTOR, "read", "success", patient_ids=[f"t{n}-{i}"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = log.verify(batch=30)
    assert report.ok and report.checked == 100
    with log.engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_event ORDER BY seq"))]
    assert seqs == list(range(1, 101))


def test_record_in_commits_with_the_callers_transaction(log: AuditLog) -> None:
    with pytest.raises(RuntimeError), log.engine.begin() as conn:
        log.record_in(conn, DOCTOR, "update", "success", patient_ids=["p1"])
        raise RuntimeError("the write failed")
    assert log.verify().checked == 0
    with log.engine.begin() as conn:
        assert log.record_in(conn, DOCTOR, "update", "success", patient_ids=["p1"]) == 1
    assert log.verify().ok and log.for_patient(["p1"])[1] == 1


def test_for_patient_newest_first_paged_with_total(log: AuditLog) -> None:
    for i in range(7):
        log.record(DOCTOR, "read", "success", patient_ids=["p1"], when=T0 + timedelta(hours=i))
        log.record(HIS, "search", "success", patient_ids=["p2", "p3"], query="Patient?name=x")
    log.record(CITIZEN, "login", "success")
    events, total = log.for_patient(["p1"], count=3)
    assert total == 7
    assert [e["recorded"][:13] for e in events] == [
        "2025-07-01T07",
        "2025-07-01T06",
        "2025-07-01T05",
    ]
    page3, total3 = log.for_patient(["p1"], count=3, offset=6)
    assert total3 == 7 and len(page3) == 1
    assert page3[0]["recorded"].startswith("2025-07-01T01:30")
    both, total_both = log.for_patient(["p1", "p3"], count=100)
    assert total_both == 14
    seqs = [int(e["id"]) for e in both]
    assert seqs == sorted(seqs, reverse=True)
    p3 = [e for e in both if e["agent"][0]["who"]["display"] == "HIS Bạch Mai"]
    assert len(p3) == 7
    for event in p3:  # the search text may name other people: not shown to the citizen
        assert all("query" not in e for e in event["entity"])
        assert find_issues(event) == []
    assert log.for_patient([]) == ([], 0)
    assert log.for_patient(["nobody"]) == ([], 0)


def test_cli_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url)
    try:
        log = AuditLog(store.writer)
        _fill(log)
        runner = CliRunner()
        result = runner.invoke(app, ["audit", "verify", "--db", url])
        assert result.exit_code == 0, result.output
        assert "ok" in result.output and "6 events" in result.output
        with store.writer.begin() as conn:
            conn.execute(text("UPDATE audit_event SET agent = 'staff:nobody' WHERE seq = 5"))
        result = runner.invoke(app, ["audit", "verify", "--db", url])
        assert result.exit_code == 1
        assert "seq 5" in result.output
    finally:
        store.close()


def _rewrite_tail(log: AuditLog, from_seq: int) -> None:
    """What an attacker with SQL access does to hide a row: change it and recompute every
    hash after it, so the chain alone still verifies."""
    with log.engine.begin() as conn:
        rows = conn.execute(
            audit_event.select().where(audit_event.c.seq >= from_seq).order_by(audit_event.c.seq)
        ).all()
        prev = rows[0].prev_hash
        for i, row in enumerate(rows):
            agent = "staff:nobody" if i == 0 else row.agent
            fields = (row.recorded, row.patient_id, agent, row.action, row.outcome, row.content)
            digest = chain_hash(prev, row.seq, *fields)
            conn.execute(
                update(audit_event)
                .where(audit_event.c.seq == row.seq)
                .values(agent=agent, prev_hash=prev, hash=digest)
            )
            prev = digest


def test_anchors_detect_a_cut_off_tail(log: AuditLog) -> None:
    _fill(log)
    anchor = log.head()
    assert anchor.seq == 6
    assert log.verify(anchors=[anchor]).ok
    with log.engine.begin() as conn:
        conn.execute(delete(audit_event).where(audit_event.c.seq >= 5))
    assert log.verify().ok  # the chain alone cannot tell
    report = log.verify(anchors=[anchor])
    assert not report.ok and "cut off" in report.reason and report.first_bad_seq == 5


def test_anchors_detect_a_rewritten_tail(log: AuditLog) -> None:
    _fill(log)
    anchors = [log.head()]
    _fill(log, 2)
    anchors.append(log.head())
    _rewrite_tail(log, 4)
    assert log.verify().ok  # recomputed hashes fool the chain alone
    report = log.verify(anchors=anchors)
    assert not report.ok and report.first_bad_seq == 6 and "rewritten" in report.reason


def test_audit_anchor_and_verify_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    anchors = tmp_path / "anchors.jsonl"
    store = SqlStore(url)
    try:
        log = AuditLog(store.writer)
        _fill(log)
        runner = CliRunner()
        result = runner.invoke(app, ["audit", "anchor", "--db", url, "--out", str(anchors)])
        assert result.exit_code == 0, result.output
        assert '"seq":6' in result.output
        args = ["audit", "verify", "--db", url, "--anchors", str(anchors)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "1 anchors match" in result.output, result.output
        with store.writer.begin() as conn:
            conn.execute(delete(audit_event).where(audit_event.c.seq == 6))
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "cut off" in result.output
        anchors.write_text("not json\n")
        result = runner.invoke(app, args)
        assert result.exit_code == 2
    finally:
        store.close()


def test_one_transactions_rows_chain_on_without_rereading_the_head(log: AuditLog) -> None:
    """The head is read once per transaction (it holds the chain until it ends); a rolled
    back transaction or another writer in between is seen by the next transaction."""
    heads: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "audit_event" in statement:
            heads.append(statement)

    sa_event.listen(log.engine, "before_cursor_execute", seen)
    try:
        with log.engine.begin() as conn:
            seqs = [
                log.record_in(conn, DOCTOR, "update", "success", patient_ids=[f"p{i}"])
                for i in range(3)
            ]
        assert seqs == [1, 2, 3] and len(heads) == 1
        with pytest.raises(RuntimeError), log.engine.begin() as conn:
            assert log.record_in(conn, DOCTOR, "update", "success", patient_ids=["p1"]) == 4
            raise RuntimeError("the write failed")
        log.record(HIS, "read", "success", patient_ids=["p9"])  # another transaction: seq 4
        with log.engine.begin() as conn:
            assert log.record_in(conn, DOCTOR, "update", "success", patient_ids=["a", "b"]) == 6
            assert log.record_in(conn, DOCTOR, "update", "success", patient_ids=["c"]) == 7
    finally:
        sa_event.remove(log.engine, "before_cursor_execute", seen)
    report = log.verify()
    assert report.ok and report.checked == 7
