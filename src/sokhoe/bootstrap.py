"""First start of ``make run``: fill an empty store with the synthetic demo population."""

from __future__ import annotations

import logging
from pathlib import Path

from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths

log = logging.getLogger("sokhoe.bootstrap")


def store_is_empty(repo: FhirRepository) -> bool:
    with repo.store.begin() as tx:
        _, total = tx.history(None, None, None, 1, 0)
    return total == 0


def ensure_demo(repo: FhirRepository, patients: int, var_dir: Path, seed: int = 1) -> bool:
    """Generate and load ``patients`` synthetic people when the store is empty.

    Returns True when it loaded something. The generated files are kept under ``var/demo`` so a
    later ``sokhoe load`` can reuse them.
    """
    if not store_is_empty(repo):
        return False
    from tqdm import tqdm

    from sokhoe.demo import write_demo

    out = var_dir / "demo" / f"{patients}-{seed}"
    print(f"Empty database: generating {patients} synthetic people into {out} …")  # noqa: T201
    write_demo(out, patients, seed, "bundles", progress=True)
    with tqdm(unit=" resources", desc="loading demo", disable=None) as bar:
        report = load_paths(repo, [out], progress=bar.update)
    for err in report.errors:
        log.error("demo load: %s", err)
    return True
