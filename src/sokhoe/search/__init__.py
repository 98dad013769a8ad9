"""FHIR search: what gets indexed for each parameter, how a query string is parsed, and how it
is compiled for a store."""
