"""Where the project's shared sample data is (``shared/data``: the Synthea bundles and bulk
export, the SQL on FHIR suite), for the benchmarks and the tests that use it as it is."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    """``shared/data`` beside the checkout (or any ancestor), or ``SOKHOE_SHARED_DATA``."""
    override = os.environ.get("SOKHOE_SHARED_DATA")
    candidates = [Path(override)] if override else []
    candidates += [p / "shared" / "data" for p in Path(__file__).resolve().parents]
    candidates.append(Path("/work/shared/data"))
    for candidate in candidates:
        if (candidate / "synthea").is_dir():
            return candidate
    raise FileNotFoundError(
        "The shared sample data (synthea/, synthea-bulk-10/) was not found beside the "
        "checkout; set SOKHOE_SHARED_DATA to its folder"
    )
