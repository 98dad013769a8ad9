"""Runners of the warehouse views on other engines than the in-process DuckDB build.

- :mod:`sokhoe.warehouse.runners.spark`: the same ViewDefinitions, the same FHIRPath engine and
  the same pseudonyms on Apache Spark, for national-scale NDJSON (``sokhoe warehouse spark``).

Each runner imports its engine lazily, so importing this package costs nothing.
"""

from __future__ import annotations

__all__: list[str] = []
