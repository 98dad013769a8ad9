"""Two pharmacies racing for the same prescription: exactly one wins, the loser writes nothing
(SQLite and PostgreSQL, real concurrent HTTP requests to a running server); and a dispense that
read the prescription before another one committed is refused by the version it read."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

import sokhoe.prescribing.dispense as dispensing
from sokhoe.access.prescription_code import present
from sokhoe.operations.dispense import run_dispense
from sokhoe.operations.prescribe import run_prescribe
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.prescribing.dispense import INVOICE_SYSTEM, NotDispensable
from sokhoe.store.sql import SqlStore
from tests.browser import free_port
from tests.conftest import module_store
from tests.prescribing.rx_world import (
    PASSWORD,
    PHARMACIES,
    A,
    P,
    Q,
    RxWorld,
    line,
    make_rx_world,
    parameters,
)

ROUNDS = 6


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RxWorld, int]]:
    folder = tmp_path_factory.mktemp("dispense-race")
    store: SqlStore = module_store(request, folder, "dispense_race")
    port = free_port()
    rx = make_rx_world(
        folder, f"http://127.0.0.1:{port}", store if request.param == "postgres" else None
    )
    server = uvicorn.Server(
        uvicorn.Config(rx.world.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield rx, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def post(port: int, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    """One request on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def sign_in(port: int, username: str) -> str:
    status, answer = post(port, "/auth/staff/sign-in", {"username": username, "password": PASSWORD})
    assert status == 200, answer
    return str(answer["access_token"])


def dispense_all(code: str, invoice: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "code", "valueString": code},
        {"name": "invoice", "valueString": invoice},
    ]
    for request in lines:
        params.append(
            {
                "name": "line",
                "part": [
                    {
                        "name": "request",
                        "valueReference": {"reference": f"MedicationRequest/{request['id']}"},
                    },
                    {"name": "quantity", "valueQuantity": request["dispenseRequest"]["quantity"]},
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": params}


def race(port: int, tokens: dict[str, str], body: Any) -> dict[str, tuple[int, Any]]:
    """Both pharmacies post ``body`` at once, each on a connection of its own."""
    barrier = threading.Barrier(2)
    answers: dict[str, tuple[int, Any]] = {}

    def one(pharmacy: str) -> None:
        barrier.wait()  # both requests leave together
        answers[pharmacy] = post(port, "/fhir/MedicationDispense/$dispense", body, tokens[pharmacy])

    threads = [threading.Thread(target=one, args=(p,)) for p in (P, Q)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def dispenses(rx: RxWorld, invoice_of: str, invoice: str) -> int:
    query = rx.platform.parse_query(
        "MedicationDispense",
        [("identifier", f"{INVOICE_SYSTEM}/{invoice_of}|{invoice}"), ("_summary", "count")],
    )
    return rx.platform.search(query).total or 0


def test_two_pharmacies_race_and_exactly_one_wins(served: tuple[RxWorld, int]) -> None:
    rx, port = served
    tokens = {code: sign_in(port, username) for code, (_n, _c, username) in PHARMACIES.items()}
    doctor = rx.doctor("bs.an", A)
    losers: Counter[str] = Counter()
    for n in range(ROUNDS):
        pid, eid = rx.person(A, f"Người mua thuốc {n}")
        issued = run_prescribe(
            doctor,
            parameters(pid, eid, [line("PARACETAMOL-500"), line("AMLODIPIN-5", per_day=1)]),
            datetime.now(UTC),
        )
        answers = race(port, tokens, dispense_all(issued.code, f"R{n}", issued.requests))
        statuses = sorted(status for status, _ in answers.values())
        assert statuses == [201, 409], answers
        winner = next(p for p, (status, _) in answers.items() if status == 201)
        loser = Q if winner == P else P
        outcome = answers[loser][1]
        assert outcome["resourceType"] == "OperationOutcome"
        told = outcome["issue"][0]["diagnostics"]
        assert "already dispensed in full" in told or "at the same moment" in told, told
        losers["read the winner's dispense" if "in full" in told else "lost on the version"] += 1
        assert dispenses(rx, winner, f"R{n}") == 2
        assert dispenses(rx, loser, f"R{n}") == 0  # the loser wrote nothing
        lines = rx.platform.search(
            rx.platform.parse_query(
                "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{issued.code}")]
            )
        ).matches
        assert {m.content["status"] for m in lines if m.content} == {"completed"}
        assert {m.version_id for m in lines} == {2}  # one dispense, one new version each
    print(f"\nlosers were told: {dict(losers)}")  # noqa: T201


def test_a_dispense_that_read_before_another_committed_writes_nothing(
    served: tuple[RxWorld, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rx, _port = served
    pid, eid = rx.person(A, "Trần Văn Chậm")
    issued = run_prescribe(
        rx.doctor("bs.an", A), parameters(pid, eid, [line("PARACETAMOL-500")]), datetime.now(UTC)
    )
    (rid,) = [r["id"] for r in issued.requests]
    chau = rx.pharmacist("ds.chau", P)
    with chau.snapshot() as tx:
        stale = present(chau, tx, issued.code)  # Châu's read...
    assert stale is not None
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "code", "valueString": issued.code},
            {"name": "invoice", "valueString": "SLOW-1"},
            {
                "name": "line",
                "part": [
                    {
                        "name": "request",
                        "valueReference": {"reference": f"MedicationRequest/{rid}"},
                    },
                    {"name": "quantity", "valueQuantity": {"value": 10}},
                ],
            },
        ],
    }
    fast = {
        **body,
        "parameter": [
            body["parameter"][0],
            {"name": "invoice", "valueString": "FAST-1"},
            body["parameter"][2],
        ],
    }
    run_dispense(rx.pharmacist("ds.phuc", Q), fast, datetime.now(UTC))  # ...then Phúc's commit
    monkeypatch.setattr(dispensing, "present", lambda *_a, **_k: stale)
    with pytest.raises(NotDispensable, match="at the same moment"):
        run_dispense(chau, body, datetime.now(UTC))  # 10 + 10 of 15, had the read been trusted
    assert dispenses(rx, P, "SLOW-1") == 0
    assert dispenses(rx, Q, "FAST-1") == 1
