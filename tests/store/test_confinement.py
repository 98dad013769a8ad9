"""A caller's confinement is part of the query, with the same meaning on every store.

One small world of patients, owners, labels, care rows and restrictions; a set of callers'
:class:`Confinement`; and for each, what a search, a count, an include, a ``_has``, a chain,
the history, a compartment and the single-resource checks find must equal what an oracle
written here from the rule's plain statement says. The same body runs on memory, SQLite and
PostgreSQL (the SQL store compiles the rule to SQL, the memory store states it in Python).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.fhir.repository import FhirRepository
from sokhoe.store import FhirStore, StoredResource, WriteItem
from sokhoe.store.ports import CareRow, Confinement, Restriction
from tests.conftest import BASE

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HIV = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": pid}]}


def _obs(oid: str, pid: str, hiv: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if hiv:
        body["meta"] = {"security": [HIV]}
    return body


def _org(oid: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": oid, "name": oid}


# resource -> owner; the patients p1..p4, their observations, one HIV-labelled, a shared Org
WORLD: list[tuple[dict[str, Any], str | None]] = [
    (_patient("p1"), "A"),
    (_patient("p2"), "B"),
    (_patient("p3"), None),
    (_patient("p4"), "B"),
    (_obs("o1", "p1"), "A"),
    (_obs("o2", "p2"), "B"),
    (_obs("o2h", "p2", hiv=True), "B"),
    (_obs("o3", "p3"), None),
    (_obs("o4", "p4"), "A"),  # A wrote about p4, whom it may no longer see
    (_org("org"), None),
]
PATIENT_OF = {
    c["id"]: c["id"]
    if c["resourceType"] == "Patient"
    else c.get("subject", {}).get("reference", "/")[8:]
    for c, _ in WORLD
}
CARE = [
    CareRow("p1", "facility:A", "record", True, "mrn", "", "p1", NOW - DAY),
    CareRow("p2", "facility:A", "record", True, "consent", "Consent/c", "p2", NOW - DAY, NOW + DAY),
    CareRow(
        "p3",
        "facility:A",
        "record",
        True,
        "encounter",
        "Encounter/e",
        "p3",
        NOW - 9 * DAY,
        NOW - DAY,
    ),
    CareRow("p4", "facility:A", "own", False, "check-in", "", "p4", NOW - DAY),
    CareRow("p2", "facility:B", "record", True, "mrn", "", "p2", NOW - DAY),
    CareRow("p4", "facility:B", "record", True, "mrn", "", "p4", NOW - DAY),
    CareRow(
        "p3", "user:staff:bs", "record", True, "break-glass", "", "p3", NOW - DAY, NOW + DAY, True
    ),
]
CARE.append(
    CareRow(
        "p2", "user:staff:bs", "record", True, "break-glass", "", "p2", NOW - DAY, NOW + DAY, True
    )
)
RESTRICTIONS = [
    Restriction("p2", "HIV", "", "Consent/r", "p2"),
    Restriction("p2", "HIV", "B", "Consent/r", "p2"),
]

CALLERS: dict[str, Confinement] = {
    "facility A": Confinement(NOW, grantees=("facility:A",), owner="A", facility="A"),
    "facility B": Confinement(NOW, grantees=("facility:B",), owner="B", facility="B"),
    "glass doctor of A": Confinement(
        NOW, grantees=("facility:A", "user:staff:bs"), owner="A", facility="A"
    ),
    "citizen p2": Confinement(NOW, patients=("p2",), grantees=("citizen:0900000002",)),
    "appraiser": Confinement(
        NOW, all_patients=True, types=frozenset({"Patient"}), restrictions=False
    ),
    "analyst": Confinement(NOW, restrictions=False),
    "patients only": Confinement(
        NOW, grantees=("facility:A",), owner="A", facility="A", shared=False
    ),
    "observations only": Confinement(
        NOW, grantees=("facility:A",), owner="A", facility="A", readable=frozenset({"Observation"})
    ),
}


def _oracle(caller: Confinement, rtype: str, rid: str) -> bool:
    """The rule of ``Confinement`` as its docstring states it, for this world."""
    content, owner = next((c, o) for c, o in WORLD if c["id"] == rid and c["resourceType"] == rtype)
    if caller.readable is not None and rtype not in caller.readable:
        return False
    patient = rid if rtype == "Patient" else content.get("subject", {}).get("reference", "/")[8:]
    if rtype == "Organization":
        return caller.shared
    if caller.owner is not None and owner == caller.owner:
        return True
    granted = any(
        r.patient_id == patient
        and r.grantee in caller.grantees
        and r.level == "record"
        and r.since <= NOW
        and (r.until is None or r.until > NOW)
        for r in CARE
    )
    seen = caller.all_patients or patient in caller.patients or granted
    if caller.types is not None:
        seen = seen and rtype in caller.types
    labelled = "security" in content.get("meta", {})
    if seen and caller.restrictions and labelled and patient not in caller.patients:
        permitted = any(
            x.patient_id == patient and x.facility == caller.facility for x in RESTRICTIONS
        )
        glass = any(
            r.patient_id == patient and r.grantee in caller.grantees and r.all_labels for r in CARE
        )
        restricted = any(x.patient_id == patient and x.facility == "" for x in RESTRICTIONS)
        if restricted and not permitted and not glass:
            return False
    return seen


@pytest.fixture
def repo(store: FhirStore) -> FhirRepository:
    repo = platform_repository(store, f"{BASE}/fhir")
    items: list[WriteItem] = []
    for content, owner in WORLD:
        item = repo.prepare(content, content["id"], 1, "POST", None, NOW - 2 * DAY)
        item.owner = owner
        items.append(item)
    with store.begin(write=True) as tx:
        tx.write(items)
        tx.relate(CARE)
        tx.restrict(RESTRICTIONS)
    return repo


def _ids(found: list[StoredResource]) -> set[tuple[str, str]]:
    return {(r.resource_type, r.id) for r in found}


def _expected(caller: Confinement, rtype: str | None = None) -> set[tuple[str, str]]:
    return {
        (c["resourceType"], c["id"])
        for c, _ in WORLD
        if (rtype is None or c["resourceType"] == rtype)
        and _oracle(caller, c["resourceType"], c["id"])
    }


@pytest.mark.parametrize("who", sorted(CALLERS))
def test_searches_counts_history_and_compartments_hold_what_the_rule_says(
    store: FhirStore, repo: FhirRepository, who: str
) -> None:
    caller = CALLERS[who]
    with store.begin() as tx:
        for rtype in ("Patient", "Observation", "Organization"):
            page = tx.search(repo.parse_query(rtype, []), caller)
            assert _ids(page.matches) == _expected(caller, rtype), (who, rtype)
            assert page.total == len(_expected(caller, rtype)), (who, rtype)
        everything = tx.search(repo.parse_query(None, [("_count", "100")]), caller)
        assert _ids(everything.matches) == _expected(caller), who
        versions, total = tx.history(None, None, None, 100, 0, caller)
        assert _ids(versions) == _expected(caller) and total == len(_expected(caller)), who
        for patient in ("p1", "p2", "p3", "p4"):
            found, total = tx.compartment([patient], None, None, 100, 0, caller)
            wanted = {k for k in _expected(caller) if k[0] != "Organization"}
            wanted = {k for k in wanted if PATIENT_OF[k[1]] == patient}
            assert _ids(found) == wanted and total == len(wanted), (who, patient)
        keys = [(c["resourceType"], c["id"]) for c, _ in WORLD]
        assert tx.visible(keys, caller) == _expected(caller), who
        assert _ids(tx.read_many(keys, caller)) == _expected(caller), who
        for rtype, rid in keys:
            assert tx.visible_version(rtype, rid, 1, caller) == _oracle(caller, rtype, rid)
            found, shown = tx.read_shown(rtype, rid, caller)  # a read's one query
            assert found is not None and found.id == rid
            assert shown == _oracle(caller, rtype, rid), (who, rtype, rid)
        assert tx.read_shown("Patient", "nobody", caller) == (None, False)
        assert set(tx.search_ids(repo.parse_query("Observation", []), 100, caller)) == {
            k[1] for k in _expected(caller, "Observation")
        }


@pytest.mark.parametrize("who", sorted(CALLERS))
def test_includes_chains_and_has_find_nothing_beyond_the_rule(
    store: FhirStore, repo: FhirRepository, who: str
) -> None:
    caller = CALLERS[who]
    visible_patients = {k[1] for k in _expected(caller, "Patient")}
    visible_obs = _expected(caller, "Observation")
    with store.begin() as tx:
        included = tx.search(
            repo.parse_query("Observation", [("_include", "Observation:subject")]), caller
        )
        assert _ids(included.included) <= _expected(caller), who
        rev = tx.search(
            repo.parse_query("Patient", [("_revinclude", "Observation:subject")]), caller
        )
        assert _ids(rev.included) <= visible_obs, who
        has = tx.search(
            repo.parse_query("Patient", [("_has:Observation:subject:status", "final")]), caller
        )
        # a patient is found through _has only when one of their visible observations says so
        with_obs = {PATIENT_OF[k[1]] for k in visible_obs}
        assert {m.id for m in has.matches} == visible_patients & with_obs, who
        chained = tx.search(
            repo.parse_query("Observation", [("subject:Patient.family", "p")]), caller
        )
        assert {m.id for m in chained.matches} == {
            k[1] for k in visible_obs if PATIENT_OF[k[1]] in visible_patients
        }, who


def test_a_relationship_begun_this_second_is_current_and_one_ended_is_not(
    store: FhirStore, repo: FhirRepository
) -> None:
    """The SQL store keeps a caller's condition for the second (``store/sql/confine.py``),
    rounding ``now`` up: a relationship that began earlier in that second is current at
    once (a check-in followed by a read); one that ended earlier in it is over, on every
    store. Both are checked again on the next request in the same second (the kept one)."""
    moment = NOW + timedelta(days=30, microseconds=400_000)
    rows = [
        CareRow("p4", "facility:N", "record", True, "encounter", "Encounter/n", "p4", moment),
        CareRow("p1", "facility:N", "record", True, "consent", "Consent/n", "p1", NOW, moment),
    ]
    with store.begin(write=True) as tx:
        tx.relate(rows)
    caller = Confinement(moment + timedelta(microseconds=200_000), grantees=("facility:N",))
    for _ in range(2):
        with store.begin() as tx:
            assert tx.read_shown("Patient", "p4", caller)[1] is True
            assert tx.read_shown("Patient", "p1", caller)[1] is False
            assert tx.visible([("Patient", "p4"), ("Patient", "p1")], caller) == {("Patient", "p4")}
