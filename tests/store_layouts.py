"""The ``store`` fixture over every backend and PostgreSQL's partitioned layout too, for the
tests of the store and of what writes through it (``tests/store/conftest.py``; a module opts in
with ``from tests.store_layouts import store``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sokhoe.store import FhirStore
from tests.conftest import PARTITIONED_BACKENDS, open_test_store


@pytest.fixture(params=PARTITIONED_BACKENDS, name="store")
def store_on_every_layout(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    yield from open_test_store(request, tmp_path)
