"""Search parameters the platform adds to R4's own: few, each for a contract others rely on.

They are defined like the R4 ones (the compact form ``definitions.search_parameter_definitions``
returns), so the index extracts them at every write and the CapabilityStatement lists them.
A parameter indexes what is written after it is added: each one here arrived with the first
resources that carry its element (prescriptions are issued only by ``$prescribe``, their
dispensing state written only by ``$dispense``).
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
)

__all__ = ["PLATFORM_SEARCH_PARAMETERS"]
