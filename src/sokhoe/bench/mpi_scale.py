"""The patient index at national scale: the model's prior re-estimated on a million people.

``python -m sokhoe.bench.mpi_scale prepare --patients 1000000`` generates the demo population's
Patients with the same kind of noisy duplicates and hard negatives as ``sokhoe bench-mpi``
(:func:`sokhoe.demo.duplicates.make_duplicates`, 10 % duplicates, 5 % twins and namesakes),
writes them as NDJSON with the truth, and loads them into a SQLite store through the door.
``train`` re-estimates the model (prior, u, m) with the shipped training path
(:func:`sokhoe.mpi.model.train_model`, Splink on DuckDB) on all rows. ``evaluate`` sends a seeded
sample of the extra records to ``$match`` with the shipped model and with the re-estimated one
and reports precision and recall of automatic links and of the review queue, and the latency.
A sample, because ``$match`` of all 150,000 extras would take about forty minutes; the sample's
precision counts every link made for a sampled record, so a false link is never left out.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from sokhoe.access.guard import platform_repository
from sokhoe.bench.stats import percentiles
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Matcher
from sokhoe.mpi.model import MatchModel
from sokhoe.operations.match import run_match
from sokhoe.store.sql import SqlStore

Pair = frozenset[str]


def prepare(workdir: Path, patients: int, seed: int) -> None:
    """Generate, write (NDJSON + truth) and load the population into ``workdir/mpi.db``."""
    from sokhoe.demo.duplicates import make_duplicates
    from sokhoe.interop.load import load_paths
    from sokhoe.mpi.features import patient_row

    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = make_duplicates(patients, seed)
    ndjson = workdir / "Patient.ndjson"
    with ndjson.open("wb") as out:
        for p in data.patients:
            out.write(orjson.dumps(p) + b"\n")
    (workdir / "truth.json").write_text(json.dumps({"truth": data.truth, "kinds": data.kinds}))
    with (workdir / "rows.ndjson").open("wb") as out:
        for p in data.patients:
            out.write(orjson.dumps(patient_row(p)) + b"\n")
    extras = data.extras
    del data
    print(f"generated {patients} + {len(extras)} in {time.perf_counter() - started:.0f} s")
    store = SqlStore(f"sqlite:///{workdir / 'mpi.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    started = time.perf_counter()
    report = load_paths(repo, [ndjson])
    store.close()
    took = time.perf_counter() - started
    print(f"loaded {report.resources} in {took:.0f} s, errors {report.errors[:3]}")
    (workdir / "load.json").write_text(
        json.dumps({"resources": report.resources, "seconds": round(took, 1)})
    )


def train(workdir: Path, seed: int) -> dict[str, Any]:
    """Re-estimate the model on every row; written to ``workdir/model``."""
    from sokhoe.demo.duplicates import KEEP_CCCD
    from sokhoe.mpi.model import train_model

    rows = [orjson.loads(line) for line in (workdir / "rows.ndjson").open("rb")]
    started = time.perf_counter()
    settings = train_model(rows, seed + 1, workdir / "model", id_recall=KEEP_CCCD)
    took = time.perf_counter() - started
    prior = settings["probability_two_random_records_match"]
    print(f"trained on {len(rows)} rows in {took:.0f} s; prior {prior:.4g}")
    return settings


def _metrics(predicted: set[Pair], truth: set[Pair]) -> dict[str, float | int]:
    tp = len(predicted & truth)
    return {
        "precision": round(tp / len(predicted), 4) if predicted else 1.0,
        "recall": round(tp / len(truth), 4) if truth else 1.0,
        "links": len(predicted),
        "false_links": len(predicted - truth),
    }


def evaluate(workdir: Path, sample: int, seed: int) -> dict[str, Any]:
    """``$match`` a seeded sample of the extras with both models; precision and recall."""
    saved = json.loads((workdir / "truth.json").read_text())
    truth_of: dict[str, str | None] = saved["truth"]
    rng = random.Random(seed)
    chosen = set(rng.sample(sorted(truth_of), k=min(sample, len(truth_of))))
    extras = []
    with (workdir / "Patient.ndjson").open("rb") as lines:
        for line in lines:
            if b'"id":"' in line:
                p = orjson.loads(line)
                if p["id"] in chosen:
                    extras.append(p)
    truth = {frozenset((k, v)) for k, v in truth_of.items() if k in chosen and v is not None}
    store = SqlStore(f"sqlite:///{workdir / 'mpi.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    models = {"shipped": MatchModel.default()}
    if (workdir / "model" / "model.json").exists():
        models["re-estimated"] = MatchModel.load(workdir / "model")
    out: dict[str, Any] = {"patients_in_store": store_count(workdir), "sample": len(extras)}
    for label, model in models.items():
        matcher = Matcher(repo, model)
        latencies = []
        auto: set[Pair] = set()
        review: set[Pair] = set()
        for extra in extras:
            params = {
                "resourceType": "Parameters",
                "parameter": [{"name": "resource", "resource": extra}],
            }
            started = time.perf_counter()
            run_match(repo, matcher, params)
            latencies.append((time.perf_counter() - started) * 1000)
            for m in matcher.matches(extra, 10):
                pair = frozenset((extra["id"], m.candidate.id))
                if m.candidate.grade == CERTAIN:
                    auto.add(pair)
                if m.candidate.grade in (CERTAIN, PROBABLE):
                    review.add(pair)
        out[label] = {
            "prior": model.settings["probability_two_random_records_match"],
            "automatic": _metrics(auto, truth),
            "automatic+review": _metrics(review, truth),
            "match_latency_ms": percentiles(latencies),
        }
        print(label, json.dumps(out[label]))
    store.close()
    (workdir / "evaluate.json").write_text(json.dumps(out, indent=2))
    return out


def store_count(workdir: Path) -> int:
    load = workdir / "load.json"
    return int(json.loads(load.read_text())["resources"]) if load.exists() else 0


if __name__ == "__main__":  # pragma: no cover - a bench driver
    step, size = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    where = Path(f"var/mpi-scale-{size}")
    if step == "prepare":
        prepare(where, size, 1)
    elif step == "train":
        train(where, 1)
    elif step == "evaluate":
        evaluate(where, int(sys.argv[3]) if len(sys.argv) > 3 else 5000, 7)
