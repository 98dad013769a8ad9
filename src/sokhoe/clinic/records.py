"""Reading the record for a page: one search, confined by the door, as plain resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Forbidden, NotFound
from sokhoe.fhir.references import codings
from sokhoe.registry.terminology_icd10 import icd10_entry


def find(
    repo: GuardedRepository,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    count: int = 50,
) -> list[dict[str, Any]]:
    """The first ``count`` matches the caller may see (the door puts its rights in the query,
    so the page is full whenever more exist). No total is counted: a page shows the matches,
    and counting every match (3,500 vital signs for a patient of 500 visits) cost the chart
    more than reading the ones it shows."""
    query = repo.parse_query(
        resource_type, [*params, ("_count", str(count)), ("_total", "none")], strict=True
    )
    return [m.content for m in repo.search(query).matches if m.content is not None]


def read(repo: GuardedRepository, resource_type: str, rid: str) -> dict[str, Any] | None:
    """The resource, or None when it does not exist or the caller may not see it (a page shows
    the same either way, as the API does)."""
    try:
        found = repo.read(resource_type, rid)
    except (NotFound, Forbidden):
        return None
    return found.content


def text_of(concept: Any) -> str:
    """What a person reads for a CodeableConcept: its text, else the first display, else code."""
    if isinstance(concept, dict) and concept.get("text"):
        return str(concept["text"])
    for coding in codings(concept):
        if coding.get("display"):
            return str(coding["display"])
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return ""


def condition_text(condition: dict[str, Any], lang: str = "vi") -> str:
    """A diagnosis as a clinician reads it: the ICD-10 code and its title (the Ministry's
    Vietnamese title for ``lang`` vi), else what the Condition says."""
    for coding in codings(condition.get("code")):
        entry = icd10_entry(str(coding["code"])) if coding.get("code") else None
        if entry is not None:
            title = (entry.display_vi if lang == "vi" else None) or entry.display
            return f"{entry.code} {title}"
    return text_of(condition.get("code"))
