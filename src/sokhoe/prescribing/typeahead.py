"""The drug catalogue as value sets for ``ValueSet/$expand``: typeahead by name or ingredient.

``https://fhir.sokhoe.vn/ValueSet/drug-catalogue`` holds every current medicine of every
catalogue source, ``…/drug-catalogue-<source>`` one source's. Their codes live in the store, so
this module reads them (through the access door) and hands them to the one expansion engine of
``sokhoe.registry.terminology``, whose ``filter`` matches accent- and case-insensitively: ``para``,
``amlo``, ``vitamin c`` or ``hoat huyet`` find what a clinician means. Each row's search text
holds the name, the ingredients, the catalogue code, ``MA_THUOC`` and the ATC code.

The rows are kept per value set between requests, but only while the catalogue's value sets
(their stored versions and times, read from the database on every call) are unchanged: another
server process that imports a list is seen at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import NotFound
from sokhoe.prescribing.catalogue import VALUE_SET_BASE
from sokhoe.prescribing.catalogue_fhir import from_medication
from sokhoe.prescribing.catalogue_store import (
    catalogue_state,
    current_medications,
    value_set_id,
)
from sokhoe.registry.terminology import Row
from sokhoe.search.index import normalize_string

_CACHE: dict[str, tuple[tuple[tuple[str, int, str], ...], tuple[Row, ...]]] = {}


def source_of(url: str) -> tuple[bool, str | None]:
    """(is this a catalogue value set, its source or None for all sources)."""
    url = url.split("|", 1)[0]
    if url == VALUE_SET_BASE:
        return True, None
    if url.startswith(VALUE_SET_BASE + "-"):
        return True, url[len(VALUE_SET_BASE) + 1 :]
    return False, None


def medication_row(medication: dict[str, Any]) -> Row:
    entry = from_medication(medication)
    coding = medication["code"]["coding"][0]
    text = " ".join(
        [entry.name, *(i.name for i in entry.ingredients), entry.code, entry.ma_thuoc, entry.atc]
    )
    return Row(coding["system"], entry.code, entry.name, entry.name, normalize_string(text))


def catalogue_codes(repo: GuardedRepository, url: str) -> Sequence[Row] | None:
    """The rows of the catalogue value set at ``url`` (None when ``url`` is not one)."""
    known, source = source_of(url)
    if not known:
        return None
    state = catalogue_state(repo)
    if source is not None and not any(vs == value_set_id(source) for vs, _, _ in state):
        raise NotFound(f"Value set '{url}' is not known to this server")
    key = url.split("|", 1)[0]
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    rows = tuple(
        sorted(
            (medication_row(m) for m in current_medications(repo, source)),
            key=lambda r: (r.search, r.code),
        )
    )
    _CACHE[key] = (state, rows)
    return rows
