"""Validate and index resources ahead of the writer (in a bulk loader's worker processes).

One SQLite database has one writer, and validating plus extracting the search index costs
more CPU than the writer's inserts. A bulk load therefore hands each file (or NDJSON chunk) to
a worker process, which returns the validation issues and the index rows that do not depend on
server-assigned values; the single writer only resolves references, numbers versions and
writes. Where the writer has to change a resource first (a ``urn:uuid:`` or conditional
reference rewritten), it ignores the precomputed result and checks the resource itself, so
the outcome is identical with or without workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from sokhoe.errors import Issue
from sokhoe.fhir.profiles import UNCHANGED, Normalised, platform_rules
from sokhoe.fhir.references import walk_references
from sokhoe.fhir.validation import find_issues, reference_type
from sokhoe.search.index import extract_client_index, extract_index
from sokhoe.search.rows import IndexRows


@dataclass(frozen=True, slots=True)
class Checked:
    """What a worker found for one resource: its issues, or (if none) its client index rows."""

    issues: tuple[Issue, ...]
    index: IndexRows | None
    references: tuple[str, ...] = ()
    """Every literal reference in the resource, so the writer knows without walking it again
    whether any needs rewriting (``urn:uuid:``, conditional, another entry's fullUrl)."""
    normalised: Normalised = UNCHANGED
    """What the platform rules changed in place (canonical identifiers, sensitivity labels):
    the writer makes the same changes to its copy instead of running the rules again."""
    targets: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Reference text -> the resource types it may point at where it appears."""

    def rewritten(self, resource: dict[str, Any], changes: Mapping[str, str]) -> Checked | None:
        """This result for ``resource`` after the writer rewrote references (``changes``: old
        text -> new), or None when a new reference names a type its place does not allow (the
        writer then checks the resource whole, for the exact issue).

        Nothing the validator or the platform rules decide depends on a reference's text but
        the target type, so only that is checked again, and only the reference rows of the
        index are extracted again.
        """
        for old, new in changes.items():
            allowed = self.targets.get(old)
            if allowed is not None and reference_type(new) not in allowed:
                return None
        if self.index is None:
            return self
        references = extract_index(resource, "reference").references
        index = replace(self.index, references=references)
        texts = tuple(changes.get(r, r) for r in self.references)
        return replace(self, index=index, references=texts)


def precheck(resource: Any) -> Checked | None:
    """Issues and client index rows of ``resource`` (None when it is not even an object).

    The id and ``meta.lastUpdated`` are left out, as the writer assigns them (and checks ids).
    """
    if not isinstance(resource, dict):
        return None
    probe = dict(resource)
    probe.pop("id", None)
    targets: dict[str, frozenset[str]] = {}
    found = find_issues(probe, targets)
    rules, normalised = platform_rules(probe)
    issues = tuple(found + rules)
    references = tuple(ref["reference"] for ref in walk_references(probe))
    index = None if issues else extract_client_index(probe)
    return Checked(issues, index, references, normalised, targets)


def precheck_bundle(data: bytes) -> dict[int, Checked]:
    """Entry index -> result, for the POST/PUT entries of a Bundle (empty if unparsable)."""
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return precheck_entries(bundle)


def precheck_entries(bundle: Any) -> dict[int, Checked]:
    """Entry index -> result, for the POST/PUT entries of a parsed Bundle (of any shape: the
    transaction itself reports what is wrong with it).

    ``POST /fhir`` runs this before it opens the transaction, so that with several server
    processes one validates while another holds SQLite's write lock.
    """
    out: dict[int, Checked] = {}
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        request = entry.get("request") if isinstance(entry, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        if isinstance(method, str) and method.upper() in ("POST", "PUT"):
            checked = precheck(entry.get("resource"))
            if checked is not None:
                out[i] = checked
    return out


def precheck_lines(lines: list[bytes]) -> list[Checked | None]:
    """One result per NDJSON line (None where the line is not a JSON object)."""
    out: list[Checked | None] = []
    for line in lines:
        try:
            out.append(precheck(orjson.loads(line)))
        except orjson.JSONDecodeError:
            out.append(None)
    return out
