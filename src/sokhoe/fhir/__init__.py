"""The FHIR R4 core: definitions, validation, search parameters, bundles. No HTTP, no SQL."""
