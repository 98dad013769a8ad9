"""Finding the stored Patients that are the same person as a given one.

Two stages, as record linkage always has: *blocking* retrieves a few dozen candidates with
indexed searches (personal ID, insurance card, phone, and the blocking keys of
``mpi/keys.py``: folded name + birth month, name + birth date, full name + commune…), each one
index look-up, so a query costs the same at 1,000 or 1,000,000 patients; *scoring* then
grades each candidate.

Scoring is deterministic where identifiers decide: the same valid personal ID (CCCD) or the
same 10-digit social-insurance number inside a BHYT card is the same person (*certain*); two
different valid CCCDs are two people (*certainly-not*) since a person holds one personal ID — an
old 9-digit CMND kept beside it is no conflict. Otherwise the Fellegi–Sunter model trained by
Splink (:mod:`sokhoe.mpi.model`) gives a match probability; a name is scored as written and
with family and given exchanged (Western order in some facility systems), keeping the better.
See: https://hl7.org/fhir/R4/patient-operation-match.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from time import monotonic
from typing import Any

from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.features import patient_row
from sokhoe.mpi.identifiers import BHXH, BHYT, CCCD
from sokhoe.mpi.keys import (
    PARAM,
    birth_days,
    commune_place,
    day_place,
    family_commune_year,
    family_given_commune,
    full_name,
    full_year,
    name_day,
    name_month,
    name_postcode,
    postcode_place,
)
from sokhoe.mpi.model import MatchModel, Row
from sokhoe.mpi.normalise import (
    bhyt_social_numbers,
    identifier_values,
    other_identifiers,
    parse_birth_date,
    patient_phones,
    valid_cccds,
)
from sokhoe.search.parse import escape_value
from sokhoe.store.ports import StoredResource

CERTAIN = "certain"
PROBABLE = "probable"
POSSIBLE = "possible"
CERTAINLY_NOT = "certainly-not"
GRADE_RANK = {CERTAIN: 3, PROBABLE: 2, POSSIBLE: 1, CERTAINLY_NOT: 0}
BLOCK_LIMIT = 25
POPULATION_TTL_S = 600.0
"""How long the Patients counted for the prior hold (a store grows slowly against it)."""
MAX_IDENTIFIER_QUERIES = 4
"""Other identifiers (record numbers, passports, foreign numbers) searched for at most."""
"""Most candidates one blocking query returns: keeps a query's cost flat as the store grows."""


def match_key(*keys: str) -> tuple[str, str]:
    """A blocking search on the stored keys (``mpi/keys.py``): any of ``keys``."""
    return PARAM, ",".join(escape_value(k) for k in keys)


@dataclass(frozen=True)
class Candidate:
    """A stored Patient that may be the same person, with its match probability and grade."""

    id: str
    probability: float
    grade: str
    """``certain`` | ``probable`` | ``possible`` | ``certainly-not`` (FHIR match-grade)."""


@dataclass(frozen=True)
class Thresholds:
    """Probability cut-offs of the grades: automatic link, review queue, shown as possible.

    ``certain`` is set so that automatic links keep precision ≥ 0.999 on the accuracy bench
    (``sokhoe bench-mpi`` reports the lowest threshold that achieves it).
    """

    certain: float = 0.999
    probable: float = 0.95
    possible: float = 0.5

    def grade(self, probability: float) -> str | None:
        if probability >= self.certain:
            return CERTAIN
        if probability >= self.probable:
            return PROBABLE
        if probability >= self.possible:
            return POSSIBLE
        return None


@dataclass(frozen=True)
class Match:
    """A candidate with its stored resource and the model's probability before ID rules."""

    candidate: Candidate
    resource: dict[str, Any]
    model_probability: float
    rule: str | None
    """``same-cccd``, ``same-bhyt``, ``different-cccd`` or None (probabilistic)."""
    given_agrees: bool = True
    """False when the given names differ after folding: then never *certain* (see Matcher)."""


def _swapped_names(row: Row) -> Row:
    out = dict(row)
    for suffix in ("", "_f"):
        out[f"family{suffix}"], out[f"given{suffix}"] = (
            row[f"given{suffix}"],
            row[f"family{suffix}"],
        )
    return out


class Matcher:
    """Blocking on the store's search index, then scoring (see the module docstring).

    A pair whose given names are not equal (after folding) is never graded *certain*, however
    high its probability: twins share family name, birth date, address and often the family
    phone, which the model — assuming its comparisons independent, as Fellegi–Sunter does —
    adds up as overwhelming evidence, and twins' names are often near-identical (Tùng and
    Trung, Quyên and Quỳnh pass Jaro-Winkler ≥ 0.9). Such pairs go to the review queue.
    """

    def __init__(
        self,
        repo: FhirRepository,
        model: MatchModel | None = None,
        thresholds: Thresholds | None = None,
        *,
        population: int | None = None,
    ) -> None:
        self.repo = repo
        self.model = model if model is not None else MatchModel.default()
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        names = [c.name for c in self.model.comparisons]
        self._given_index = names.index("given")
        self.population = population
        """Patients to score among (the prior falls as it grows, ``MatchModel.at_population``);
        None: the store's, counted again every POPULATION_TTL_S seconds."""
        self._counted: tuple[float, int] | None = None

    def current_model(self) -> MatchModel:
        """The model with the prior of the store's present size."""
        if self.population is not None:
            return self.model.at_population(self.population)
        now = monotonic()
        if self._counted is None or now - self._counted[0] > POPULATION_TTL_S:
            with self.repo.snapshot() as tx:  # a number for the prior, shown to no one
                page = tx.search(self.repo.parse_query("Patient", [("_summary", "count")]))
            self._counted = (now, page.total or 0)
        return self.model.at_population(self._counted[1])

    # -- blocking ---------------------------------------------------------------------------
    def blocking_queries(
        self, patient: dict[str, Any], row: Row
    ) -> Iterator[list[tuple[str, str]]]:
        """The searches whose union is the candidate set; each returns at most BLOCK_LIMIT."""
        for value in sorted(valid_cccds(patient)):
            yield [("identifier", f"{CCCD}|{value}")]
        for value in identifier_values(patient, BHYT):
            yield [("identifier", f"{BHYT}|{value}")]
        for value in sorted(bhyt_social_numbers(patient)):
            yield [("identifier", f"{BHXH}|{value}")]
        for system, value in other_identifiers(patient)[:MAX_IDENTIFIER_QUERIES]:
            yield [("identifier", f"{system}|{value}")]
        raw_phones = [
            t["value"]
            for t in patient.get("telecom") or []
            if isinstance(t, dict)
            and isinstance(t.get("value"), str)
            and t.get("system") != "email"
        ]
        for phone in dict.fromkeys([*patient_phones(patient), *raw_phones]):
            yield [("phone", phone)]
        birth = parse_birth_date(patient.get("birthDate"))
        family, given = row["family_f"], row["given_f"]
        parts = [n for n in dict.fromkeys((given, family)) if n]
        postcode, commune = row["postcode"], row["commune"]
        place = (
            postcode_place(postcode) if postcode else commune_place(commune) if commune else None
        )
        if birth is not None:
            year = f"{birth.year:04d}"
            for name in parts:  # a given name with the birth month (a year of "lan" is hundreds)
                key = name_month(name, birth)
                yield [match_key(key)] if key else [("given", name), ("birthdate", year)]
            days = birth_days(birth)
            if days and parts:  # either name with the date or its day/month swap: one search
                yield [match_key(*(name_day(n, d) for n in parts for d in days))]
            full = full_name(family, row["middle_f"], given)
            if full and full != given:
                yield [match_key(full_year(full, birth))]
            if days and place:  # names mistyped beyond the other keys' reach
                yield [match_key(*(day_place(d, place) for d in days))]
        if parts and postcode:  # birth date missing or mistyped
            yield [match_key(*(name_postcode(n, postcode) for n in parts))]
        if family and commune:
            if given:
                yield [match_key(family_given_commune(family, given, commune))]
            if birth is not None:
                yield [match_key(family_commune_year(family, commune, birth))]

    def _retrieve(self, patient: dict[str, Any], row: Row) -> dict[str, StoredResource]:
        """The union of the blocking searches, in one snapshot (``search_union``: ids per
        key, then one read of the distinct candidates)."""
        own = patient.get("id")
        queries = [
            self.repo.parse_query(
                "Patient", [*params, ("_count", str(BLOCK_LIMIT)), ("_total", "none")]
            )
            for params in self.blocking_queries(patient, row)
        ]
        return {
            stored.id: stored
            for stored in self.repo.search_union(queries, BLOCK_LIMIT)
            if stored.id != own and stored.content is not None
        }

    # -- scoring ----------------------------------------------------------------------------
    def _probability(
        self, variants: list[Row], other: Row, model: MatchModel
    ) -> tuple[float, bool]:
        """The best probability over the name-order variants, and whether the given names
        are equal (accented or folded) in that variant."""
        best = max((model.score(v, other) for v in variants), key=lambda s: s.match_weight)
        given_agrees = best.levels[self._given_index] in (1, 2)
        return best.probability, given_agrees

    def score(self, patient: dict[str, Any], other: dict[str, Any]) -> Match | None:
        """Grade ``other`` against ``patient``; None when below the ``possible`` threshold."""
        row = patient_row(patient)
        return self._score(patient, [row, _swapped_names(row)], other, self.current_model())

    def _score(
        self,
        patient: dict[str, Any],
        variants: list[Row],
        other: dict[str, Any],
        model: MatchModel,
    ) -> Match | None:
        p, given_agrees = self._probability(variants, patient_row(other), model)
        mine, theirs = valid_cccds(patient), valid_cccds(other)
        oid = str(other.get("id"))
        if mine & theirs:
            return Match(Candidate(oid, 1.0, CERTAIN), other, p, "same-cccd", given_agrees)
        if bhyt_social_numbers(patient) & bhyt_social_numbers(other):
            return Match(Candidate(oid, 1.0, CERTAIN), other, p, "same-bhyt", given_agrees)
        if mine and theirs:
            if p < self.thresholds.possible:
                return None
            return Match(
                Candidate(oid, 0.0, CERTAINLY_NOT), other, p, "different-cccd", given_agrees
            )
        grade = self.thresholds.grade(p)
        if grade == CERTAIN and not given_agrees:
            grade = PROBABLE  # twins: see ``Matcher`` on why a given-name conflict never links
        return Match(Candidate(oid, p, grade), other, p, None, given_agrees) if grade else None

    def matches(self, patient: dict[str, Any], limit: int = 10) -> list[Match]:
        """Graded candidates with their resources, best first (certainly-not last)."""
        row = patient_row(patient)
        variants = [row, _swapped_names(row)]
        model = self.current_model()
        out = []
        for stored in self._retrieve(patient, row).values():
            assert stored.content is not None  # noqa: S101 - filtered in _retrieve
            m = self._score(patient, variants, stored.content, model)
            if m is not None:
                out.append(m)
        out.sort(
            key=lambda m: (
                -GRADE_RANK[m.candidate.grade],
                -m.candidate.probability,
                -m.model_probability,
                m.candidate.id,
            )
        )
        return out[:limit]

    def candidates(self, patient: dict[str, Any], limit: int = 10) -> list[Candidate]:
        """Stored Patients that may be this person, best first; never ``patient["id"]``."""
        return [m.candidate for m in self.matches(patient, limit)]
