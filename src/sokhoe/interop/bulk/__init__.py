"""FHIR Bulk Data Access: asynchronous ``$export`` and streaming NDJSON ``$import``."""
