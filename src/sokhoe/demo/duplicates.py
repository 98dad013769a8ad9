"""Noisy duplicate Patients with ground truth, for training and measuring person matching.

A duplicate is the same demo person registered again at another facility: a new id, that
facility's record number, often no personal ID, and the noise reception desks make — typos,
no diacritics, day and month swapped, year only or a 01/01 placeholder, a new phone, a moved
commune, family and given name exchanged or the whole name in one string. Hard negatives are
different people who look alike: twins (same family name, birth date, address and phone,
another given name) and namesakes (same full name, another birth date and place).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from sokhoe.demo.facilities import build_facilities
from sokhoe.demo.names import person_name
from sokhoe.demo.population import make_person, population
from sokhoe.mpi.identifiers import BHYT, CCCD, CMND, mrn_system
from sokhoe.search.index import normalize_string

KEEP_CCCD = 0.35
"""Share of duplicates that carry the personal ID (the rest were registered without it)."""
KEEP_BHYT = 0.2
_VOWELS = "aeiouyăâêôơư"
_LETTERS = "abcdeghiklmnopqrstuvxy"


@dataclass
class DuplicateSet:
    """Originals, the extra records and the truth (extra id -> original id, None if nobody)."""

    originals: list[dict[str, Any]]
    extras: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[str, str | None] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """extra id -> "duplicate" | "twin" | "namesake"."""

    @property
    def patients(self) -> list[dict[str, Any]]:
        return self.originals + self.extras


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word + rng.choice(_LETTERS)
    i = rng.randrange(1, len(word))
    op = rng.random()
    if op < 0.35:  # substitution
        return word[:i] + rng.choice(_LETTERS) + word[i + 1 :]
    if op < 0.65:  # deletion
        return word[:i] + word[i + 1 :]
    if op < 0.85 and i < len(word) - 1:  # transposition
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice(_VOWELS) + word[i:]  # insertion


def _name(rng: random.Random, family: str, middle: str, given: str) -> dict[str, Any]:
    """A HumanName in one of the shapes facility systems produce."""
    r = rng.random()
    if r < 0.6:
        return {"family": family, "given": [middle, given], "text": f"{family} {middle} {given}"}
    if r < 0.8:
        return {"text": f"{family} {middle} {given}"}
    if r < 0.9:  # family and given exchanged (Western order)
        return {"family": given, "given": [middle, family]}
    return {"family": family, "given": [f"{middle} {given}"]}


def _noisy_birth(rng: random.Random, birth: str) -> str:
    d = date.fromisoformat(birth)
    r = rng.random()
    if r < 0.4 and d.day <= 12 and d.day != d.month:
        return f"{d.year:04d}-{d.day:02d}-{d.month:02d}"
    if r < 0.65:
        return f"{d.year:04d}"
    if r < 0.8:
        return f"{d.year:04d}-01-01"
    if r < 0.88:  # a year digit mistyped
        return f"{d.year + rng.choice((-10, -1, 1, 10)):04d}-{d.month:02d}-{d.day:02d}"
    return f"{d.year:04d}-{d.month:02d}-{min(28, max(1, d.day + rng.choice((-1, 1)))):02d}"


def _duplicate(
    rng: random.Random,
    original: dict[str, Any],
    new_id: str,
    facility: str,
    wards: list[str],
    other_provinces: list[tuple[str, list[str]]],
) -> dict[str, Any]:
    name = original["name"][0]
    family, (middle, given) = name["family"], name["given"]
    noises = rng.sample(["typo", "fold", "birth", "phone", "address", "sex"], k=rng.randint(1, 3))
    if "typo" in noises:
        r = rng.random()
        if r < 0.5:
            given = _typo(rng, given)
        elif r < 0.8:
            family = _typo(rng, family)
        else:
            middle = _typo(rng, middle)
    if "fold" in noises or rng.random() < 0.2:
        family, middle, given = (normalize_string(p).title() for p in (family, middle, given))
    dup: dict[str, Any] = {
        "resourceType": "Patient",
        "id": new_id,
        "identifier": [{"use": "usual", "system": mrn_system(facility), "value": new_id[:8]}],
        "name": [_name(rng, family, middle, given)],
    }
    if "sex" not in noises:
        dup["gender"] = original["gender"]
    elif rng.random() < 0.3:  # mistyped rather than left out
        dup["gender"] = "female" if original["gender"] == "male" else "male"
    birth = original["birthDate"]
    dup["birthDate"] = _noisy_birth(rng, birth) if "birth" in noises else birth
    phones = original.get("telecom") or []
    if phones and "phone" not in noises:
        value = phones[0]["value"]
        if rng.random() < 0.3:
            value = "+84 " + value[1:4] + " " + value[4:]
        dup["telecom"] = [{"system": "phone", "value": value}]
    elif "phone" in noises and rng.random() < 0.6:
        dup["telecom"] = [{"system": "phone", "value": f"09{rng.randrange(10**8):08d}"}]
    address = dict(original["address"][0])
    if "address" in noises:
        address.pop("line", None)
        if rng.random() < 0.25:  # moved to another province
            address["state"], ward_list = rng.choice(other_provinces)
            address["city"] = rng.choice(ward_list)
        else:
            address["city"] = rng.choice(wards)
    dup["address"] = [address]
    for ident in original["identifier"]:
        if ident["system"] == CCCD and rng.random() < KEEP_CCCD:
            dup["identifier"].append({"system": CCCD, "value": ident["value"]})
        elif ident["system"] == BHYT and rng.random() < KEEP_BHYT:
            dup["identifier"].append({"system": BHYT, "value": ident["value"]})
    return dup


def _lookalike(
    rng: random.Random,
    original: dict[str, Any],
    new_id: str,
    facility: str,
    twin: bool,
    other_place: dict[str, Any],
) -> dict[str, Any]:
    name = original["name"][0]
    family, (middle, given) = name["family"], name["given"]
    sex = original["gender"]
    if twin:
        sex = sex if rng.random() < 0.5 else ("female" if sex == "male" else "male")
        _, new_middle, new_given = person_name(rng, sex)
        while normalize_string(new_given) == normalize_string(given):
            _, _, new_given = person_name(rng, sex)
        middle = middle if rng.random() < 0.6 else new_middle
        given = new_given
    look: dict[str, Any] = {
        "resourceType": "Patient",
        "id": new_id,
        "identifier": [{"use": "usual", "system": mrn_system(facility), "value": new_id[:8]}],
        "name": [
            {"family": family, "given": [middle, given], "text": f"{family} {middle} {given}"}
        ],
        "gender": sex,
    }
    if twin:
        look["birthDate"] = original["birthDate"]
        look["address"] = original["address"]
        if original.get("telecom") and rng.random() < 0.5:
            look["telecom"] = original["telecom"]
    else:
        year = int(original["birthDate"][:4])
        year = year if rng.random() < 0.3 else year + rng.choice((-3, -2, -1, 1, 2, 3))
        look["birthDate"] = date(year, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
        look["address"] = other_place["address"]
        if other_place.get("telecom"):
            look["telecom"] = [{"system": "phone", "value": f"08{rng.randrange(10**8):08d}"}]
    return look


def make_duplicates(patients: int, seed: int, rate: float = 0.1) -> DuplicateSet:
    """``patients`` demo people, then ``rate`` × that many noisy duplicates plus half as many
    hard negatives (twins and namesakes, one each per four duplicates)."""
    facilities = build_facilities(seed)
    pop = population(seed, facilities)
    originals = [make_person(pop, i)[1] for i in range(patients)]
    for p in originals:  # keep only what a facility registration carries
        p["identifier"] = [i for i in p["identifier"] if i["system"] in (CCCD, CMND, BHYT)]
    rng = random.Random(seed * 7_919 + 13)
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://fhir.sokhoe.vn/demo/{seed}/duplicates")
    codes = [f.code for f in facilities.central] or ["00000"]
    wards_by_state: dict[str, list[str]] = {}
    for prov in pop.provinces:
        wards_by_state[prov.name] = [w.name for w in prov.wards]
    provinces_wards = sorted(wards_by_state.items())
    out = DuplicateSet(originals)
    n_dup = round(patients * rate)
    chosen = rng.sample(range(patients), k=min(patients, n_dup + n_dup // 2))
    for k, index in enumerate(chosen):
        original = originals[index]
        new_id = str(uuid.uuid5(ns, f"extra:{k}"))
        facility = rng.choice(codes)
        if k < n_dup:
            wards = wards_by_state.get(original["address"][0]["state"], ["Xã Mới"])
            extra = _duplicate(rng, original, new_id, facility, wards, provinces_wards)
            kind, truth = "duplicate", original["id"]
        else:
            twin = k % 2 == 0
            other = originals[rng.randrange(patients)]
            extra = _lookalike(rng, original, new_id, facility, twin, other)
            kind, truth = ("twin" if twin else "namesake"), None
        out.extras.append(extra)
        out.truth[new_id] = truth
        out.kinds[new_id] = kind
    return out


def write_duplicates(out: Path, patients: int, seed: int, rate: float = 0.1) -> Path:
    """Write the originals and extras as one transaction Bundle (``patients.json``) and the
    truth (``duplicates-truth.json``: extra id -> original id or null, and each extra's kind)
    into ``out``; returns the truth file."""
    data = make_duplicates(patients, seed, rate)
    out.mkdir(parents=True, exist_ok=True)
    entries = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in data.patients
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    (out / "patients.json").write_bytes(orjson.dumps(bundle))
    truth = out / "duplicates-truth.json"
    truth.write_bytes(
        orjson.dumps({"truth": data.truth, "kinds": data.kinds}, option=orjson.OPT_INDENT_2)
    )
    return truth
