"""One person, several records: the care index spread over records the patient index merged.

Every record keeps the rows granted on it (``via`` itself); after a merge it also holds a copy
of each row granted on the person's other records — a proven row as it is, an unproven one
only as ``own``. An unmerge removes the copies. So a facility that registered a new record
from someone's card, and saw it merged into their real one, reads nothing of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sokhoe.access.levels import OWN
from sokhoe.fhir.patient_links import MERGE_LINKS
from sokhoe.store.ports import CareRow, StoreSession


def _merge_neighbours(tx: StoreSession, patient_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for person in tx.read_many([("Patient", p) for p in patient_ids]):
        others = [
            str(link["other"]["reference"]).split("/", 1)[1]
            for link in (person.content or {}).get("link", [])
            if link.get("type") in MERGE_LINKS
            and str((link.get("other") or {}).get("reference", "")).startswith("Patient/")
        ]
        out[person.id] = others
    return out


def group_of(tx: StoreSession, patient_id: str, limit: int = 50) -> list[str]:
    """``patient_id`` and every record merged with it (``fhir.patient_links`` in one pass per
    generation)."""
    seen = [patient_id]
    frontier = [patient_id]
    while frontier and len(seen) < limit:
        nxt: list[str] = []
        for others in _merge_neighbours(tx, frontier).values():
            for other in others:
                if other not in seen:
                    seen.append(other)
                    nxt.append(other)
        frontier = nxt
    return seen


def regroup_if_linked(tx: StoreSession, patient_ids: Sequence[str]) -> None:
    """Re-spread the rows of every merged person among ``patient_ids``."""
    linked = [p for p, others in _merge_neighbours(tx, patient_ids).items() if others]
    done: set[str] = set()
    for pid in linked:
        if pid not in done:
            group = group_of(tx, pid)
            done.update(group)
            regroup(tx, group)


def regroup(tx: StoreSession, group: Sequence[str]) -> None:
    """Make the rows of one person's records agree after a merge, an unmerge or a write.

    Every record keeps the rows granted on it (``via`` itself); it also receives a copy of
    each row granted on another record of the group: a proven row as it is, an unproven one
    only as ``own`` (write into the compartment, read what one wrote). Restrictions apply to
    the whole person. Copies that no longer belong (after an unmerge) are removed.
    """
    members = list(dict.fromkeys(group))
    rows = tx.care(members)
    originals = [r for r in rows if r.via == r.patient_id]
    copies = [r for r in rows if r.via != r.patient_id]
    wanted: dict[tuple[str, str, str, str, str], CareRow] = {}
    for row in originals:
        for member in members:
            if member == row.patient_id:
                continue
            level = row.level if row.proven else OWN
            copy = replace(row, patient_id=member, level=level)
            wanted[copy.key] = copy
    have = {r.key: r for r in copies}
    tx.unrelate([r for r in copies if wanted.get(r.key) != r])
    tx.relate([r for k, r in wanted.items() if have.get(k) != r])
    held = tx.restrictions(members)
    own = [x for x in held if x.via == x.patient_id]
    spread = {
        replace(x, patient_id=m).key: replace(x, patient_id=m)
        for x in own
        for m in members
        if m != x.patient_id
    }
    stale = [x for x in held if x.via != x.patient_id and x.key not in spread]
    tx.unrestrict(stale)
    kept = {h.key for h in held}
    tx.restrict([x for k, x in spread.items() if k not in kept])


def ungroup(tx: StoreSession, patient_ids: Sequence[str]) -> None:
    """Remove the copies among records that are no longer one person (after an unmerge),
    then re-spread what still belongs together."""
    members = list(dict.fromkeys(patient_ids))
    tx.unrelate([r for r in tx.care(members) if r.via != r.patient_id])
    tx.unrestrict([x for x in tx.restrictions(members) if x.via != x.patient_id])
    regroup_if_linked(tx, members)
