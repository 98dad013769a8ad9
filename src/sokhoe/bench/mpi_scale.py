"""The patient index at national scale: the model's prior re-estimated on a million people.

``python -m sokhoe.bench.mpi_scale STEP SIZE [SAMPLE]`` works in ``var/mpi-scale-SIZE``:

- ``prepare`` generates the demo population's Patients with the same kind of noisy duplicates
  and hard negatives as ``sokhoe bench-mpi`` (:func:`sokhoe.demo.duplicates.make_duplicates`:
  10 % duplicates, 5 % twins and namesakes), writes them as NDJSON with the truth and the
  comparison rows, and loads them into a SQLite store through the door (a load that is stopped
  keeps its committed batches: ``evaluate`` uses what is there).
- ``train`` re-estimates the model (prior, u, m) on every row with the shipped training path
  (:func:`sokhoe.mpi.model.train_model`, Splink on DuckDB), into ``model/``.
- ``score`` grades a seeded sample of the extras against *all* rows, the blocking keys run as
  DuckDB joins, with the shipped and the re-estimated model: precision and recall at full size.
- ``evaluate`` sends a seeded sample of the extras made from stored people to ``$match`` on the
  store, with both models: precision, recall and latency at the size loaded.

Samples, because ``$match`` of all 150,000 extras would take hours on this machine; precision
counts every link made for a sampled record, so a false link is never left out.
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


def _population(
    workdir: Path, loaded: set[str] | None
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(originals by id — only those in ``loaded`` when given —, the extras)."""
    truth_of = json.loads((workdir / "truth.json").read_text())["truth"]
    originals: dict[str, dict[str, Any]] = {}
    extras: list[dict[str, Any]] = []
    with (workdir / "Patient.ndjson").open("rb") as lines:
        for line in lines:
            p = orjson.loads(line)
            if p["id"] in truth_of:
                extras.append(p)
            elif loaded is None or p["id"] in loaded:
                originals[p["id"]] = p
    return originals, extras


def _name_key(p: dict[str, Any]) -> tuple[str, ...]:
    n = p["name"][0]
    return (n["family"], *n["given"])


def _twin_key(p: dict[str, Any]) -> tuple[str, str, str]:
    return (p["name"][0]["family"], p["birthDate"], p["address"][0].get("city", ""))


def _eligible(
    originals: dict[str, dict[str, Any]],
    extras: list[dict[str, Any]],
    kinds: dict[str, str],
    truth_of: dict[str, str | None],
) -> list[dict[str, Any]]:
    """The extras whose original is in ``originals``: duplicates by the truth, twins and
    namesakes by the original they were made from (same family name, birth date and commune;
    same full name)."""
    twins = {_twin_key(p) for p in originals.values()}
    names = {_name_key(p) for p in originals.values()}
    out = []
    for e in extras:
        kind = kinds[e["id"]]
        if kind == "duplicate" and truth_of[e["id"]] in originals:
            out.append(e)
        elif kind == "twin" and _twin_key(e) in twins:
            out.append(e)
        elif kind == "namesake" and _name_key(e) in names:
            out.append(e)
    return out


def evaluate(workdir: Path, sample: int, seed: int) -> dict[str, Any]:
    """``$match`` a seeded sample of the extras against the store, with both models.

    The store may hold only the first part of the population (a load stopped early): then only
    extras made from a stored original are sampled, so every duplicate can be found and every
    twin and namesake meets its look-alike.
    """
    import sqlite3

    saved = json.loads((workdir / "truth.json").read_text())
    truth_of: dict[str, str | None] = saved["truth"]
    con = sqlite3.connect(f"file:{workdir / 'mpi.db'}?mode=ro", uri=True)
    loaded = {r[0] for r in con.execute("SELECT id FROM resource WHERE resource_type='Patient'")}
    con.close()
    originals, all_extras = _population(workdir, loaded)
    eligible = _eligible(originals, all_extras, saved["kinds"], truth_of)
    del originals, all_extras
    rng = random.Random(seed)
    extras = rng.sample(eligible, k=min(sample, len(eligible)))
    chosen = {e["id"] for e in extras}
    truth = {frozenset((k, v)) for k, v in truth_of.items() if k in chosen and v is not None}
    store = SqlStore(f"sqlite:///{workdir / 'mpi.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    models = {"shipped": MatchModel.default()}
    if (workdir / "model" / "model.json").exists():
        models["re-estimated"] = MatchModel.load(workdir / "model")
    kinds = [saved["kinds"][e["id"]] for e in extras]
    out: dict[str, Any] = {
        "patients_in_store": len(loaded),
        "sample": {k: kinds.count(k) for k in sorted(set(kinds))},
    }
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
            answer = run_match(repo, matcher, params)
            latencies.append((time.perf_counter() - started) * 1000)
            for entry in answer["entry"]:
                pair = frozenset((extra["id"], entry["resource"]["id"]))
                grade = entry["search"]["extension"][0]["valueCode"]
                if grade == CERTAIN:
                    auto.add(pair)
                if grade in (CERTAIN, PROBABLE):
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


_BLOCKS = (
    "q.cccd = c.cccd",
    "q.phone = c.phone",
    "q.given_f = c.given_f AND q.dob_year = c.dob_year",
    "q.family_f = c.given_f AND q.dob_year = c.dob_year",
    "q.family_f IN (c.family_f, c.given_f) AND q.dob_year = c.dob_year "
    "AND ((q.dob_month = c.dob_month AND q.dob_day = c.dob_day) "
    "OR (q.dob_month = c.dob_day AND q.dob_day = c.dob_month))",
    "q.given_f IN (c.family_f, c.given_f) AND q.dob_year = c.dob_year "
    "AND ((q.dob_month = c.dob_month AND q.dob_day = c.dob_day) "
    "OR (q.dob_month = c.dob_day AND q.dob_day = c.dob_month))",
    "q.dob_year = c.dob_year AND q.dob_month = c.dob_month AND q.dob_day = c.dob_day "
    "AND q.commune = c.commune",
    "q.family_f = c.family_f AND q.given_f = c.given_f AND q.commune = c.commune",
    "q.family_f = c.family_f AND q.commune = c.commune AND q.dob_year = c.dob_year",
)
"""The matcher's blocking searches as DuckDB joins (no 25-per-search cap; the insurance-card
searches are left out: the comparison rows do not carry the card)."""


def _prior(con: Any) -> float:
    """Splink's estimate of the prior from the rule "same personal ID" with the share of
    duplicates that carry it (``KEEP_CCCD``), as :func:`sokhoe.mpi.model.train_model` makes it:
    pairs agreeing on the ID / recall / all pairs."""
    from sokhoe.demo.duplicates import KEEP_CCCD

    n = con.execute("SELECT count(*) FROM c").fetchone()[0]
    same = con.execute(
        "SELECT sum(k * (k - 1) / 2) FROM "
        "(SELECT count(*) AS k FROM c WHERE cccd IS NOT NULL GROUP BY cccd)"
    ).fetchone()[0]
    return float(same) / KEEP_CCCD / (int(n) * (int(n) - 1) / 2)


def score_million(workdir: Path, sample: int, seed: int) -> dict[str, Any]:
    """Our grading (identifier rules, model, the twins guard) of every candidate the blocking
    keys find for a seeded sample of the extras among *all* the rows (a million people), with
    the shipped and the re-estimated model. Blocking runs in DuckDB over the comparison rows
    (:data:`_BLOCKS`) instead of the store's index, so no store of a million is needed."""
    import duckdb

    from sokhoe.mpi.features import patient_row
    from sokhoe.mpi.matching import GRADE_RANK, _swapped_names

    saved = json.loads((workdir / "truth.json").read_text())
    truth_of: dict[str, str | None] = saved["truth"]
    rng = random.Random(seed)
    chosen = set(rng.sample(sorted(truth_of), k=min(sample, len(truth_of))))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE c AS SELECT * FROM read_json(?, format='newline_delimited')",
        [str(workdir / "rows.ndjson")],
    )
    con.execute("CREATE TABLE pick (id VARCHAR)")
    con.executemany("INSERT INTO pick VALUES (?)", [(i,) for i in sorted(chosen)])
    con.execute("CREATE TABLE q AS SELECT c.* FROM c JOIN pick ON c.unique_id = pick.id")
    union = " UNION ".join(
        f"SELECT q.unique_id::VARCHAR AS a, c.unique_id::VARCHAR AS b FROM q JOIN c ON {rule} "  # noqa: S608
        "WHERE q.unique_id <> c.unique_id"
        for rule in _BLOCKS
    )
    pairs = con.execute(union).fetchall()
    prior = _prior(con)
    con.close()
    wanted = {b for _, b in pairs} | chosen
    resources: dict[str, dict[str, Any]] = {}
    with (workdir / "Patient.ndjson").open("rb") as lines:
        for line in lines:
            p = orjson.loads(line)
            if p["id"] in wanted:
                resources[p["id"]] = p
    by_query: dict[str, list[str]] = {}
    for a, b in pairs:
        by_query.setdefault(a, []).append(b)
    truth = {frozenset((k, v)) for k, v in truth_of.items() if k in chosen and v is not None}
    shipped = MatchModel.default()
    rescaled = dict(shipped.settings, probability_two_random_records_match=prior)
    rows = sum(1 for _ in (workdir / "rows.ndjson").open("rb"))
    models = {
        "shipped": shipped,
        "shipped, prior at this size": MatchModel(rescaled, shipped.tf),
        # what ``Matcher`` does with the store's size (``MatchModel.at_population``)
        "shipped, prior scaled as 1/N": shipped.at_population(rows),
    }
    if (workdir / "model" / "model.json").exists():
        models["re-estimated"] = MatchModel.load(workdir / "model")
    kinds = [saved["kinds"][i] for i in chosen]
    out: dict[str, Any] = {
        "rows": rows,
        "sample": {k: kinds.count(k) for k in sorted(set(kinds))},
        "candidate_pairs": len(pairs),
        "prior_at_this_size": prior,
    }
    for label, model in models.items():
        matcher = Matcher(None, model)  # type: ignore[arg-type]  # scoring only, no store
        auto: set[Pair] = set()
        review: set[Pair] = set()
        for qid in chosen:
            query = resources[qid]
            row = patient_row(query)
            variants = [row, _swapped_names(row)]
            found = [
                m
                for cid in by_query.get(qid, [])
                if (m := matcher._score(query, variants, resources[cid], model)) is not None
            ]
            found.sort(key=lambda m: (-GRADE_RANK[m.candidate.grade], -m.candidate.probability))
            for m in found[:10]:
                pair = frozenset((qid, m.candidate.id))
                if m.candidate.grade == CERTAIN:
                    auto.add(pair)
                if m.candidate.grade in (CERTAIN, PROBABLE):
                    review.add(pair)
        out[label] = {
            "prior": model.settings["probability_two_random_records_match"],
            "automatic": _metrics(auto, truth),
            "automatic+review": _metrics(review, truth),
        }
        print(label, json.dumps(out[label]))
    (workdir / "score-million.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":  # pragma: no cover - a bench driver
    step, size = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    where = Path(f"var/mpi-scale-{size}")
    if step == "prepare":
        prepare(where, size, 1)
    elif step == "train":
        train(where, 1)
    elif step == "score":
        score_million(where, int(sys.argv[3]) if len(sys.argv) > 3 else 5000, 7)
    elif step == "evaluate":
        evaluate(where, int(sys.argv[3]) if len(sys.argv) > 3 else 5000, 7)
