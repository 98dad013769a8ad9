"""Patient lists and visit records exported from existing software (CSV, Excel).

Facilities moving onto the platform bring years of data in their old hospital information
system's exports. ``sokhoe import patients|visits FILE --mapping MAP.json`` reads them with a
column-mapping file (``mapping``), streams the rows (``reader``), turns each into FHIR
resources (``fields``, ``records``) and writes them through the access door, idempotently
(``importer``), with a row-by-row report (``report``). See ``importer`` for the transaction
modes (per row by default, ``--all-or-nothing``, ``--dry-run``).

Samples (``samples/``, synthetic people, facility 79001):

- ``patients_cp1258.csv``: a patient list as older software writes it: Windows-1258, ``;``
  separated, ``dd/MM/yyyy`` dates, one birth year only, an old province name (Bình Dương),
  with ``patients.mapping.json``.
- ``visits.csv``: the visit register of those patients: UTF-8 with a BOM, ``,`` separated,
  ``dd/MM/yyyy HH:mm`` times, ICD-10 codes with secondary codes ``;``-separated (one typed as
  ``s525``), with ``visits.mapping.json``.

An ``.xlsx`` version is not committed (binary); the tests build one with openpyxl.
"""

from sokhoe.interop.legacy.access import import_principal
from sokhoe.interop.legacy.importer import Job, LegacyImporter
from sokhoe.interop.legacy.mapping import Mapping, load_mapping
from sokhoe.interop.legacy.report import ImportReport, RowResult

__all__ = [
    "ImportReport",
    "Job",
    "LegacyImporter",
    "Mapping",
    "RowResult",
    "import_principal",
    "load_mapping",
]
