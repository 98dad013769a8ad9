"""The de-identified health data warehouse: SQL on FHIR views, indicators, surveillance."""
