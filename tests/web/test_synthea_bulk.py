"""The Synthea bulk NDJSON export in shared/data loads via ``load`` on every store, and loading
it again changes nothing."""

from __future__ import annotations

import json

from sokhoe.access.guard import platform_repository
from sokhoe.interop.load import load_paths
from sokhoe.store import FhirStore
from tests.conftest import BASE, SHARED_DATA

BULK = SHARED_DATA / "synthea-bulk-10"


def test_bulk_ndjson_loads(store: FhirStore) -> None:
    repo = platform_repository(store, f"{BASE}/fhir")
    report = load_paths(repo, [BULK])
    assert report.errors == []
    lines = sum(1 for f in BULK.glob("*.ndjson") for line in f.open() if line.strip())
    assert report.resources == lines
    for f in sorted(BULK.glob("*.ndjson")):
        first = json.loads(f.open().readline())
        got = repo.read(first["resourceType"], first["id"])
        assert got.content is not None
        assert got.content["id"] == first["id"]
    # idempotent: nothing changes the second time (checked in this process: a worker process
    # costs more to start than it saves here, and test_load.py holds workers to inline)
    again = load_paths(repo, [BULK], workers=0)
    assert again.errors == []
    with store.begin() as tx:
        _, total = tx.history(None, None, None, 1, 0)
    assert total == lines
