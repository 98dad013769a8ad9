"""Facility codes to shared codes: a facility's local lab codes translated to LOINC.

Each facility names its tests its own way (``GLU``, ``XN-DUONG-HUYET``…). The translation is
data, not code: a ``ConceptMap`` stored in the record whose ``group.source`` is the facility's
local code system URI (:func:`local_system`) and ``group.target`` LOINC. Loading one is an
ordinary FHIR write (``POST /fhir/ConceptMap`` or ``sokhoe hl7 load-conceptmap FILE``). The
original coding is always kept and the mapped one added, so nothing the facility said is lost.
See: https://hl7.org/fhir/R4/conceptmap.html
"""

from __future__ import annotations

from typing import Any

from sokhoe.fhir.repository import FhirRepository
from sokhoe.store.ports import StoreSession

LOINC = "http://loinc.org"
MAPPED_EQUIVALENCES = frozenset({"equivalent", "equal", "wider", "subsumes", "relatedto"})
"""ConceptMap equivalences good enough to add the target coding (not ``narrower``,
``inexact``, ``unmatched`` or ``disjoint``)."""


def local_system(facility: str, kind: str = "lab") -> str:
    """The code system of one facility's local codes (``kind``: lab, order…)."""
    return f"https://fhir.sokhoe.vn/CodeSystem/local/{facility}/{kind}"


class ConceptTranslator:
    """Look-ups in the ConceptMaps of one code system, read once per message transaction."""

    def __init__(self, repo: FhirRepository, tx: StoreSession | None) -> None:
        """``tx`` None: no look-ups (checking a message's shape before its transaction)."""
        self.repo = repo
        self.tx = tx
        self._maps: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def _table(self, system: str) -> dict[str, list[dict[str, Any]]]:
        if self.tx is None:
            return {}
        if system not in self._maps:
            table: dict[str, list[dict[str, Any]]] = {}
            query = self.repo.parse_query(
                "ConceptMap",
                [("source-system", system), ("_count", "50"), ("_total", "none")],
                strict=True,
            )
            for found in self.tx.search(query).matches:
                content = found.content or {}
                if content.get("status") == "retired":
                    continue
                for group in content.get("group", []):
                    if group.get("source") != system or group.get("target") != LOINC:
                        continue
                    for element in group.get("element", []):
                        for target in element.get("target", []):
                            if target.get("equivalence") in MAPPED_EQUIVALENCES:
                                coding = {"system": LOINC, "code": target.get("code")}
                                if target.get("display"):
                                    coding["display"] = target["display"]
                                table.setdefault(str(element.get("code")), []).append(coding)
            self._maps[system] = table
        return self._maps[system]

    def codeable(self, system: str, code: str, display: str, text: str = "") -> dict[str, Any]:
        """A CodeableConcept of the local code plus its LOINC translations, if any."""
        local: dict[str, Any] = {"system": system, "code": code}
        if display:
            local["display"] = display
        codings = [local]
        for mapped in self._table(system).get(code, []):
            if mapped not in codings:
                codings.append(mapped)
        concept: dict[str, Any] = {"coding": codings}
        if text or display:
            concept["text"] = text or display
        return concept

    def with_mappings(self, concept: dict[str, Any]) -> dict[str, Any]:
        """``concept`` plus the LOINC codings its local codings map to (none twice)."""
        codings = list(concept.get("coding", []))
        for coding in list(codings):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or system == LOINC or not isinstance(code, str):
                continue
            for mapped in self._table(system).get(code, []):
                if mapped not in codings:
                    codings.append(mapped)
        return {**concept, "coding": codings}
