"""``POST /fhir/$import`` of NDJSON: streamed from the body, a batch per transaction, bad lines
reported with their line numbers and skipped (they change nothing), access per line."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from sokhoe.interop.bulk.ndjson_import import split_lines
from sokhoe.store import MemoryStore
from sokhoe.store.ports import FhirStore
from tests.bulk_sample import BULK_10
from tests.interop.test_bulk_export import (
    QR_AN,
    check_in,
    client_auth,
    held,
    make_api,
    observation,
    platform_auth,
)

NDJSON = {"Content-Type": "application/fhir+ndjson"}


@pytest.fixture
def api(store: FhirStore, tmp_path: Path) -> Iterator[TestClient]:
    with make_api(store, tmp_path) as c:
        yield c


@pytest.fixture
def memory_api(tmp_path: Path) -> Iterator[TestClient]:
    with make_api(MemoryStore(), tmp_path) as c:
        yield c


def _chunks(paths: list[Path], size: int = 10_000) -> Iterator[bytes]:
    """The files as a stream of small chunks cutting lines anywhere (never one whole body)."""
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(size):
                yield chunk


def _result(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resourceType"] == "Parameters"
    out: dict[str, Any] = {"error": []}
    for p in body["parameter"]:
        if p["name"] == "error":
            parts = {x["name"]: x for x in p["part"]}
            out["error"].append(
                (
                    parts["line"]["valueInteger"],
                    parts["status"]["valueInteger"],
                    parts["outcome"]["resource"]["issue"][0]["diagnostics"],
                )
            )
        else:
            out[p["name"]] = p["valueInteger"]
    return out


def _lines(*resources: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in resources)


def _patient(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Lê"}], **extra}


def test_import_of_the_bulk_files_writes_every_line(api: TestClient, store: FhirStore) -> None:
    files = sorted(BULK_10.glob("*.ndjson"))
    # dependency order as sokhoe load uses: what others reference first
    first = ["Organization", "Location", "Practitioner", "PractitionerRole", "Patient"]
    files.sort(
        key=lambda p: (
            first.index(p.stem.split(".")[0]) if p.stem.split(".")[0] in first else 9,
            p.name,
        )
    )
    r = api.post("/fhir/$import", content=_chunks(files), headers={**NDJSON, **platform_auth(api)})
    result = _result(r)
    assert result == {
        "lines": 7160,
        "written": 7160,
        "unchanged": 0,
        "refused": 0,
        "error": [],
    }
    expected: Counter[str] = Counter()
    for path in files:
        expected[path.stem.split(".")[0]] += sum(1 for x in path.read_bytes().splitlines() if x)
    assert Counter(k[0] for k in held(store).elements()) == expected
    # the same file again changes nothing (update-as-create of identical content)
    again = _result(
        api.post(
            "/fhir/$import", content=_chunks(files[:3]), headers={**NDJSON, **platform_auth(api)}
        )
    )
    assert again["written"] == 0
    assert again["unchanged"] == again["lines"]


def test_bad_lines_are_reported_and_change_nothing(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    body = _lines(
        _patient("p1"),
        _patient("p2"),
        b'{"resourceType": "Patient", "id": "p3", ',  # line 3: cut short
        _patient("p4"),
        _patient("p5", gender="sometimes"),  # line 5: not a valid code
        b"   ",  # line 6: blank, ignored
        {"resourceType": "Nonsense", "id": "x"},  # line 7
        {"resourceType": "Patient"},  # line 8: no id
        observation("p1") | {"id": "o1"},  # line 9: fine
        observation("p2")
        | {"id": "o2", "subject": {"reference": "Patient?identifier=urn:x|nobody"}},  # line 10
    )
    result = _result(memory_api.post("/fhir/$import", content=body, headers={**NDJSON, **auth}))
    lines = [(n, status) for n, status, _ in result["error"]]
    assert lines == [(3, 400), (5, 422), (7, 404), (8, 400), (10, 404)]
    assert result["lines"] == 9  # blank lines are not resources
    assert result["written"] == 4
    assert result["refused"] == 5
    assert "line 3" in result["error"][0][2]
    store: FhirStore = memory_api.app.state.store  # type: ignore[attr-defined]
    assert sorted(held(store)) == [
        ("Observation", "o1"),
        ("Patient", "p1"),
        ("Patient", "p2"),
        ("Patient", "p4"),
    ]


def test_a_failing_batch_is_retried_line_by_line(tmp_path: Path) -> None:
    """A line that fails only when written (a conditional reference matching nothing) makes
    its batch's transaction fail; the batch is then written line by line, so the other lines
    still land and the bad one is the only one reported."""
    with make_api(MemoryStore(), tmp_path) as api:
        auth = platform_auth(api)
        good = [observation("p1") | {"id": f"o{n}"} for n in range(5)]
        bad = observation("p1") | {"id": "bad", "subject": {"reference": "Patient?name=nobody"}}
        body = _lines(_patient("p1"), *good[:2], bad, *good[2:])
        result = _result(api.post("/fhir/$import", content=body, headers={**NDJSON, **auth}))
        assert [e[0] for e in result["error"]] == [4]
        assert result["written"] == 6
        store: FhirStore = api.app.state.store  # type: ignore[attr-defined]
        assert ("Observation", "bad") not in held(store)
        assert sum(1 for k in held(store) if k[0] == "Observation") == 5


def test_facility_import_is_limited_to_its_patients(api: TestClient, store: FhirStore) -> None:
    platform = platform_auth(api)
    hcm = client_auth(api, ["system/*.cruds"], "79001")
    an = check_in(api, hcm, QR_AN)
    assert (
        _result(
            api.post(
                "/fhir/$import", content=_lines(_patient("other")), headers={**NDJSON, **platform}
            )
        )["written"]
        == 1
    )
    mrn = {"system": "https://fhir.sokhoe.vn/sid/mrn/79001", "value": "HS-1"}
    body = _lines(
        observation(an) | {"id": "mine"},  # line 1: An is a patient of 79001
        observation("other") | {"id": "theirs"},  # line 2: no relationship
        _patient("other", name=[{"family": "Sửa"}]),  # line 3: updating someone else's record
        observation("new1") | {"id": "about-new"},  # line 4: the Patient comes on line 5
        _patient("new1", identifier=[mrn]),  # line 5: registered here by this file
    )
    result = _result(api.post("/fhir/$import", content=body, headers={**NDJSON, **hcm}))
    assert [(n, s) for n, s, _ in result["error"]] == [(2, 403), (3, 403)]
    assert result["written"] == 3
    kept = held(store)
    assert ("Observation", "mine") in kept
    assert ("Observation", "about-new") in kept
    assert ("Observation", "theirs") not in kept
    assert store_family(store, "other") == "Lê"
    # a caller whose scopes lack the type is refused per line
    reader = client_auth(api, ["system/*.rs"], "01002")
    result = _result(
        api.post("/fhir/$import", content=_lines(_patient("x1")), headers={**NDJSON, **reader})
    )
    assert [(n, s) for n, s, _ in result["error"]] == [(1, 403)]


def store_family(store: FhirStore, pid: str) -> str:
    with store.begin() as tx:
        found = tx.read("Patient", pid)
    assert found is not None and found.content is not None
    return str(found.content["name"][0]["family"])


def test_import_needs_ndjson(memory_api: TestClient) -> None:
    r = memory_api.post(
        "/fhir/$import",
        content=_lines(_patient("p1")),
        headers={"Content-Type": "application/fhir+json", **platform_auth(memory_api)},
    )
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"
    assert memory_api.post("/fhir/$import", content=b"", headers=NDJSON).status_code == 401


async def _collect(chunks: list[bytes], max_line: int) -> list[tuple[int, bytes | None]]:
    async def stream() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    return [x async for x in split_lines(stream(), max_line)]


def test_split_lines_streams_across_chunks_and_drops_overlong_lines() -> None:
    data = b'{"a":1}\n\n{"b":' + b"2}\r\n" + b"x" * 50 + b"\n" + b'{"c":3}'
    for size in (1, 3, 7, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        got = asyncio.run(_collect(chunks, max_line=20))
        assert got == [(1, b'{"a":1}'), (3, b'{"b":2}\r'), (4, None), (5, b'{"c":3}')]
