"""The matching accuracy bench: our matcher against a plain Splink model, same data, same run.

``N`` demo people plus 10 % noisy duplicates and 5 % hard negatives (twins, namesakes) with
ground truth (:mod:`sokhoe.demo.duplicates`) are loaded into a SQLite store. Every extra record
is then matched (``Patient/$match``, timed) and its graded candidates compared to the truth.
The baseline is Splink's own ``linker.inference.predict`` with the *same* trained model over
the same records, at Splink's customary thresholds 0.999 (link) and 0.95 (review). Only pairs
that involve an extra record are counted for both, since only those have known truth.

Precision = true links / links made; recall = true links / duplicates (each duplicate has
exactly one original). The bench also reports the lowest *certain* threshold at which
automatic links keep precision ≥ 0.999 (the issue's "never merge two people" target).
See: https://moj-analytical-services.github.io/splink/api_docs/inference.html
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from sokhoe.access.guard import platform_repository
from sokhoe.bench.stats import percentiles, table
from sokhoe.demo.duplicates import DuplicateSet, make_duplicates
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths
from sokhoe.mpi.features import patient_row
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Match, Matcher
from sokhoe.mpi.model import MatchModel, duckdb_table
from sokhoe.operations.match import run_match
from sokhoe.store.sql import SqlStore

Pair = frozenset[str]
TARGET_PRECISION = 0.999


def _metrics(predicted: set[Pair], truth: set[Pair]) -> dict[str, float | int]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "links": len(predicted),
        "false_links": len(predicted - truth),
    }


def _truth(data: DuplicateSet) -> set[Pair]:
    return {frozenset((k, v)) for k, v in data.truth.items() if v is not None}


def _params(patient: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": patient}],
    }


def _ours(
    repo: FhirRepository, matcher: Matcher, data: DuplicateSet
) -> tuple[dict[Pair, Match], list[float]]:
    """Every extra through ``$match`` (timed), and the best-graded match of each pair."""
    found: dict[Pair, Match] = {}
    latencies: list[float] = []
    run_match(repo, matcher, _params(data.extras[0]))  # warm-up
    for extra in data.extras:
        started = time.perf_counter()
        run_match(repo, matcher, _params(extra))
        latencies.append((time.perf_counter() - started) * 1000)
        for m in matcher.matches(extra, 10):
            found.setdefault(frozenset((extra["id"], m.candidate.id)), m)
    return found, latencies


def _tuned_threshold(found: dict[Pair, Match], truth: set[Pair]) -> dict[str, Any]:
    """The lowest probability at which automatic links still have precision ≥ 0.999."""
    rule_links = {k for k, m in found.items() if m.rule in ("same-cccd", "same-bhyt")}
    scored = sorted(
        ((m.model_probability, k) for k, m in found.items() if m.rule is None and m.given_agrees),
        key=lambda x: -x[0],
    )
    best: dict[str, Any] = {"threshold": None}
    links = set(rule_links)
    for i, (p, key) in enumerate(scored):
        links.add(key)
        if i + 1 < len(scored) and scored[i + 1][0] == p:
            continue
        if p < 0.5:
            break
        m = _metrics(links, truth)
        if m["precision"] >= TARGET_PRECISION:
            best = {"threshold": round(p, 6), **m}
    return best


def _splink(data: DuplicateSet, model: MatchModel) -> tuple[dict[Pair, float], float]:
    """Plain Splink ``predict`` with the same model; pair -> match probability, seconds."""
    from splink import DuckDBAPI, Linker

    started = time.perf_counter()
    rows = [patient_row(p) for p in data.patients]
    con = duckdb_table(rows)
    sdf = DuckDBAPI(connection=con).register("patients")
    linker = Linker(sdf, json.loads(json.dumps(model.settings)), log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    extras = set(data.truth)
    out: dict[Pair, float] = {}
    for r in predictions.as_record_list():
        left, right = str(r["unique_id_l"]), str(r["unique_id_r"])
        if left in extras or right in extras:
            out[frozenset((left, right))] = float(r["match_probability"])
    con.close()
    return out, time.perf_counter() - started


def run_mpi_bench(
    patients: int = 5000,
    seed: int = 1,
    workdir: Path = Path("var/bench-mpi"),
    results: Path | None = Path("bench/results"),
    rate: float = 0.1,
) -> dict[str, Any]:
    """Run the bench and return (and, with ``results``, write) the summary."""
    data = make_duplicates(patients, seed, rate)
    truth = _truth(data)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bundle = workdir / "patients.json"
    entries = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in data.patients
    ]
    bundle.write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    )
    store = SqlStore(f"sqlite:///{workdir / 'mpi.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    started = time.perf_counter()
    report = load_paths(repo, [bundle], workers=0)
    load_s = time.perf_counter() - started
    if report.errors:
        raise RuntimeError(f"bench data failed to load: {report.errors[:3]}")
    model = MatchModel.default()
    matcher = Matcher(repo, model)
    started = time.perf_counter()
    found, latencies = _ours(repo, matcher, data)
    ours_s = time.perf_counter() - started
    store.close()
    auto = {k for k, m in found.items() if m.candidate.grade == CERTAIN}
    review = {k for k, m in found.items() if m.candidate.grade in (CERTAIN, PROBABLE)}
    splink_pairs, splink_s = _splink(data, model)
    t = matcher.thresholds
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "patients": patients,
        "seed": seed,
        "extras": {k: list(data.kinds.values()).count(k) for k in sorted(set(data.kinds.values()))},
        "thresholds": {"certain": t.certain, "probable": t.probable, "possible": t.possible},
        "ours": {
            "automatic": _metrics(auto, truth),
            "automatic+review": _metrics(review, truth),
            "seconds": round(ours_s, 2),
        },
        "splink": {
            "automatic": _metrics({k for k, p in splink_pairs.items() if p >= 0.999}, truth),
            "automatic+review": _metrics({k for k, p in splink_pairs.items() if p >= 0.95}, truth),
            "seconds": round(splink_s, 2),
        },
        "tuned_certain": _tuned_threshold(found, truth),
        "match_latency_ms": percentiles(latencies),
        "load_seconds": round(load_s, 2),
        "store": "sqlite",
    }
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{summary['date']}-mpi-{patients}.json"
        path.write_text(json.dumps(summary, indent=2))
        summary["written"] = str(path)
    return summary


def render(summary: dict[str, Any]) -> str:
    """The printed table: precision / recall / F1 per matcher and link level, then latency."""
    head = f"{'':28}{'precision':>10}{'recall':>9}{'F1':>8}{'links':>8}{'false':>7}"
    lines = [
        f"MPI accuracy, {summary['patients']} people + extras {summary['extras']}",
        head,
    ]
    for who in ("ours", "splink"):
        for level in ("automatic", "automatic+review"):
            m = summary[who][level]
            lines.append(
                f"{who + ' ' + level:28}{m['precision']:>10.4f}{m['recall']:>9.4f}"
                f"{m['f1']:>8.4f}{m['links']:>8}{m['false_links']:>7}"
            )
    tuned = summary["tuned_certain"]
    lat = summary["match_latency_ms"]
    lines.append("")
    lines.append(
        table(
            [
                ("lowest certain threshold with precision ≥ 0.999", str(tuned.get("threshold"))),
                ("$match latency p50 / p95 (ms, SQLite)", f"{lat['p50']} / {lat['p95']}"),
                (
                    "our matching / Splink predict (s)",
                    f"{summary['ours']['seconds']} / {summary['splink']['seconds']}",
                ),
            ]
        )
    )
    if "written" in summary:
        lines.append(f"written to {summary['written']}")
    return "\n".join(lines)
