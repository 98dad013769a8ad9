"""Correcting a signed visit's summary: an amendment, signed again (Circular 13/2025/TT-BYT).

Signed content is frozen (``access/signed.py``). What a clinician most often has to correct
after signing is the visit summary — the four parts the health book shows — so the page offers
exactly that: the summary ``Composition`` with new section texts, written by
:func:`~sokhoe.clinic.signing.amend` (which replaces the signed version and signs the visit
again, activity ``amend``, with the reason). The first signature and the version it signed stay
readable in the history.
See: https://hl7.org/fhir/R4/composition.html
"""

from __future__ import annotations

from html import escape
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.printing import plain_text
from sokhoe.clinic.records import find
from sokhoe.clinic.visit import LOINC, SUMMARY_SECTIONS
from sokhoe.fhir.references import codings

_BY_CODE = {code: (key, title, display) for key, title, code, display in SUMMARY_SECTIONS}


def summary_of(repo: GuardedRepository, encounter_id: str) -> dict[str, Any] | None:
    """The visit's summary Composition, as the caller may see it."""
    found = find(repo, "Composition", [("encounter", f"Encounter/{encounter_id}")], 5)
    return found[0] if found else None


def section_texts(composition: dict[str, Any]) -> dict[str, str]:
    """The four parts' texts by form key (empty when a part was not written)."""
    texts = dict.fromkeys((key for key, *_ in SUMMARY_SECTIONS), "")
    for section in composition.get("section", []):
        for coding in codings(section.get("code")):
            if coding.get("code") in _BY_CODE:
                key = _BY_CODE[str(coding["code"])][0]
                texts[key] = plain_text(str((section.get("text") or {}).get("div", "")))
    return texts


def amended(composition: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    """``composition`` with the four parts replaced by ``texts`` (other sections kept)."""
    kept = [
        s
        for s in composition.get("section", [])
        if not any(c.get("code") in _BY_CODE for c in codings(s.get("code")))
    ]
    parts = [
        {
            "title": title,
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "text": {
                "status": "generated",
                "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(texts[key])}</div>',
            },
        }
        for key, title, code, display in SUMMARY_SECTIONS
        if texts.get(key, "").strip()
    ]
    changed = {k: v for k, v in composition.items() if k != "meta"}
    changed["section"] = kept + parts
    return changed


__all__ = ["amended", "section_texts", "summary_of"]
