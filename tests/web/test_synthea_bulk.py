"""The Synthea bulk NDJSON export in shared/data loads via ``load`` on every store, and loading
it again changes nothing.

The load is the one ``tests/bulk_sample.py`` makes once per test process for every test of the
sample (``test_bulk_export.py`` exports copies of it): its report is checked here, and the
reads and the second load run on a copy of the loaded store."""

from __future__ import annotations

import json

from sokhoe.access.guard import platform_repository
from sokhoe.interop.load import load_paths
from tests.bulk_sample import BULK_10 as BULK
from tests.bulk_sample import Loaded
from tests.conftest import BASE


def test_bulk_ndjson_loads(bulk_loaded: Loaded) -> None:
    store, report = bulk_loaded.store, bulk_loaded.report
    repo = platform_repository(store, f"{BASE}/fhir")
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
