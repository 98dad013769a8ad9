"""A finding of the checks as the record keeps it: a ``DetectedIssue``.

Each one names the lines it concerns (``implicated``: the new ``MedicationRequest``s, and the
allergy or the other facility's prescription involved), the rule and the version of the rules
(``code`` and ``reference``), what was found in Vietnamese (``detail``: record data, read at any
facility and by the pharmacist) and, for a warning the prescriber overrode, their reason
(``mitigation``). The record keeps them beside the prescription for as long as the prescription.
See: https://hl7.org/fhir/R4/detectedissue.html
"""

from __future__ import annotations

from typing import Any, Final

from sokhoe.fhir.resources import new_id
from sokhoe.prescribing.checks import Finding
from sokhoe.prescribing.interactions import VERSION as INTERACTIONS_VERSION
from sokhoe.prescribing.rules import RuleSet

CHECK_SYSTEM: Final = "https://fhir.sokhoe.vn/CodeSystem/prescribing-check"
"""The platform's code for each rule (``duration``, ``allergy``…): what marks a DetectedIssue
as the prescribing checks' own (server-owned, ``access/writes.py``)."""
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RULES_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/prescribing-rules"
"""The versions of the rule table and the interaction table a finding was checked against."""
OVERRIDE: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "1",
    "display": "Therapy Appropriate",
}
"""The mitigation of an overridden warning (ActDetectedIssueManagementCode 1: the prescriber
judged the therapy appropriate despite the issue), with their reason as text."""


def detected_issue(
    finding: Finding,
    *,
    patient_id: str,
    line_refs: dict[int, str],
    author: dict[str, Any],
    when: str,
    rules: RuleSet,
    override: str = "",
) -> dict[str, Any]:
    """The DetectedIssue of ``finding`` for the issued lines (``line_refs``: index → ref)."""
    coding = [{"system": CHECK_SYSTEM, "code": finding.rule}]
    if finding.v3_code:
        coding.append({"system": V3_ACT_CODE, "code": finding.v3_code})
    implicated = [{"reference": line_refs[i]} for i in finding.lines if i in line_refs]
    implicated += [{"reference": ref} for ref in finding.implicated]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": new_id(),
        "extension": [
            {
                "url": RULES_EXTENSION,
                "extension": [
                    {"url": "rules", "valueString": rules.version},
                    {"url": "interactions", "valueString": INTERACTIONS_VERSION},
                ],
            }
        ],
        "status": "final",
        "code": {"coding": coding, "text": finding.rule},
        "severity": finding.severity,
        "patient": {"reference": f"Patient/{patient_id}"},
        "identifiedDateTime": when,
        "author": author,
        "implicated": implicated,
        "detail": finding.vi,
    }
    if override.strip() and not finding.blocking:
        issue["mitigation"] = [
            {
                "action": {"coding": [OVERRIDE], "text": override.strip()},
                "date": when,
                "author": author,
            }
        ]
    return issue


__all__ = ["CHECK_SYSTEM", "OVERRIDE", "RULES_EXTENSION", "detected_issue"]
