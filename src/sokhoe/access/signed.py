"""Signed content, as the door sees it: which Provenances are signatures, which versions they
freeze.

Circular 13/2025/TT-BYT (Art. 3): an electronic medical record is signed by a digital signature
or another electronic confirmation; signed content is frozen, and a correction is an amendment
that is signed again, both staying visible. The signing operations (``clinic/signing.py``)
record each signature as a Provenance whose ``activity`` is a code of
:data:`SIGNATURE_ACTIVITY` and whose targets are the versioned references of what was signed.

The door uses this module twice: such a Provenance is server-owned (``access/writes.py``,
kind ``signature``: no client creates, changes or deletes one), and a version a signature
targets is never replaced or deleted (``access/session.py``), except by the amendment
operation, whose session owns :data:`AMENDMENT`. The look-up is a search in the write's own
transaction, so a signature committed just before, or written earlier in the same
transaction, is seen.
See: https://hl7.org/fhir/R4/provenance.html and https://hl7.org/fhir/R4/datatypes.html#Signature
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import StoreSession

SIGNATURE_ACTIVITY = "https://fhir.sokhoe.vn/CodeSystem/signature-activity"
"""``sign`` | ``amend``: what a signature Provenance records."""
SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
AUTHOR_SIGNATURE = "1.2.840.10065.1.12.1.1"
"""ASTM E1762 "Author's Signature": the clinician signs what they wrote."""
AMENDMENT = "amendment"
"""What an amendment's session owns: the right to replace a signed version."""
FROZEN = "signed content is frozen; write an amendment"
STATE = "prescription-state"
"""What the prescription's state operations own (dispensing, cancellation): the right to move a
signed ``MedicationRequest`` on — its ``status``, ``statusReason`` and the dispensing
extension (``prescribing/dispensing_state.py``: state, dispensed quantity, count) — while every
signed element stays as it was (:func:`state_only`)."""
STATE_EXTENSIONS = frozenset({"https://fhir.sokhoe.vn/StructureDefinition/dispensing"})


def state_only(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Whether ``after`` changes nothing of a signed MedicationRequest but its state."""
    if before is None or after is None or before.get("resourceType") != "MedicationRequest":
        return False

    def signed_part(content: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in content.items() if k not in ("status", "statusReason", "meta")}
        extensions = [
            e for e in content.get("extension", []) if e.get("url") not in STATE_EXTENSIONS
        ]
        kept.pop("extension", None)
        if extensions:
            kept["extension"] = extensions
        return kept

    return signed_part(before) == signed_part(after)


Parse = Callable[[str, Sequence[tuple[str, str]]], SearchQuery]
"""Builds a search (the door's ``parse_query``)."""

_FIRST_LIMIT = 256


def is_signature(content: dict[str, Any] | None) -> bool:
    """Whether ``content`` is a signature Provenance (its activity is a signature activity)."""
    if content is None or content.get("resourceType") != "Provenance":
        return False
    activity = content.get("activity")
    codings = activity.get("coding", []) if isinstance(activity, dict) else []
    return any(isinstance(c, dict) and c.get("system") == SIGNATURE_ACTIVITY for c in codings)


def signatures_of(
    tx: StoreSession, parse: Parse, references: Sequence[str]
) -> list[dict[str, Any]]:
    """The signature Provenances targeting any version of ``references`` (``Type/id``).

    One search in ``tx`` (``Provenance?target=…&signature-type=…``), read back whole: the
    index keeps a target's type and id, the version is checked on the contents.
    """
    if not references:
        return []
    query = parse(
        "Provenance",
        [
            ("target", ",".join(sorted(set(references)))),
            ("signature-type", f"{SIGNATURE_TYPE_SYSTEM}|{AUTHOR_SIGNATURE}"),
        ],
    )
    limit = _FIRST_LIMIT
    while True:  # never cut short: a signature missed would unfreeze what it signed
        ids = tx.search_ids(query, limit)
        if len(ids) < limit:
            break
        limit *= 4
    found = tx.read_many([("Provenance", i) for i in ids])
    return [p.content for p in found if not p.deleted and is_signature(p.content) and p.content]


def signed_versions(
    tx: StoreSession, parse: Parse, versions: Sequence[tuple[str, str, int]]
) -> dict[tuple[str, str, int], str]:
    """Which of ``versions`` (type, id, version) a signature targets -> that Provenance's id."""
    wanted = {f"{t}/{i}/_history/{v}": (t, i, v) for t, i, v in versions}
    out: dict[tuple[str, str, int], str] = {}
    for provenance in signatures_of(tx, parse, [f"{t}/{i}" for t, i, _ in versions]):
        for target in provenance.get("target", []):
            ref = target.get("reference") if isinstance(target, dict) else None
            if isinstance(ref, str) and ref in wanted:
                out.setdefault(wanted[ref], str(provenance.get("id")))
    return out
