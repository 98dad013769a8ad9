"""FHIR operations, one module per ``$operation`` with its definition beside the handler."""
