"""Matching: deterministic identifier rules, then the Splink-trained model, on a real store."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.demo.duplicates import make_duplicates
from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.identifiers import BHXH, BHYT, CCCD, CMND
from sokhoe.mpi.matching import CERTAIN, CERTAINLY_NOT, PROBABLE, Matcher, Thresholds
from sokhoe.mpi.model import MatchModel
from sokhoe.store import MemoryStore

AN = "079090001234"
OTHER_CCCD = "001091005678"
BINH = {
    "resourceType": "Patient",
    "id": "binh",
    "name": [{"family": "Quách", "given": ["Thị", "Bình"]}],
    "gender": "female",
    "birthDate": "1985-04-07",
    "address": [{"city": "Xã Tân Lập", "state": "Tỉnh Phú Thọ"}],
}


def _patient(pid: str, **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Nguyễn", "given": ["Văn", "Khải"]}],
        "gender": "male",
        "birthDate": "1990-03-15",
        "telecom": [{"system": "phone", "value": "0912345678"}],
        "address": [{"city": "Phường Bến Thành", "state": "Thành phố Hồ Chí Minh"}],
    }
    p.update(extra)
    return p


@pytest.fixture(scope="module")
def repo() -> FhirRepository:
    repo = platform_repository(MemoryStore(), "http://testserver/fhir")
    for p in make_duplicates(150, 3, rate=0.0).originals:  # background population
        repo.update(p, "Patient", p["id"])
    an = _patient("an", identifier=[{"system": CCCD, "value": AN}])
    an["identifier"].append({"system": BHYT, "value": "DN4790123456789"})
    an["identifier"].append({"system": BHXH, "value": "0123456789"})  # as check-in stores it
    repo.update(an, "Patient", "an")
    repo.update(BINH, "Patient", "binh")
    return repo


@pytest.fixture(scope="module")
def matcher(repo: FhirRepository) -> Matcher:
    return Matcher(repo)


def _grade(matcher: Matcher, patient: dict[str, Any], pid: str = "an") -> tuple[str, float]:
    found = {c.id: c for c in matcher.candidates(patient)}
    assert pid in found, found
    return found[pid].grade, found[pid].probability


def test_same_cccd_is_certain(matcher: Matcher) -> None:
    query = {
        "resourceType": "Patient",
        "name": [{"text": "Nguyen Van Khai"}],
        "identifier": [{"system": CCCD, "value": "079 090 001234"}],
    }
    assert _grade(matcher, query) == (CERTAIN, 1.0)


def test_same_bhyt_social_number_is_certain(matcher: Matcher) -> None:
    # Another beneficiary group and province, the same 10-digit social-insurance number.
    query = {
        "resourceType": "Patient",
        "identifier": [{"system": BHYT, "value": "HT3010123456789"}],
    }
    assert _grade(matcher, query) == (CERTAIN, 1.0)


def test_different_cccd_is_certainly_not(matcher: Matcher) -> None:
    query = _patient("q1", identifier=[{"system": CCCD, "value": OTHER_CCCD}])
    assert _grade(matcher, query) == (CERTAINLY_NOT, 0.0)
    assert matcher.candidates(query)[-1].grade == CERTAINLY_NOT


def test_old_cmnd_is_no_conflict(matcher: Matcher) -> None:
    query = _patient(
        "q2",
        identifier=[
            {"system": CMND, "value": "023456789", "use": "old"},
            {"system": CCCD, "value": OTHER_CCCD, "use": "old"},
        ],
    )
    grade, _ = _grade(matcher, query)
    assert grade in (CERTAIN, PROBABLE)


def test_typo_and_no_diacritics_found(matcher: Matcher) -> None:
    query = _patient(
        "q3",
        name=[{"text": "Nguyen Van Khai"}],
        birthDate="1990",
        telecom=[{"system": "phone", "value": "+84 912 345 678"}],
    )
    assert _grade(matcher, query)[0] in (CERTAIN, PROBABLE)
    typo = _patient("q4", name=[{"family": "Nguyễn", "given": ["Văn", "Khảii"]}])
    assert _grade(matcher, typo)[0] in (CERTAIN, PROBABLE)


def test_swapped_day_month_and_name_order(matcher: Matcher) -> None:
    western = _patient("q5", name=[{"family": "Khải", "given": ["Văn", "Nguyễn"]}])
    assert _grade(matcher, western)[0] in (CERTAIN, PROBABLE)
    day_month = copy.deepcopy(BINH)
    day_month.update(id="q6", birthDate="1985-07-04")
    assert _grade(matcher, day_month, "binh")[0] in (CERTAIN, PROBABLE)


def test_twin_is_not_certain(matcher: Matcher) -> None:
    twin = _patient("twin", name=[{"family": "Nguyễn", "given": ["Văn", "Khang"]}])
    found = {c.id: c for c in matcher.candidates(twin)}
    assert "an" not in found or found["an"].grade != CERTAIN


def test_never_returns_itself_and_orders_best_first(repo: FhirRepository) -> None:
    matcher = Matcher(repo, thresholds=Thresholds(certain=0.999, probable=0.9, possible=0.01))
    an = repo.read("Patient", "an").content
    assert an is not None
    found = matcher.candidates(an)
    assert all(c.id != "an" for c in found)
    scores = [c.probability for c in found if c.grade != CERTAINLY_NOT]
    assert scores == sorted(scores, reverse=True)


def test_model_reads_splink_json() -> None:
    model = MatchModel.default()
    names = [c.name for c in model.comparisons]
    assert names == [
        "given",
        "middle",
        "family",
        "dob",
        "sex",
        "phone",
        "address",
        "identifier",
        "postcode",
    ]

    # Term-frequency adjustment: agreeing on Nguyễn is weaker evidence than on a rare name.
    def family(accented: str, folded: str) -> dict[str, Any]:
        return {"given": "an", "given_f": "an", "family": accented, "family_f": folded}

    nguyen, nguyen_circumflex = family("nguyễn", "nguyen"), family("nguyên", "nguyen")
    common = model.score(nguyen, nguyen)
    rare = model.score(family("quách", "quach"), family("quách", "quach"))
    assert rare.match_weight > common.match_weight + 2
    # Nguyễn vs Nguyên agree only when folded: weaker evidence than a full accented match.
    folded = model.score(nguyen, nguyen_circumflex)
    assert (common.levels[2], folded.levels[2]) == (1, 2)
    assert common.match_weight > folded.match_weight


def test_duplicates_are_reproducible_with_truth() -> None:
    a, b = make_duplicates(200, 9), make_duplicates(200, 9)
    assert a.extras == b.extras
    kinds = set(a.kinds.values())
    assert kinds == {"duplicate", "twin", "namesake"}
    originals = {p["id"] for p in a.originals}
    for extra_id, original in a.truth.items():
        assert (original in originals) == (a.kinds[extra_id] == "duplicate")


def test_the_prior_falls_as_the_population_grows() -> None:
    """At 1,150,000 records the prior re-estimated was 1.52e-7; scaled as 1/N from the 4,600
    the shipped model saw it is 1.49e-7 (README, "Matching accuracy")."""
    model = MatchModel.default()
    assert model.records == 4600
    assert model.at_population(4600) is model and model.at_population(12) is model
    nation = model.at_population(1_150_000)
    prior = 1 / (1 + 2**-nation.prior_weight)
    assert prior == pytest.approx(1.49e-7, rel=0.01)
    assert model.prior_weight - nation.prior_weight == pytest.approx(7.97, abs=0.01)
    assert model.at_population(1_150_000) is nation  # kept for the store's size


def test_a_look_alike_certain_in_a_district_goes_to_review_in_the_nation(
    repo: FhirRepository,
) -> None:
    """Same name, birth date, sex and ward, no identifier and no phone: a district's store of a
    few thousand may link them; among a million people such pairs are look-alikes too often
    to link without a person looking (8 wrong automatic merges in 2,826 at 1,000,000 people
    with the small store's prior, README)."""
    stored = _patient("look-alike", telecom=[])
    query = _patient("q", telecom=[])
    district = Matcher(repo, population=4000)
    nation = Matcher(repo, population=1_150_000)
    assert district.score(query, stored) is not None
    assert district.score(query, stored).candidate.grade == CERTAIN  # type: ignore[union-attr]
    graded = nation.score(query, stored)
    assert graded is not None and graded.candidate.grade == PROBABLE
    # the store's own size is counted when none is given: this one is a district's
    counted = Matcher(repo)
    assert counted.current_model() is counted.model
    people = repo.search(repo.parse_query("Patient", [("_summary", "count")])).total
    assert people is not None and people > 100
    trained_on_100 = MatchModel(counted.model.settings, counted.model.tf, records=100)
    fewer = Matcher(repo, trained_on_100).current_model()
    lower = math.log2((people - 1) / 99)  # bits, as the prior is nearly its odds
    assert trained_on_100.prior_weight - fewer.prior_weight == pytest.approx(lower, abs=1e-3)
