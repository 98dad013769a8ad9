"""The Fellegi–Sunter match model: trained by Splink offline, evaluated in pure Python online.

Offline, :func:`train_model` fits a Splink (DuckDB backend) model on the patients' comparison
columns — u by random sampling, m by expectation maximisation over two blocking rules, the
prior from a deterministic rule — and saves Splink's own settings JSON. Online,
:class:`MatchModel` reads that JSON and scores one pair in microseconds with the *same*
comparison levels, so a ``$match`` never starts a Splink session.

Term-frequency adjustments follow Splink's formula (a level with ``tf_adjustment_column`` adds
``weight * (log2(u_exact) - log2(max(tf_l, tf_r, tf_minimum_u_value)))``, 0 when neither value
has a frequency). Approximation: the frequency table is computed once at training time and stored
beside the model (``model_tf.json``), only for values seen at least twice; Splink recomputes it
from the data it predicts on. A value missing from the table gets no adjustment.
See: https://moj-analytical-services.github.io/splink/topic_guides/theory/fellegi_sunter.html
See: https://moj-analytical-services.github.io/splink/topic_guides/comparisons/term-frequency.html
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from sokhoe.mpi.features import COLUMNS

JW_THRESHOLD = 0.9
TF_COLUMNS = ("family", "family_f", "middle", "middle_f", "given", "given_f")
MODEL_FILE = "model.json"
TF_FILE = "model_tf.json"
Row = dict[str, Any]


# -- comparison levels, in Splink's order (the null level first) ---------------------------
def _name_level(col: str) -> Callable[[Row, Row], int]:
    fcol = f"{col}_f"

    def level(a: Row, b: Row) -> int:
        fa, fb = a.get(fcol), b.get(fcol)
        if fa is None or fb is None:
            return 0
        if a.get(col) == b.get(col):
            return 1
        if fa == fb:
            return 2
        if JaroWinkler.similarity(fa, fb) >= JW_THRESHOLD:
            return 3
        return 4

    return level


def _date_level(a: Row, b: Row) -> int:
    ya, yb = a.get("dob_year"), b.get("dob_year")
    if ya is None or yb is None:
        return 0
    ma, mb, da, db = a.get("dob_month"), b.get("dob_month"), a.get("dob_day"), b.get("dob_day")
    full = None not in (ma, mb, da, db)
    if ya == yb and full and ma == mb and da == db:
        return 1
    if ya == yb and full and ma == db and da == mb:
        return 2
    if ya == yb and ma is not None and ma == mb:
        return 3
    if ya == yb:
        return 4
    if full and ma == mb and da == db:
        return 5
    return 6


def _exact_level(col: str) -> Callable[[Row, Row], int]:
    def level(a: Row, b: Row) -> int:
        va, vb = a.get(col), b.get(col)
        if va is None or vb is None:
            return 0
        return 1 if va == vb else 2

    return level


def _address_level(a: Row, b: Row) -> int:
    pa, pb = a.get("province"), b.get("province")
    if pa is None or pb is None:
        return 0
    if pa == pb and a.get("commune") is not None and a.get("commune") == b.get("commune"):
        return 1
    return 2 if pa == pb else 3


def _identifier_level(a: Row, b: Row) -> int:
    """Other identifiers (see :func:`sokhoe.mpi.normalise.linkable_identifiers`): null unless
    the two share a value or a person-level system; then the same value, one keystroke apart
    (Damerau-Levenshtein 1 between the person-level ``system|value`` keys joined by ``;``: for
    the usual single identifier, one typo in its value), or different."""
    ia, ib = a.get("ids"), b.get("ids")
    if not ia or not ib:
        return 0
    if set(ia) & set(ib):
        return 1
    pa, pb = ";".join(a.get("pids") or ()), ";".join(b.get("pids") or ())
    if DamerauLevenshtein.distance(pa, pb) == 1:
        return 2
    if set(a.get("psys") or ()) & set(b.get("psys") or ()):
        return 3
    return 0


LEVEL_FUNCTIONS: dict[str, Callable[[Row, Row], int]] = {
    "given": _name_level("given"),
    "middle": _name_level("middle"),
    "family": _name_level("family"),
    "dob": _date_level,
    "sex": _exact_level("sex"),
    "phone": _exact_level("phone"),
    "address": _address_level,
    "identifier": _identifier_level,
    "postcode": _exact_level("postcode"),
}
"""Python twins of the Splink comparisons below, keyed by ``output_column_name``."""


def splink_comparisons() -> list[Any]:
    """The Splink comparisons; level *i* here is level *i* of :data:`LEVEL_FUNCTIONS`."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def name(col: str, tf: bool) -> Any:
        return cl.CustomComparison(
            output_column_name=col,
            comparison_description=f"{col} name: accented, folded, Jaro-Winkler >= 0.9",
            comparison_levels=[
                cll.NullLevel(f"{col}_f"),
                cll.ExactMatchLevel(col, term_frequency_adjustments=tf).configure(
                    label_for_charts="exact accented"
                ),
                cll.ExactMatchLevel(f"{col}_f", term_frequency_adjustments=tf).configure(
                    label_for_charts="exact folded"
                ),
                cll.JaroWinklerLevel(f"{col}_f", JW_THRESHOLD),
                cll.ElseLevel(),
            ],
        )

    same_year = "dob_year_l = dob_year_r"
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_description=(
            "birth date: exact, day/month swapped, year-month, year, year mistyped"
        ),
        comparison_levels=[
            cll.CustomLevel("dob_year_l IS NULL OR dob_year_r IS NULL").configure(
                is_null_level=True
            ),
            cll.CustomLevel(
                f"{same_year} AND dob_month_l = dob_month_r AND dob_day_l = dob_day_r",
                "exact",
            ),
            cll.CustomLevel(
                f"{same_year} AND dob_month_l = dob_day_r AND dob_day_l = dob_month_r",
                "day/month swapped",
            ),
            cll.CustomLevel(f"{same_year} AND dob_month_l = dob_month_r", "same year-month"),
            cll.CustomLevel(same_year, "same year"),
            cll.CustomLevel("dob_month_l = dob_month_r AND dob_day_l = dob_day_r", "year mistyped"),
            cll.ElseLevel().configure(m_probability=DOB_ELSE_M, fix_m_probability=True),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_description="home commune and province",
        comparison_levels=[
            cll.NullLevel("province"),
            cll.CustomLevel("province_l = province_r AND commune_l = commune_r", "same commune"),
            cll.CustomLevel("province_l = province_r", "same province"),
            cll.ElseLevel(),
        ],
    )

    def fixed(level: Any, m: float, u: float) -> Any:
        return level.configure(
            m_probability=m, u_probability=u, fix_m_probability=True, fix_u_probability=True
        )

    def joined(side: str) -> str:
        return f"array_to_string(coalesce(pids_{side}, []::VARCHAR[]), ';')"

    typo = f"damerau_levenshtein({joined('l')}, {joined('r')}) = 1"
    shared_system = "coalesce(list_has_any(psys_l, psys_r), false)"
    identifier = cl.CustomComparison(
        output_column_name="identifier",
        comparison_description="other identifiers: same value, one keystroke apart, different",
        comparison_levels=[
            cll.CustomLevel(
                "ids_l IS NULL OR ids_r IS NULL OR (NOT list_has_any(ids_l, ids_r) "
                f"AND NOT ({typo}) AND NOT {shared_system})"
            ).configure(is_null_level=True),
            fixed(cll.CustomLevel("list_has_any(ids_l, ids_r)", "same value"), *ID_EXACT),
            fixed(
                cll.CustomLevel(typo, "one keystroke apart"),
                *ID_TYPO,
            ),
            fixed(cll.ElseLevel(), *ID_ELSE),
        ],
    )

    postcode = cl.CustomComparison(
        output_column_name="postcode",
        comparison_description="postal code of the home address",
        comparison_levels=[
            cll.NullLevel("postcode"),
            fixed(cll.ExactMatchLevel("postcode"), *POSTCODE_EXACT),
            fixed(cll.ElseLevel(), *POSTCODE_ELSE),
        ],
    )

    def exact(col: str) -> Any:
        return cl.CustomComparison(
            output_column_name=col,
            comparison_levels=[cll.NullLevel(col), cll.ExactMatchLevel(col), cll.ElseLevel()],
        )

    return [
        name("given", True),
        name("middle", True),
        name("family", True),
        dob,
        exact("sex"),
        exact("phone"),
        address,
        identifier,
        postcode,
    ]


DOB_ELSE_M = 0.01
"""m of two wholly different birth dates, fixed: the demo's noise always keeps two of the three
parts, so training never sees one, but desks do type a wrong date (FEBRL's copies have them);
about the share the model learnt before the "year mistyped" level took the year typos."""

POSTCODE_EXACT = (0.8, 1e-3)
"""m and u of the same postal code, fixed (Vietnamese registrations rarely carry one, so the
demo has none to learn from): people move or mistype it one time in five; a country has
thousands of postal codes, unevenly filled, so two strangers share one about once in a thousand
(≈ 9.6 bits, less than a full birth date)."""
POSTCODE_ELSE = (0.2, 1 - 1e-3)

ID_EXACT = (0.9, 1e-5)
"""m and u of two records sharing an identifier value, fixed rather than trained: the demo
population registers people again without the other facility's identifiers, so the training
data holds no pair to learn them from. m: an identifier a person holds is copied correctly about
nine times in ten (FEBRL's own corruption rate is of that order); u: two people share a value in
one issuing system only through a registration error. The weight, log2(m/u) ≈ 16.5 bits, is
about the prior's size: alone it makes a pair likely, never certain; a name or birth date must
agree too (see :class:`sokhoe.mpi.matching.Matcher`)."""
ID_TYPO = (0.05, 1e-3)
"""A person-level value one keystroke away: a typo (m), or a neighbour in a numbering (u)."""
ID_ELSE = (0.05, 1.0 - 1e-5 - 1e-3)
"""Different values in the same person-level system: weight log2(0.05) ≈ -4.3 bits."""


PREDICTION_BLOCKING = (
    ("given_f", "dob_year"),
    ("family_f", "dob_year", "dob_month", "dob_day"),
    ("phone",),
    ("cccd",),
)
"""Blocking rules of a plain Splink ``predict`` (the online matcher uses index queries)."""


def splink_settings() -> Any:
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=splink_comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*r) for r in PREDICTION_BLOCKING],
        retain_intermediate_calculation_columns=False,
    )


def duckdb_table(rows: Sequence[Row], name: str = "patients") -> Any:
    """A DuckDB in-memory connection holding ``rows`` as table ``name`` (Splink's input)."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE {name} (unique_id VARCHAR, family VARCHAR, family_f VARCHAR, "
        "middle VARCHAR, middle_f VARCHAR, given VARCHAR, given_f VARCHAR, dob_year INTEGER, "
        "dob_month INTEGER, dob_day INTEGER, sex VARCHAR, phone VARCHAR, commune VARCHAR, "
        "province VARCHAR, cccd VARCHAR, postcode VARCHAR, ids VARCHAR[], pids VARCHAR[], "
        "psys VARCHAR[])"
    )
    placeholders = ", ".join("?" for _ in COLUMNS)
    con.executemany(
        f"INSERT INTO {name} VALUES ({placeholders})",  # noqa: S608 - fixed column list
        [tuple(r.get(c) for c in COLUMNS) for r in rows],
    )
    return con


def term_frequencies(rows: Sequence[Row], min_count: int = 2) -> dict[str, dict[str, float]]:
    """Splink's term frequency (count / non-null count) of each TF column's values."""
    out: dict[str, dict[str, float]] = {}
    for col in TF_COLUMNS:
        counts = Counter(r[col] for r in rows if r.get(col) is not None)
        total = sum(counts.values()) or 1
        out[col] = {v: float(f"{n / total:.6g}") for v, n in counts.most_common() if n >= min_count}
    return out


def train_model(
    rows: Sequence[Row], seed: int, out_dir: Path | None = None, id_recall: float = 0.35
) -> dict[str, Any]:
    """Fit the Splink model on ``rows`` (see :func:`sokhoe.mpi.features.patient_row`).

    The prior (probability that two random records match) comes from the deterministic rule
    "same personal ID" and ``id_recall``, the share of duplicate records that carry the ID — a
    figure a deployment measures from its own registrations. Returns Splink's settings dict and,
    with ``out_dir``, writes it as ``model.json`` with the frequency table ``model_tf.json``.
    See: https://moj-analytical-services.github.io/splink/demos/tutorials/04_Estimating_model_parameters.html
    """
    from splink import DuckDBAPI, Linker, block_on

    con = duckdb_table(rows)
    sdf = DuckDBAPI(connection=con).register("patients")
    linker = Linker(sdf, splink_settings(), log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("cccd")], recall=id_recall
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=3e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_f", "dob_year")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    settings: dict[str, Any] = linker.misc.save_model_to_json(None)
    con.close()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MODEL_FILE).write_text(json.dumps(settings, indent=1, ensure_ascii=False))
        tf: dict[str, Any] = {
            "note": "term frequency = count / non-null count, values seen twice or more",
            "records": len(rows),  # what the prior was estimated on (``at_population``)
        }
        tf["columns"] = term_frequencies(rows)
        (out_dir / TF_FILE).write_text(json.dumps(tf, ensure_ascii=False))
    return settings


# -- the online scorer --------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    """One comparison level's Bayes factor and its term-frequency settings."""

    label: str
    weight: float
    """log2(m/u); 0 for the null level and for a level Splink could not train."""
    u: float | None
    tf_column: str | None = None
    tf_weight: float = 1.0
    tf_min_u: float = 0.0


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]
    level_of: Callable[[Row, Row], int]


@dataclass(frozen=True)
class Score:
    match_weight: float
    probability: float
    levels: tuple[int, ...]


def _level(raw: dict[str, Any]) -> Level:
    m, u = raw.get("m_probability"), raw.get("u_probability")
    null = bool(raw.get("is_null_level"))
    weight = 0.0 if null or not m or not u else math.log2(m / u)
    return Level(
        label=str(raw.get("label_for_charts", raw.get("sql_condition", ""))),
        weight=weight,
        u=u,
        tf_column=raw.get("tf_adjustment_column"),
        tf_weight=float(raw.get("tf_adjustment_weight", 1.0)),
        tf_min_u=float(raw.get("tf_minimum_u_value", 0.0)),
    )


def _is_exact_on(level: dict[str, Any], col: str) -> bool:
    cond = " ".join(str(level.get("sql_condition", "")).replace('"', "").split()).lower()
    return cond == f"{col}_l = {col}_r"


class MatchModel:
    """Fellegi–Sunter weights read from a Splink settings JSON, scored in pure Python."""

    def __init__(
        self,
        settings: dict[str, Any],
        tf: dict[str, dict[str, float]],
        records: int | None = None,
    ) -> None:
        self.settings = settings
        self.tf = tf
        self.records = records
        """How many records the model was trained on (None: not known, the prior is kept)."""
        lam = float(settings["probability_two_random_records_match"])
        self.prior_weight = math.log2(lam / (1 - lam))
        comps = []
        self.u_exact: dict[str, float] = {}
        for raw in settings["comparisons"]:
            name = raw["output_column_name"]
            if name not in LEVEL_FUNCTIONS:
                raise ValueError(f"model comparison {name!r} has no Python implementation")
            levels = raw["comparison_levels"]
            for col in TF_COLUMNS:
                for lv in levels:
                    if _is_exact_on(lv, col) and lv.get("u_probability"):
                        self.u_exact[col] = float(lv["u_probability"])
            comps.append(
                Comparison(name, tuple(_level(lv) for lv in levels), LEVEL_FUNCTIONS[name])
            )
        self.comparisons = tuple(comps)
        self._scaled: dict[int, MatchModel] = {}

    @classmethod
    def load(cls, directory: Path) -> MatchModel:
        settings = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
        tf_path = directory / TF_FILE
        saved = json.loads(tf_path.read_text(encoding="utf-8")) if tf_path.exists() else {}
        return cls(settings, saved.get("columns", {}), saved.get("records"))

    def at_population(self, records: int) -> MatchModel:
        """The model for a store of ``records`` Patients.

        The prior is the share of all pairs of records that are one person. With a steady
        share of records that repeat someone, the matching pairs grow as N and all pairs as
        N²/2, so the prior falls as 1/N: re-estimated on 1,150,000 records it was 1.52 × 10⁻⁷
        against 3.73 × 10⁻⁵ on the 4,600 the shipped model saw, and 3.73 × 10⁻⁵ × 4,599 /
        1,149,999 = 1.49 × 10⁻⁷ (README, "Matching accuracy"). Kept at the training prior for a
        store no larger than the training set: a small store's few records say nothing of a
        higher duplicate rate. The m and u probabilities do not depend on N.
        """
        if self.records is None or records <= self.records:
            return self
        scaled = self._scaled.get(records)
        if scaled is None:
            lam = float(self.settings["probability_two_random_records_match"])
            lam *= (self.records - 1) / (records - 1)
            scaled = copy.copy(self)
            scaled.prior_weight = math.log2(lam / (1 - lam))
            self._scaled = {records: scaled}  # one size at a time: the store's
        return scaled

    @classmethod
    def default(cls) -> MatchModel:
        """The model shipped in the package (``sokhoe.mpi.training.train_default_model``)."""
        return _default_model()

    def _tf_adjustment(self, level: Level, a: Row, b: Row) -> float:
        col = level.tf_column
        if col is None or level.tf_weight == 0 or col not in self.u_exact:
            return 0.0
        table = self.tf.get(col, {})
        ta, tb = table.get(a.get(col) or ""), table.get(b.get(col) or "")
        if ta is None and tb is None:
            return 0.0
        tf = max(ta or 0.0, tb or 0.0, level.tf_min_u)
        return level.tf_weight * (math.log2(self.u_exact[col]) - math.log2(tf))

    def score(self, a: Row, b: Row) -> Score:
        """Match weight and probability of the pair, as Splink's ``predict`` would give."""
        weight = self.prior_weight
        gammas = []
        for comp in self.comparisons:
            i = comp.level_of(a, b)
            level = comp.levels[i]
            weight += level.weight + self._tf_adjustment(level, a, b)
            gammas.append(i)
        return Score(weight, probability(weight), tuple(gammas))


def probability(match_weight: float) -> float:
    """``2^w / (1 + 2^w)``, safe for large |w|."""
    if match_weight > 60:
        return 1.0
    if match_weight < -60:
        return 0.0
    odds: float = math.pow(2.0, match_weight)
    return odds / (1 + odds)


@cache
def _default_model() -> MatchModel:
    directory = resources.files("sokhoe.mpi")
    settings = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
    saved = json.loads((directory / TF_FILE).read_text(encoding="utf-8"))
    return MatchModel(settings, saved["columns"], saved.get("records"))
