"""HL7 v2 (2.3–2.5.1) messages in and ACKs out: MLLP listener, HTTP endpoint, FHIR mapping."""
