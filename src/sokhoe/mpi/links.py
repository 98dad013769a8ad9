"""Merge, unmerge and the review queue of the master patient index.

A merge never deletes or rewrites clinical data: it only links the two Patient records
(``replaced-by`` on the merged one, which also becomes inactive, ``replaces`` on the survivor)
and searches follow the links (``fhir/patient_links.py``). That keeps an unmerge exact: it puts
back the two Patient versions the merge replaced, which the merge's Provenance names, and every
other resource was never touched. Each decision (automatic or by a person, merge, unmerge,
rejected candidate) is a Provenance saying who and why.

Pairs the matcher is unsure of wait in a review queue as FHIR ``Task`` resources (code
``review-match``), so the queue is itself searchable, audited and transactional.
See: https://hl7.org/fhir/R4/patient.html#links and https://hl7.org/fhir/R4/provenance.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sokhoe.access.care import ungroup
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.session import GuardedSession
from sokhoe.errors import Conflict, InvalidRequest, NotFound
from sokhoe.fhir.patient_links import MERGE_LINKS
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.store.ports import StoredResource, StoreSession

ACTIVITY = "https://fhir.sokhoe.vn/CodeSystem/mpi-activity"
"""merge | unmerge | link-rejected: what a master-patient-index Provenance records."""
PATADMIN = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "PATADMIN",
    "display": "patient administration",
}
"""Provenance.reason of a merge or unmerge: the purpose of use, from the value set R4 binds
(https://hl7.org/fhir/R4/provenance-definitions.html#Provenance.reason, extensible
v3-PurposeOfUse), beside the staff's own words in ``text``. HAPI's validator warns about a
reason that is text alone."""
TASK_CODE = "https://fhir.sokhoe.vn/CodeSystem/mpi-task"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MPI_ROLES = frozenset({"system-admin", "facility-admin", "doctor"})
"""Staff who may merge, unmerge and decide reviews (connected systems need platform scope,
or the facility's HL7 interface for ADT^A40 of its own patients)."""
LINKS = frozenset({"patient-link", "mpi-provenance"})
"""What only the patient index writes: the links between merged records, its Provenance."""


@dataclass(frozen=True)
class Agent:
    """Who decided: a user name, a practitioner reference, or the matcher itself."""

    display: str
    reference: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        who: dict[str, Any] = {"display": self.display}
        if self.reference:
            who["reference"] = self.reference
        return {"who": who}


MATCHER = Agent("sokhoe master patient index (automatic)")


def _patient(tx: StoreSession, pid: str) -> StoredResource:
    found = tx.read("Patient", pid)
    if found is None or found.deleted or found.content is None:
        raise NotFound(f"Patient/{pid} is not known")
    return found


def _merge_links(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in content.get("link", []) if link.get("type") in MERGE_LINKS]


def _provenance(
    activity: str,
    targets: list[StoredResource],
    sources: list[StoredResource],
    agent: Agent,
    reason: str,
    when: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"Patient/{t.id}/_history/{t.version_id}"} for t in targets],
        "recorded": when,
        "activity": {"coding": [{"system": ACTIVITY, "code": activity}]},
        "reason": [{"coding": [PATADMIN], "text": reason}],
        "agent": [agent.to_fhir()],
        "entity": [
            {"role": "revision", "what": {"reference": f"Patient/{s.id}/_history/{s.version_id}"}}
            for s in sources
        ],
    }


def merge(
    repo: GuardedRepository,
    source_id: str,
    target_id: str,
    agent: Agent,
    reason: str,
    *,
    roles: frozenset[str] | None = MPI_ROLES,
) -> dict[str, Any]:
    """Merge Patient ``source_id`` into ``target_id`` (the survivor); returns the Provenance.

    The caller must be allowed both records (and hold one of ``roles``). Afterwards the care
    index spreads over the person: rows proven on either record open both, unproven ones do
    not (``access/care.py``)."""
    if not reason.strip():
        raise InvalidRequest("A merge needs a reason (who asked, which evidence)", "reason")
    if source_id == target_id:
        raise InvalidRequest("A patient cannot be merged with itself", "source-patient")
    with repo.operation(
        "merge",
        interactions=["update"],
        patients=[source_id, target_id],
        roles=roles,
        owns=LINKS,
    ) as tx:
        source, target = _patient(tx, source_id), _patient(tx, target_id)
        for p in (source, target):
            if any(link.get("type") == "replaced-by" for link in _merge_links(p.content or {})):
                raise Conflict(f"Patient/{p.id} is already merged into another record")
        src = dict(source.content or {})
        src["link"] = [
            *src.get("link", []),
            {"other": {"reference": f"Patient/{target_id}"}, "type": "replaced-by"},
        ]
        src["active"] = False
        tgt = dict(target.content or {})
        tgt["link"] = [
            *tgt.get("link", []),
            {"other": {"reference": f"Patient/{source_id}"}, "type": "replaces"},
        ]
        new_src = repo.update(src, "Patient", source_id, tx=tx).resource
        new_tgt = repo.update(tgt, "Patient", target_id, tx=tx).resource
        when = format_instant(repo.clock())
        prov = _provenance("merge", [new_src, new_tgt], [source, target], agent, reason, when)
        return repo.create(prov, "Provenance", tx=tx).resource.content or {}


def _merged_into(tx: StoreSession, source_id: str) -> str:
    source = _patient(tx, source_id)
    link = next(
        (
            link
            for link in (source.content or {}).get("link", [])
            if link.get("type") == "replaced-by"
        ),
        None,
    )
    if link is None:
        raise Conflict(f"Patient/{source_id} is not merged into another record")
    return str(link["other"]["reference"]).split("/", 1)[1]


def unmerge(
    repo: GuardedRepository,
    source_id: str,
    agent: Agent,
    reason: str,
    *,
    roles: frozenset[str] | None = MPI_ROLES,
) -> dict[str, Any]:
    """Undo the merge of ``source_id``: both records get back their pre-merge content, and
    the care index stops spreading between them."""
    if not reason.strip():
        raise InvalidRequest("An unmerge needs a reason", "reason")
    with repo.snapshot() as tx:
        target_id = _merged_into(tx, source_id)
    with repo.operation(
        "unmerge",
        interactions=["update"],
        patients=[source_id, target_id],
        roles=roles,
        owns=LINKS,
    ) as tx:
        if _merged_into(tx, source_id) != target_id:
            raise Conflict(f"Patient/{source_id} was re-linked meanwhile; try again")
        source = _patient(tx, source_id)
        target = _patient(tx, target_id)
        before = _versions_before_merge(repo, tx, source, target)
        restored = []
        for current, old in ((source, before[source_id]), (target, before[target_id])):
            content = dict(old.content or {})
            content.pop("meta", None)
            meta = {
                k: v
                for k, v in (old.content or {}).get("meta", {}).items()
                if k not in ("versionId", "lastUpdated")
            }
            if meta:
                content["meta"] = meta
            restored.append(repo.update(content, "Patient", current.id, tx=tx).resource)
        ungroup(tx, [source_id, target_id])
        when = format_instant(repo.clock())
        prov = _provenance("unmerge", restored, [source, target], agent, reason, when)
        return repo.create(prov, "Provenance", tx=tx).resource.content or {}


def _versions_before_merge(
    repo: GuardedRepository, tx: StoreSession, source: StoredResource, target: StoredResource
) -> dict[str, StoredResource]:
    """The versions the latest merge of ``source`` into ``target`` replaced (from its
    Provenance), so an unmerge restores exactly them."""
    query = repo.parse_query(
        "Provenance",
        [
            ("target", f"Patient/{source.id}"),
            ("_sort", "-_lastUpdated"),
            ("_count", "20"),
        ],
        strict=True,
    )
    for prov in tx.search(query).matches:
        content = prov.content or {}
        codes = {c.get("code") for c in content.get("activity", {}).get("coding", [])}
        if "merge" not in codes:
            continue
        found: dict[str, StoredResource] = {}
        for entity in content.get("entity", []):
            ref = entity.get("what", {}).get("reference", "")
            rtype, pid, _, version = [*ref.split("/"), "", "", ""][:4]
            if rtype == "Patient" and pid in (source.id, target.id) and version.isdigit():
                old = tx.vread("Patient", pid, int(version))
                if old is not None:
                    found[pid] = old
        if len(found) == 2:
            return found
    raise Conflict(f"No merge Provenance of Patient/{source.id} to undo")


# -- review queue ------------------------------------------------------------------------


def queue_review(
    repo: GuardedRepository, patient_id: str, candidate_id: str, probability: float, grade: str
) -> dict[str, Any] | None:
    """Ask a person whether two records are one person (once per pair); returns the Task.

    Called by the patient index itself (a check-in, an HL7 registration, the linker), never
    by a client: review Tasks are written by this operation only."""
    with repo.operation("queue-review", owns=frozenset({"review-task"})) as tx:
        return _queue_in(repo, tx, patient_id, candidate_id, probability, grade)


def queue_reviews(
    repo: GuardedRepository, patient_id: str, candidates: Sequence[tuple[str, float, str]]
) -> list[dict[str, Any]]:
    """:func:`queue_review` for several candidates ``(id, probability, grade)`` of one
    patient in one transaction (a registration's probable matches): one commit, not one per
    candidate. Returns the Tasks written (a pair already queued writes none)."""
    if not candidates:
        return []
    with repo.operation("queue-review", owns=frozenset({"review-task"})) as tx:
        written = [_queue_in(repo, tx, patient_id, cid, p, grade) for cid, p, grade in candidates]
    return [task for task in written if task is not None]


def _queue_in(
    repo: GuardedRepository,
    tx: GuardedSession,
    patient_id: str,
    candidate_id: str,
    probability: float,
    grade: str,
) -> dict[str, Any] | None:
    pair = sorted([patient_id, candidate_id])
    existing = repo.parse_query(
        "Task",
        [("code", f"{TASK_CODE}|review-match"), ("focus", f"Patient/{pair[0]}")],
        strict=True,
    )
    for queued in tx.search(existing).matches:
        if (queued.content or {}).get("for", {}).get("reference") == f"Patient/{pair[1]}":
            return None
    task = review_task(
        "review-match",
        "Review a match",
        "Are these two records the same person?",
        f"Patient/{pair[0]}",
        repo.clock(),
        [
            {"type": {"text": "probability"}, "valueDecimal": round(probability, 6)},
            {"type": {"text": "match-grade"}, "valueCode": grade},
        ],
        subject=f"Patient/{pair[1]}",
    )
    return repo.update(task, "Task", task["id"], tx=tx).resource.content


def review_task(
    code: str,
    display: str,
    description: str,
    focus: str,
    when: datetime,
    inputs: list[dict[str, Any]],
    subject: str | None = None,
    system: str = TASK_CODE,
) -> dict[str, Any]:
    """A ``Task`` asking a person to decide (the platform's review queues: a possible
    duplicate, a sync conflict); ``code`` in ``system`` says which kind."""
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "status": "requested",
        "intent": "proposal",
        "priority": "routine",
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "description": description,
        "focus": {"reference": focus},
    }
    if subject is not None:
        task["for"] = {"reference": subject}
    task["authoredOn"] = format_instant(when)
    task["input"] = inputs
    return task


def _review_pair(tx: StoreSession, task_id: str) -> tuple[dict[str, Any], str, str]:
    task = tx.read("Task", task_id)
    if task is None or task.deleted or task.content is None:
        raise NotFound(f"Task/{task_id} is not known")
    content = dict(task.content)
    if TASK_CODE not in {c.get("system") for c in content.get("code", {}).get("coding", [])}:
        raise InvalidRequest(f"Task/{task_id} is not a match review")
    first = str(content["focus"]["reference"]).split("/", 1)[1]
    second = str(content["for"]["reference"]).split("/", 1)[1]
    return content, first, second


def resolve_review(
    repo: GuardedRepository,
    task_id: str,
    accept: bool,
    agent: Agent,
    reason: str,
    *,
    roles: frozenset[str] | None = MPI_ROLES,
) -> dict[str, Any]:
    """Accept (merge the newer record into the older) or reject a queued pair. The caller
    must be allowed both records the Task names."""
    with repo.snapshot() as tx:
        content, first, second = _review_pair(tx, task_id)
    if content.get("status") != "requested":
        raise Conflict(f"Task/{task_id} was already {content.get('status')}")
    if accept:
        older, newer = by_age(repo, first, second)
        merge(repo, newer, older, agent, reason, roles=roles)
        content["status"] = "completed"
    else:
        with repo.operation(
            "resolve-review",
            interactions=["update"],
            patients=[first, second],
            roles=roles,
            owns=LINKS,
        ) as tx:
            records = [_patient(tx, first), _patient(tx, second)]
            when = format_instant(repo.clock())
            prov = _provenance("link-rejected", records, records, agent, reason, when)
            repo.create(prov, "Provenance", tx=tx)
        content["status"] = "rejected"
    content["lastModified"] = format_instant(repo.clock())
    content["note"] = [{"text": f"{agent.display}: {reason}"}]
    with repo.operation(
        "resolve-review", patients=[first, second], roles=roles, owns=frozenset({"review-task"})
    ) as tx:
        return repo.update(content, "Task", task_id, tx=tx).resource.content or {}


def by_age(repo: GuardedRepository, a: str, b: str) -> tuple[str, str]:
    """(older, newer) by first version time (then id, so ties are decided the same way every
    time): the record known longest survives a merge."""
    with repo.snapshot() as tx:
        first = {pid: tx.vread("Patient", pid, 1) for pid in (a, b)}
    missing = [pid for pid, v in first.items() if v is None]
    if missing:
        raise NotFound(f"Patient/{missing[0]} is not known")
    older, newer = sorted((a, b), key=lambda pid: (first[pid].last_updated, pid))  # type: ignore[union-attr]
    return older, newer
