"""The demo's warehouse: what ``make run`` shows on the dashboard over the synthetic people.

Coverage of the electronic health record is measured against a population denominator, which
in production is the statistics office's table per province and commune
(``SOKHOE_WAREHOUSE_POPULATION``). The demo has no real population, so it invents one:
**synthetic** and only meant to make the coverage chart look like a plausible roll-out. For
every province the number of living demo residents with a record is divided by a coverage
factor drawn (seeded) between 0.80 and 0.99, rounded, and shared among its communes: the demo
shows coverage between 80% and 99% per province (give or take rounding, in provinces with
only a few demo people), and never more people with a record than residents.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path
from typing import Final

from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.warehouse.build import BuildReport, Warehouse, table, views, warehouse_key

DEMO_POPULATION_FILE: Final = "population-demo.csv"
COVERAGE_RANGE: Final = (0.80, 0.99)
"""Bounds of the synthetic share of residents who have a record (per commune)."""


def residents_with_record(store: FhirStore, warehouse: Warehouse) -> Counter[tuple[str, str]]:
    """Living people with a record per (province code, commune code), with the area codes the
    warehouse itself derives (same view, same place registry), so the denominator joins."""
    patient_view = next(v for v in views() if table(v) == "patient")
    counts: Counter[tuple[str, str]] = Counter()
    for row in warehouse.rows(patient_view, store.iter_all("Patient")):
        if row.get("deceased") or row.get("province_code") is None:
            continue
        counts[(str(row["province_code"]), str(row.get("commune_code") or ""))] += 1
    return counts


def write_demo_population(counts: Counter[tuple[str, str]], path: Path, seed: int) -> int:
    """Write the synthetic denominator CSV (``province_code,commune_code,population``) and
    return the total population written. Deterministic for a seed and the same counts.

    The coverage factor is drawn per province and applied to the province's total (rounding
    each commune's handful of demo people on its own would put most small communes at 100%);
    the residents without a record are then shared among the province's communes in
    proportion to those with one (largest remainder), so no commune has fewer residents than
    records and the communes add up to the province.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, not a secret
    low, high = COVERAGE_RANGE
    by_province: dict[str, dict[str, int]] = {}
    for (province, commune), have in sorted(counts.items()):
        by_province.setdefault(province, {})[commune] = have
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["province_code", "commune_code", "population"])
        for province, communes in by_province.items():
            have = sum(communes.values())
            without = max(0, round(have / rng.uniform(low, high)) - have)
            for commune, population in _share(communes, without).items():
                writer.writerow([province, commune, population])
                total += population
    return total


def _share(communes: dict[str, int], extra: int) -> dict[str, int]:
    """``communes`` plus ``extra`` people spread in proportion (largest-remainder method)."""
    have = sum(communes.values())
    exact = {c: extra * n / have for c, n in communes.items()}
    added = {c: int(x) for c, x in exact.items()}
    left = extra - sum(added.values())
    for commune in sorted(exact, key=lambda c: (added[c] - exact[c], c))[:left]:
        added[commune] += 1
    return {c: n + added[c] for c, n in communes.items()}


def build_demo_warehouse(store: FhirStore, settings: Settings, seed: int = 1) -> BuildReport:
    """Write ``var/population-demo.csv`` (synthetic, see the module docstring) and build the
    warehouse of ``store`` into ``settings.warehouse_dir`` with it as the denominator.

    A configured ``warehouse_population`` (a real table) wins over the synthetic one.
    """
    warehouse = Warehouse(
        settings.warehouse_dir, warehouse_key(settings.var_dir, settings.warehouse_key)
    )
    population = settings.warehouse_population
    if population is None:
        population = settings.var_dir / DEMO_POPULATION_FILE
        write_demo_population(residents_with_record(store, warehouse), population, seed)
    return warehouse.build(store, population=population)


__all__ = [
    "COVERAGE_RANGE",
    "DEMO_POPULATION_FILE",
    "build_demo_warehouse",
    "residents_with_record",
    "write_demo_population",
]
