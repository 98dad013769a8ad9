"""E-prescribing and dispensing (Circular 26/2025/TT-BYT).

The drug catalogue:

- :class:`CatalogueEntry` / :class:`Ingredient`: one medicine of a catalogue (``catalogue``);
- :func:`read_catalogue`: a CSV/Excel list, every row checked (``catalogue_file``);
- :func:`import_catalogue`, :func:`publish_reference`: a source's list as a new catalogue
  version, server-owned (``catalogue_store``); :func:`entry_at`, :func:`current_entries`,
  :func:`catalogue_versions` read current and earlier versions;
- :func:`to_medication` / :func:`from_medication`: the FHIR ``Medication`` (``catalogue_fhir``);
- :func:`catalogue_codes`: the catalogue value sets for ``ValueSet/$expand`` (``typeahead``).

The prescription: ``code`` (the 14-character code), ``rules`` (the versioned limits),
``interactions`` (the curated table), ``checks`` (the rules as pure functions), ``context``
(what they read from the record), ``issue`` (findings as DetectedIssues), ``prescribe`` (the
service behind ``MedicationRequest/$prescribe`` and the visit page). The national prescription
system: ``national`` (mapping, client, outbox).
Dispensing: ``pharmacy`` (who may dispense), ``lookup`` (a pharmacy reads one prescription by its
code), ``dispense`` (``$dispense``: once, never beyond what was prescribed) and
``dispensing_state`` (what was handed over, kept on the lines).
"""

from sokhoe.prescribing.catalogue import (
    ATC_SYSTEM,
    DRUG_CLASS_SYSTEM,
    DRUG_SYSTEM,
    EXT_DRUG_CLASS,
    INGREDIENT_SYSTEM,
    MA_THUOC_SYSTEM,
    NARCOTIC,
    PRESCRIPTION_ONLY,
    PSYCHOTROPIC,
    REFERENCE_SOURCE,
    REGISTRATION_SYSTEM,
    TRADITIONAL,
    VALUE_SET_BASE,
    CatalogueEntry,
    Ingredient,
    ingredient_key,
    system_of,
    value_set_url,
)
from sokhoe.prescribing.catalogue_fhir import (
    classes_of,
    from_medication,
    medication_id,
    to_medication,
)
from sokhoe.prescribing.catalogue_file import CatalogueFileError, RowError, read_catalogue
from sokhoe.prescribing.catalogue_store import (
    CatalogueVersion,
    ImportReport,
    catalogue_versions,
    current_entries,
    current_medications,
    entry_at,
    import_catalogue,
    publish_reference,
    reference_entries,
)
from sokhoe.prescribing.typeahead import catalogue_codes

__all__ = [
    "ATC_SYSTEM",
    "DRUG_CLASS_SYSTEM",
    "DRUG_SYSTEM",
    "EXT_DRUG_CLASS",
    "INGREDIENT_SYSTEM",
    "MA_THUOC_SYSTEM",
    "NARCOTIC",
    "PRESCRIPTION_ONLY",
    "PSYCHOTROPIC",
    "REFERENCE_SOURCE",
    "REGISTRATION_SYSTEM",
    "TRADITIONAL",
    "VALUE_SET_BASE",
    "CatalogueEntry",
    "CatalogueFileError",
    "CatalogueVersion",
    "ImportReport",
    "Ingredient",
    "RowError",
    "catalogue_codes",
    "catalogue_versions",
    "classes_of",
    "current_entries",
    "current_medications",
    "entry_at",
    "from_medication",
    "import_catalogue",
    "ingredient_key",
    "medication_id",
    "publish_reference",
    "read_catalogue",
    "reference_entries",
    "system_of",
    "to_medication",
    "value_set_url",
]
