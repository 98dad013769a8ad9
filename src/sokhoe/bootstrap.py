"""First start of ``make run``: fill an empty store with the synthetic demo population."""

from __future__ import annotations

import logging
from pathlib import Path

from sokhoe.fhir.bundles import process_bundle
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths

log = logging.getLogger("sokhoe.bootstrap")


def publish_registry(repo: FhirRepository) -> int:
    """Store the platform's NamingSystems (fixed ids; unchanged ones make no new version)."""
    from sokhoe.registry.naming import registry_resources

    changed = 0
    for resource in registry_resources():
        outcome = repo.update(resource, resource["resourceType"], resource["id"])
        changed += outcome.status == 201 or outcome.resource.version_id > 1
    return changed


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
    add_duplicates(repo, patients, seed)
    return True


DEMO_DUPLICATE_RATE = 0.03
"""Share of demo people registered again elsewhere with typos: what the review queue shows."""


def add_duplicates(repo: FhirRepository, patients: int, seed: int) -> None:
    """Register some demo people a second time, noisily (and some look-alikes), then let the
    master patient index link the certain ones and queue the rest for review."""
    from tqdm import tqdm

    from sokhoe.demo.duplicates import make_duplicates
    from sokhoe.mpi.linking import link_all
    from sokhoe.mpi.matching import Matcher

    data = make_duplicates(patients, seed, DEMO_DUPLICATE_RATE)
    entries = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in data.extras
    ]
    process_bundle(repo, {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    with tqdm(total=len(data.extras), desc="matching", unit=" records", disable=None) as bar:
        report = link_all(repo, Matcher(repo), [p["id"] for p in data.extras], bar.update)
    print(  # noqa: T201
        f"{len(report.merged)} duplicates linked automatically, {report.queued} pairs await "
        "review (GET /fhir/Patient/$review-queue)"
    )
