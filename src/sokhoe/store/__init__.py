"""Storage of FHIR resources behind one protocol (:class:`FhirStore`): memory or SQL."""

from sokhoe.store.memory import MemoryStore
from sokhoe.store.ports import FhirStore, StoredResource, WriteItem

__all__ = ["FhirStore", "MemoryStore", "StoredResource", "WriteItem"]
