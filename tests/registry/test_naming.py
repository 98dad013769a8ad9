"""NamingSystems: one per identifier system, valid R4, fixed ids."""

from __future__ import annotations

from sokhoe.fhir.validation import find_issues
from sokhoe.mpi import identifiers
from sokhoe.registry.naming import MRN_PATTERN, naming_systems, registry_resources


def test_valid_and_fixed() -> None:
    resources = registry_resources()
    assert resources == registry_resources()
    assert all(r["resourceType"] == "NamingSystem" for r in resources)
    ids = [r["id"] for r in resources]
    assert len(set(ids)) == len(ids)
    for r in resources:
        assert find_issues(r) == [], (r["id"], find_issues(r))
        assert r["status"] == "active"
        assert r["kind"] == "identifier"
        assert r["publisher"] == "sokhoe"
        assert r["uniqueId"][0]["type"] == "uri"
        assert r["uniqueId"][0]["preferred"] is True


def test_every_identifier_system_published() -> None:
    uris = {r["uniqueId"][0]["value"] for r in naming_systems()}
    systems = {
        value
        for name, value in vars(identifiers).items()
        if name.isupper()
        and isinstance(value, str)
        and value.startswith("https://")
        # a prefix is no system: each facility's record numbers have their own (mrn_system)
        and not name.endswith("_PREFIX")
    }
    assert systems <= uris
    assert MRN_PATTERN in uris
    assert not any("phone" in uri for uri in uris)
