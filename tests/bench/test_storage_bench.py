"""The disk figures ``sokhoe bench`` prints (``bench/disk.py``): every page of the file is in a
part, and the parts show the JSON kept once and compressed."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

from sokhoe.access.guard import platform_repository
from sokhoe.bench.disk import part, postgres_footprint, sqlite_footprint
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.partitions import partitions_of
from tests.conftest import _truncate


def test_bytes_per_resource_by_part(tmp_path: Path) -> None:
    path = tmp_path / "disk.db"
    store = SqlStore(f"sqlite:///{path}")
    repo = platform_repository(store, "http://bench/fhir", name="disk-test")
    docs = [
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
            "note": [
                {"text": f"Lần đo {i + k}: nhịp tim đo tại trạm y tế xã sau 5 phút nghỉ."}
                for k in range(20)
            ],
        }
        for i in range(600)
    ]
    for doc in docs:
        repo.create(doc, "Observation")
    store.close()  # folds the WAL into the file
    disk = sqlite_footprint(path, len(docs))
    parts = disk["parts_per_resource"]
    assert abs(sum(parts.values()) - disk["bytes_per_resource"]) <= len(parts)
    plain = sum(len(orjson.dumps(d)) for d in docs) / len(docs)
    # the JSON once and compressed, with its version rows and their indexes, takes less than
    # one plain copy of it (twice uncompressed, as before, was over twice as much)
    assert plain > 1500
    assert parts["resources and history"] < plain
    assert part("ix_sp_token_0") == part("sp_token") == part("token_system") == "search index"
    assert part("sqlite_autoindex_resource_history_1") == "resources and history"


def test_postgres_bytes_per_resource_count_every_partition(pg_partitioned_url: str) -> None:
    store = SqlStore(pg_partitioned_url, migrate_schema=False)
    _truncate(store)
    repo = platform_repository(store, "http://bench/fhir", name="disk-test")
    for n in range(8):
        repo.update(
            {"resourceType": "Patient", "id": f"d{n}", "gender": "female"}, "Patient", f"d{n}"
        )
    store.close()
    disk = postgres_footprint(pg_partitioned_url, 8)
    parts = disk["parts_per_resource"]
    assert abs(sum(parts.values()) - disk["bytes_per_resource"]) <= len(parts)
    # the partitions (the parents hold no pages) and the key table count with their parts
    assert part("resource_p03") == part("resource_key") == "resources and history"
    assert part("sp_token_p03") == "search index"
    engine = create_engine(pg_partitioned_url)
    with engine.connect() as conn:
        in_partitions = sum(
            conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name}).scalar_one()
            for table in ("resource", "resource_history")
            for name in partitions_of(conn, table)
        )
    engine.dispose()
    assert in_partitions > 0
    assert parts["resources and history"] * 8 >= in_partitions
