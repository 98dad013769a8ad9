"""Adapters to the formats facilities already speak (files, HL7 v2, DICOM, insurance XML)."""
