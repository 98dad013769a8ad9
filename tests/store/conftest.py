"""The store's tests run on every backend, PostgreSQL partitioned by patient included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sokhoe.store import FhirStore
from tests.conftest import PARTITIONED_BACKENDS, open_test_store


@pytest.fixture(params=PARTITIONED_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    yield from open_test_store(request, tmp_path)
