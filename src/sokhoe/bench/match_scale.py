"""``$match`` at a national population without loading everyone's records.

``python -m sokhoe.bench.match_scale SIZE [--workdir DIR]`` generates the demo population's
SIZE people (the generator of ``sokhoe bench``, the same seed, so the same names, birth dates
and wards), writes only their Patients (and the facilities they are registered at), loads them
into a SQLite file through the door, and times ``$match`` for 300 of them typed again without
an identifier, as ``sokhoe bench`` does, counting whether the person came first.

``$match`` reads only Patients and their index rows, so its cost at a million people can be
measured in the 20 minutes this takes rather than the two hours of the full million-person
load. What it cannot show is the full file's page cache: a million people's every record is
about 25 GB, more than this machine's memory, while their Patients alone fit in it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

from sokhoe.bench.runner import _header, _ingest, _match_input
from sokhoe.bench.stats import timed
from sokhoe.demo.writer import transaction_bundle
from sokhoe.mpi.matching import Matcher
from sokhoe.operations.match import run_match

PER_FILE = 5000
SAMPLE = 300


def write_patients(out: Path, patients: int, seed: int) -> tuple[list[Path], list[dict[str, Any]]]:
    """The facilities' bundle and the Patients' bundles; and a seeded sample of the Patients."""
    from sokhoe.demo.facilities import build_facilities
    from sokhoe.demo.population import make_person, population

    out.mkdir(parents=True, exist_ok=True)
    facilities = build_facilities(seed, with_locations=True)
    pop = population(seed, facilities)
    files = [out / "facilities.json"]
    files[0].write_bytes(transaction_bundle(facilities.resources))
    rng = random.Random(seed)
    sample: list[dict[str, Any]] = []
    chunk: list[dict[str, Any]] = []
    for index in range(patients):
        _, patient = make_person(pop, index)
        chunk.append(patient)
        if len(sample) < SAMPLE:
            sample.append(patient)
        elif rng.random() < SAMPLE / (index + 1):
            sample[rng.randrange(SAMPLE)] = patient
        if len(chunk) == PER_FILE or index + 1 == patients:
            files.append(out / f"patients-{len(files):04d}.json")
            files[-1].write_bytes(transaction_bundle(chunk))
            chunk = []
    return files, sample


def run(patients: int, seed: int, workdir: Path) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    started = time.perf_counter()
    files, sample = write_patients(workdir / "bundles", patients, seed)
    generated = time.perf_counter() - started
    store, repo, resources, loaded = _ingest(f"sqlite:///{workdir / 'patients.db'}", files)
    try:
        matcher = Matcher(repo)
        first: dict[str, bool] = {}

        def match(p: dict[str, Any]) -> None:
            answer = run_match(repo, matcher, _match_input(p))
            first[p["id"]] = any(e["resource"]["id"] == p["id"] for e in answer["entry"][:1])

        latency = timed(match, sample)
    finally:
        store.close()
    return {
        **_header(patients, resources),
        "generate_s": round(generated, 1),
        "load": {"seconds": round(loaded, 1), "resources_per_s": round(resources / loaded)},
        "file_bytes": (workdir / "patients.db").stat().st_size,
        "$match": latency,
        "found first": sum(first.values()),
        "asked": len(first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patients", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("var/match-scale"))
    args = parser.parse_args()
    print(json.dumps(run(args.patients, args.seed, args.workdir), indent=2))


if __name__ == "__main__":
    main()
