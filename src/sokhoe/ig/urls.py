"""The canonical URLs of the Vietnam core profiles and extensions, importable from anywhere
(the demo generator, the writers) without loading the profiles themselves."""

from __future__ import annotations

from typing import Final

SD_BASE: Final = "https://fhir.sokhoe.vn/StructureDefinition/"
PATIENT: Final = f"{SD_BASE}vn-core-patient"
PRACTITIONER: Final = f"{SD_BASE}vn-core-practitioner"
ORGANIZATION: Final = f"{SD_BASE}vn-core-organization"
ENCOUNTER: Final = f"{SD_BASE}vn-core-encounter"
ETHNICITY: Final = f"{SD_BASE}ethnicity"
PAYER: Final = f"{SD_BASE}encounter-payer"
ROUTE: Final = f"{SD_BASE}encounter-route"
