"""Search parameters the platform adds to R4's own: few, each for a contract others rely on.

They are defined like the R4 ones (the compact form ``definitions.search_parameter_definitions``
returns), so the index extracts them at every write and the CapabilityStatement lists them.
A parameter indexes what is written after it is added: each one here arrived with the first
resources that carry its element (prescriptions are issued only by ``$prescribe``, their
dispensing state written only by ``$dispense``), except ``match-key``, which migration 0023
computed for the Patients already stored.

One, ``match-key``, has no FHIRPath: its ``extractor`` names the function that computes it.
"""

from __future__ import annotations

from typing import Any, Final

PLATFORM_SEARCH_PARAMETERS: Final[tuple[dict[str, Any], ...]] = (
    {
        "url": "https://fhir.sokhoe.vn/SearchParameter/MedicationRequest-group-identifier",
        "code": "group-identifier",
        "base": ["MedicationRequest"],
        "type": "token",
        "expression": "MedicationRequest.groupIdentifier",
        "target": [],
        "description": (
            "The prescription a line belongs to: its code (mã đơn thuốc, system "
            "https://fhir.sokhoe.vn/sid/ma-don-thuoc), shared by every line"
        ),
    },
    {
        "url": "https://fhir.sokhoe.vn/SearchParameter/MedicationRequest-dispensing-state",
        "code": "dispensing-state",
        "base": ["MedicationRequest"],
        "type": "token",
        "expression": (
            "MedicationRequest.extension('https://fhir.sokhoe.vn/StructureDefinition/dispensing')"
            ".extension('state').value"
        ),
        "target": [],
        "description": (
            "How much of the prescription a pharmacy handed over (written by $dispense): "
            "partially-dispensed or completed; a line never dispensed has none"
        ),
    },
    {
        "url": "https://fhir.sokhoe.vn/SearchParameter/Patient-match-key",
        "code": "match-key",
        "base": ["Patient"],
        "type": "string",
        "expression": None,
        "extractor": "sokhoe.mpi.keys:match_keys",
        "target": [],
        "description": (
            "The patient index's blocking keys (sokhoe.mpi.keys): a folded name with the birth "
            "month or date, the whole name with the birth year, the birth date with a place, "
            "a name with a ward, each name last (a string search matches by prefix); $match "
            "finds its candidates by them"
        ),
    },
)

__all__ = ["PLATFORM_SEARCH_PARAMETERS"]
