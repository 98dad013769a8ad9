"""The terminology service: the code systems and value sets the record understands.

Pure functions over in-memory tables (ICD-10 from ``terminology_icd10``, the small systems from
``terminology_local``); ``sokhoe.operations.terminology`` turns them into the FHIR ``$lookup``,
``$expand`` and ``$validate-code`` operations, and ``diagnosis_issues`` is the write-time check
that refuses diagnoses coded with something that is not ICD-10.
See: https://hl7.org/fhir/R4/terminology-service.html
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sokhoe.errors import InvalidRequest, Issue, NotFound
from sokhoe.registry.terminology_icd10 import (
    ICD10_SYSTEM,
    ICD10_VERSION,
    icd10_entry,
    icd10_index,
    recordable_keys,
)
from sokhoe.registry.terminology_local import LOCAL_SYSTEMS, LocalCodeSystem
from sokhoe.search.index import normalize_string

ICD10_VALUE_SET = "http://hl7.org/fhir/ValueSet/icd-10"
MAX_EXPANSION = 1000
"""Largest page of an expansion: all of ICD-10 (12,000 codes) is paged with offset/count."""

DIAGNOSIS_TYPES = frozenset(
    {
        "Condition",
        "Encounter",
        "Procedure",
        "EpisodeOfCare",
        "ServiceRequest",
        "MedicationRequest",
        "Claim",
        "ExplanationOfBenefit",
    }
)
"""Resources whose ICD-10 codings are checked on write: those that carry diagnoses."""


@dataclass(frozen=True, slots=True)
class CodeSystemInfo:
    url: str
    name: str
    title: str
    version: str


@dataclass(frozen=True, slots=True)
class Row:
    """One code as value sets see it, with the folded text that ``filter`` matches against."""

    system: str
    code: str
    display: str
    display_vi: str | None
    search: str

    def display_in(self, language: str | None) -> str:
        if language and language.lower().startswith("vi") and self.display_vi:
            return self.display_vi
        return self.display


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer of ``$lookup``; ``properties`` are (code, value) pairs in output order."""

    system: CodeSystemInfo
    code: str
    display: str
    display_vi: str | None
    properties: tuple[tuple[str, str | bool], ...]


@dataclass(frozen=True, slots=True)
class Validation:
    result: bool
    message: str | None
    display: str | None


@dataclass(frozen=True, slots=True)
class Expansion:
    url: str
    total: int
    offset: int
    contains: tuple[Row, ...]


_LOCAL: dict[str, LocalCodeSystem] = {cs.url: cs for cs in LOCAL_SYSTEMS}
CODE_SYSTEMS: dict[str, CodeSystemInfo] = {
    ICD10_SYSTEM: CodeSystemInfo(
        ICD10_SYSTEM, "ICD10", "ICD-10 (WHO 2019, Bộ Y tế)", ICD10_VERSION
    ),
    **{cs.url: CodeSystemInfo(cs.url, cs.name, cs.title, cs.version) for cs in LOCAL_SYSTEMS},
}
VALUE_SETS: dict[str, str] = {
    ICD10_VALUE_SET: ICD10_SYSTEM,
    **{cs.value_set: cs.url for cs in LOCAL_SYSTEMS},
}
"""Each value set holds every code of one code system (for ICD-10: every recordable code)."""


def code_system(url: str) -> CodeSystemInfo:
    """The code system at ``url`` (a ``|version`` suffix is ignored), or ``NotFound``."""
    info = CODE_SYSTEMS.get(url.split("|", 1)[0])
    if info is None:
        raise NotFound(f"Code system '{url}' is not known to this server")
    return info


def value_set_system(url: str) -> str:
    """The code system a value set draws from, or ``NotFound``."""
    system = VALUE_SETS.get(url.split("|", 1)[0])
    if system is None:
        raise NotFound(f"Value set '{url}' is not known to this server")
    return system


def _search_text(*parts: str | None) -> str:
    return normalize_string(" ".join(p for p in parts if p))


@cache
def rows(system: str) -> tuple[Row, ...]:
    """The codes of ``system`` that a value set expands to, in code-system order (cached)."""
    if system == ICD10_SYSTEM:
        return tuple(
            Row(
                system,
                e.code,
                e.display,
                e.display_vi,
                _search_text(e.code, e.display, e.display_vi),
            )
            for e in icd10_index().values()
            if e.kind == "category"
        )
    return tuple(
        Row(system, c.code, c.display, c.display_vi, _search_text(c.code, c.display, c.display_vi))
        for c in _LOCAL[system].concepts.values()
    )


def _find(system: str, code: str) -> Row | None:
    if system == ICD10_SYSTEM:
        entry = icd10_entry(code)
        if entry is None or entry.kind != "category":
            return None
        return Row(system, entry.code, entry.display, entry.display_vi, "")
    concept = _LOCAL[system].concepts.get(code)
    if concept is None:
        return None
    return Row(system, concept.code, concept.display, concept.display_vi, "")


def lookup(system: str, code: str) -> Lookup:
    """Details of one code; ICD-10 codes also name their parent, children, kind and leafness.

    ICD-10 lookup also answers for chapters (``X``) and blocks (``J00-J06``), so that a client
    can walk up and down the classification from the ``parent``/``child`` properties.
    See: https://hl7.org/fhir/R4/codesystem-operation-lookup.html
    """
    info = code_system(system)
    if info.url == ICD10_SYSTEM:
        entry = icd10_entry(code)
        if entry is None:
            raise NotFound(f"'{code}' is not an ICD-10 code")
        props: list[tuple[str, str | bool]] = [("kind", entry.kind)]
        if entry.parent:
            props.append(("parent", entry.parent))
        props += [("child", child) for child in entry.children]
        props.append(("leaf", entry.leaf))
        return Lookup(info, entry.code, entry.display, entry.display_vi, tuple(props))
    row = _find(info.url, code)
    if row is None:
        raise NotFound(f"'{code}' is not a code of {info.url}")
    return Lookup(info, row.code, row.display, row.display_vi, ())


def expand(
    url: str,
    text_filter: str | None = None,
    offset: int = 0,
    count: int | None = None,
    codes: Sequence[Row] | None = None,
) -> Expansion:
    """The codes of the value set at ``url``, optionally filtered, one page at a time.

    ``filter`` is a case- and accent-insensitive substring of the code or of either display, so
    ``duong`` finds *đái tháo đường* and ``e119`` finds ``E11.9``. ``codes`` are the value
    set's rows when they live in the store rather than in this module (the drug catalogue, read
    by ``sokhoe.prescribing``); the same filter and paging apply to them.
    See: https://hl7.org/fhir/R4/valueset-operation-expand.html
    """
    if offset < 0 or (count is not None and count < 0):
        raise InvalidRequest("offset and count must not be negative")
    selected: Sequence[Row] = rows(value_set_system(url)) if codes is None else codes
    if text_filter and text_filter.strip():
        needle = normalize_string(text_filter)
        bare = needle.replace(".", "")
        selected = [
            r
            for r in selected
            if needle in r.search or (bare and bare in r.code.lower().replace(".", ""))
        ]
    size = MAX_EXPANSION if count is None else min(count, MAX_EXPANSION)
    return Expansion(url, len(selected), offset, tuple(selected[offset : offset + size]))


def validate_code(
    system: str, code: str, display: str | None = None, value_set: str | None = None
) -> Validation:
    """Whether ``code`` is in ``system`` (and in ``value_set`` when given), checking ``display``.

    An unknown code is an answer (``result`` false), not an error; an unknown code system or
    value set is an error, since nothing can be said about the code. A display matches the
    English or the Vietnamese one, ignoring case and accents.
    See: https://hl7.org/fhir/R4/codesystem-operation-validate-code.html
    """
    info = code_system(system)
    if value_set is not None and value_set_system(value_set) != info.url:
        return Validation(
            False, f"Code system '{info.url}' is not in value set '{value_set}'", None
        )
    row = _find(info.url, code)
    if row is None:
        if info.url == ICD10_SYSTEM and icd10_entry(code) is not None:
            msg = f"'{code}' is an ICD-10 chapter or block, not a code that a record may carry"
        else:
            msg = f"'{code}' is not a code of {info.url}"
        return Validation(False, msg, None)
    if display is not None:
        wanted = normalize_string(display)
        known = [d for d in (row.display, row.display_vi) if d]
        if wanted not in {normalize_string(d) for d in known}:
            msg = f"Display '{display}' does not match '{row.display}' for code '{row.code}'"
            return Validation(False, msg, row.display)
    return Validation(True, None, row.display)


def diagnosis_issues(resource: dict[str, Any]) -> list[Issue]:
    """Issues for every ICD-10 coding in a diagnosis-bearing resource whose code is not ICD-10.

    Runs on every write, so it only walks resources of ``DIAGNOSIS_TYPES`` and checks each code
    against a cached set (codes count with or without the dot). Chapters and blocks are refused:
    they classify diagnoses but are not diagnoses. Codings of other systems are left alone
    (Synthea's SNOMED CT passes untouched).
    """
    rtype = resource.get("resourceType")
    if rtype not in DIAGNOSIS_TYPES:
        return []
    valid = recordable_keys()
    issues: list[Issue] = []
    for path, code in _icd10_codes(resource, str(rtype)):
        if code.strip().upper().replace(".", "") not in valid:
            issues.append(Issue("code-invalid", f"'{code}' is not an ICD-10 code", path))
    return issues


def _icd10_codes(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath of the ``code`` element, code) for each ICD-10 Coding under ``node``."""
    if isinstance(node, dict):
        if node.get("system") == ICD10_SYSTEM and isinstance(node.get("code"), str):
            yield f"{path}.code", node["code"]
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _icd10_codes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _icd10_codes(item, f"{path}[{i}]")
