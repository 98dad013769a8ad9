"""Keeping the drug catalogue in the store: imports as versions, the reference list, reads.

A source's catalogue version is a ``ValueSet`` (id ``drug-catalogue-<source>``) whose
``version`` is the number and whose stored history keeps every earlier version's date and
description; each medicine is a ``Medication`` whose ``catalogue-entry`` extension names the
version that last changed it. An import writes only what changed: an unchanged medicine keeps
its version, one missing from the new file becomes ``inactive`` (never deleted: prescriptions
keep pointing at it), and a file identical to the current version makes no version at all.
Earlier versions stay readable: the entry as of version N is the Medication's latest stored
version whose catalogue version is at most N (:func:`entry_at`).

Every write is one operation of the access door that alone owns the catalogue
(``access/writes.py``): all of a file or nothing, audited under its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.writes import DRUG_CATALOGUE_TAG
from sokhoe.errors import InvalidRequest, NotFound
from sokhoe.fhir.repository import validated
from sokhoe.fhir.resources import format_instant, same_content
from sokhoe.prescribing.catalogue import (
    REFERENCE_SOURCE,
    SOURCE_PATTERN,
    CatalogueEntry,
    system_of,
    value_set_url,
)
from sokhoe.prescribing.catalogue_fhir import (
    catalogue_version,
    from_medication,
    medication_id,
    to_medication,
    with_version,
)
from sokhoe.store.ports import StoredResource, StoreSession

OWNS = frozenset({"drug-catalogue"})
ALL_SOURCES_ID = "drug-catalogue"
_CHUNK = 500
_EVERYTHING = 10_000_000


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one import did to its source's catalogue."""

    source: str
    version: int
    """The catalogue version now current (unchanged when the file changed nothing)."""
    created: int
    changed: int
    retired: int
    unchanged: int

    @property
    def new_version(self) -> bool:
        return bool(self.created or self.changed or self.retired)


@dataclass(frozen=True, slots=True)
class CatalogueVersion:
    source: str
    version: int
    date: str
    description: str


def value_set_id(source: str) -> str:
    return f"{ALL_SOURCES_ID}-{source}"


def check_source(source: str) -> str:
    if not SOURCE_PATTERN.match(source):
        raise InvalidRequest(
            f"Catalogue source '{source}': lower-case letters, digits and '-', up to 20",
            "source",
        )
    return source


def import_catalogue(
    repo: GuardedRepository,
    source: str,
    entries: Sequence[CatalogueEntry],
    *,
    label: str,
    progress: Callable[[int], object] | None = None,
) -> ImportReport:
    """Make ``entries`` the current catalogue of ``source``, as a new version if anything
    changed; ``label`` (the file, the list's name) goes into the version's description."""
    check_source(source)
    with repo.operation(
        "catalogue-import",
        resource_type="Medication",
        interactions=["create", "update"],
        owns=OWNS,
        reason=f"drug catalogue {source}: {label}",
    ) as tx:
        found = tx.read("ValueSet", value_set_id(source))
        current = found.content if found is not None and not found.deleted else None
        previous = int(current["version"]) if current is not None else 0
        version = previous + 1
        existing = {r.id: r.content for r in _medications(repo, tx, source) if r.content}
        writes: list[dict[str, Any]] = []
        created = changed = unchanged = retired = 0
        for entry in entries:
            old = existing.pop(medication_id(source, entry.code), None)
            built = to_medication(entry, source, catalogue_version(old) if old else version)
            if old is not None and same_content(old, built):
                unchanged += 1
            else:
                writes.append(with_version(built, version))
                created += old is None
                changed += old is not None
            if progress is not None:
                progress(1)
        for old in existing.values():
            if old.get("status") != "inactive":
                writes.append(with_version({**old, "status": "inactive"}, version))
                retired += 1
        _write(repo, tx, writes)
        report = ImportReport(source, version, created, changed, retired, unchanged)
        if report.new_version or current is None:
            vs = _value_set(source, version, label, report, format_instant(repo.clock()))
            repo.update(vs, "ValueSet", vs["id"], tx=tx)
            sources = {source, *_sources(repo, tx)}
            repo.update(_all_sources(sorted(sources)), "ValueSet", ALL_SOURCES_ID, tx=tx)
            return report
        return ImportReport(source, previous, 0, 0, 0, unchanged)


def _write(repo: GuardedRepository, tx: StoreSession, resources: list[dict[str, Any]]) -> None:
    """Validate and store ``resources`` a chunk at a time: one write (and one audit row) per
    chunk rather than per medicine, which makes a Ministry-sized list several times faster."""
    when = repo.clock()
    for start in range(0, len(resources), _CHUNK):
        chunk = resources[start : start + _CHUNK]
        versions = tx.current_versions("Medication", [r["id"] for r in chunk])
        items = []
        for resource in chunk:
            validated(resource, "Medication")
            previous = versions.get(resource["id"])
            version = 1 if previous is None else previous + 1
            items.append(repo.prepare(resource, resource["id"], version, "PUT", previous, when))
        tx.write(items)


@cache
def reference_entries() -> tuple[CatalogueEntry, ...]:
    """The reference list that ships with the platform (``data/reference.csv``)."""
    from sokhoe.prescribing.catalogue_file import read_catalogue

    path = resources.files("sokhoe.prescribing") / "data" / "reference.csv"
    return tuple(read_catalogue(Path(str(path))))


def publish_reference(repo: GuardedRepository) -> ImportReport:
    """Store the reference list (every start; an unchanged list makes no new version)."""
    return import_catalogue(
        repo, REFERENCE_SOURCE, reference_entries(), label="sokhoe reference list"
    )


def _query(repo: GuardedRepository, rtype: str, params: list[tuple[str, str]]) -> Any:
    return repo.parse_query(rtype, params, strict=True)


def _read_all(tx: StoreSession, rtype: str, ids: Sequence[str]) -> Iterator[StoredResource]:
    for start in range(0, len(ids), _CHUNK):
        yield from tx.read_many([(rtype, i) for i in ids[start : start + _CHUNK]])


def _medications(
    repo: GuardedRepository, tx: StoreSession, source: str | None, active_only: bool = False
) -> list[StoredResource]:
    params = [("_tag", f"{DRUG_CATALOGUE_TAG}|{source or ''}")]
    if active_only:
        params.append(("status", "active"))
    ids = tx.search_ids(_query(repo, "Medication", params), _EVERYTHING)
    return list(_read_all(tx, "Medication", ids))


def _sources(repo: GuardedRepository, tx: StoreSession) -> list[str]:
    query = _query(repo, "ValueSet", [("_tag", f"{DRUG_CATALOGUE_TAG}|")])
    prefix = f"{ALL_SOURCES_ID}-"
    return [i[len(prefix) :] for i in tx.search_ids(query, _EVERYTHING) if i.startswith(prefix)]


def _tag(source: str | None) -> dict[str, Any]:
    return {"tag": [{"system": DRUG_CATALOGUE_TAG, "code": source or "all"}]}


def _value_set(
    source: str, version: int, label: str, report: ImportReport, when: str
) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": value_set_id(source),
        "meta": _tag(source),
        "url": value_set_url(source),
        "version": str(version),
        "name": f"DrugCatalogue_{source.replace('-', '_')}",
        "title": f"Danh mục thuốc ({source}), phiên bản {version}",
        "status": "active",
        "date": when,
        "publisher": "sokhoe",
        "description": (
            f"Version {version} of the '{source}' drug catalogue, from {label}: "
            f"{report.created} new, {report.changed} changed, {report.retired} withdrawn, "
            f"{report.unchanged} unchanged."
        ),
        "compose": {"include": [{"system": system_of(source)}]},
    }


def _all_sources(sources: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": ALL_SOURCES_ID,
        "meta": _tag(None),
        "url": value_set_url(),
        "name": "DrugCatalogue",
        "title": "Danh mục thuốc (mọi nguồn)",
        "status": "active",
        "publisher": "sokhoe",
        "description": "Every current medicine of every drug catalogue; $expand with filter "
        "finds them by name or active ingredient, without accents.",
        "compose": {"include": [{"valueSet": [value_set_url(s) for s in sources]}]},
    }


# -- reading ------------------------------------------------------------------------------
def current_medications(repo: GuardedRepository, source: str | None = None) -> list[dict[str, Any]]:
    """The active catalogue Medications of ``source`` (every source when None)."""
    with repo.snapshot() as tx:
        found = _medications(repo, tx, source, active_only=True)
    return [r.content for r in found if r.content is not None]


def catalogue_state(repo: GuardedRepository) -> tuple[tuple[str, int, str], ...]:
    """(source value set, stored version, last updated) of every source: what the catalogue's
    current content depends on, cheap to read (a cache key for typeahead)."""
    with repo.snapshot() as tx:
        query = _query(repo, "ValueSet", [("_tag", f"{DRUG_CATALOGUE_TAG}|")])
        ids = tx.search_ids(query, _EVERYTHING)
        return tuple(
            sorted(
                (r.id, r.version_id, r.last_updated.isoformat())
                for r in _read_all(tx, "ValueSet", ids)
            )
        )


def catalogue_versions(repo: GuardedRepository, source: str) -> list[CatalogueVersion]:
    """Every version of ``source``'s catalogue, oldest first."""
    try:
        stored, _ = repo.history("ValueSet", value_set_id(check_source(source)), None, 1000, 0)
    except NotFound:
        return []
    out = [
        CatalogueVersion(
            source, int(r.content["version"]), r.content["date"], r.content["description"]
        )
        for r in stored
        if r.content is not None
    ]
    return sorted(out, key=lambda v: v.version)


def entry_at(
    repo: GuardedRepository, source: str, code: str, version: int | None = None
) -> dict[str, Any] | None:
    """The Medication for ``code`` as it stood in catalogue ``version`` (the current one when
    None); None when the code was not in that version."""
    rid = medication_id(check_source(source), code)
    try:
        stored, _ = repo.history("Medication", rid, None, 1000, 0)
    except NotFound:
        return None
    best: dict[str, Any] | None = None
    for r in sorted(stored, key=lambda s: s.version_id):
        if r.content is None:
            continue
        if version is None or catalogue_version(r.content) <= version:
            best = r.content
    if best is None or best.get("status") != "active":
        return None
    return best


def current_entries(repo: GuardedRepository, source: str | None = None) -> list[CatalogueEntry]:
    """The current medicines (of one source, or all), sorted by name."""
    entries = [from_medication(m) for m in current_medications(repo, source)]
    return sorted(entries, key=lambda e: (e.name.casefold(), e.code))
