"""The canonical form: the same versions give the same bytes whatever the order, the key order
or the server's bookkeeping; any change to what is signed changes the hash."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from sokhoe.clinic.canonical import canonical_form, canonical_resource, versioned_reference


def _obs(rid: str, value: float, version: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {
            "versionId": version,
            "lastUpdated": "2026-01-02T03:04:05.000Z",
            "security": [{"system": "x", "code": "PSY"}],
        },
        "status": "final",
        "valueQuantity": {"value": value, "unit": "/min"},
    }


ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "meta": {"versionId": "3"},
    "status": "finished",
}


def test_order_keys_and_bookkeeping_do_not_change_the_bytes() -> None:
    one = canonical_form([ENCOUNTER, _obs("o1", 72), _obs("o2", 80)])
    shuffled = [_obs("o2", 80), dict(reversed(list(_obs("o1", 72).items()))), ENCOUNTER]
    shuffled[0]["meta"]["lastUpdated"] = "2030-01-01T00:00:00.000Z"
    shuffled[0]["meta"].pop("security")
    two = canonical_form(shuffled)
    assert one.data == two.data and one.sha256 == two.sha256
    assert one.sha256 == hashlib.sha256(one.data).hexdigest()
    assert one.references == (
        "Encounter/e1/_history/3",
        "Observation/o1/_history/1",
        "Observation/o2/_history/1",
    )


def test_the_bytes_are_sorted_json_with_only_the_version_kept() -> None:
    data = canonical_form([_obs("o1", 72)]).data
    assert b" " not in data.replace(b"/min", b"")
    parsed = orjson.loads(data)
    assert parsed == [canonical_resource(_obs("o1", 72))]
    assert parsed[0]["meta"] == {"versionId": "1"}
    assert data.index(b'"id"') < data.index(b'"meta"') < data.index(b'"resourceType"')


@pytest.mark.parametrize(
    "changed",
    [
        [ENCOUNTER, _obs("o1", 73)],  # a value
        [ENCOUNTER, _obs("o1", 72, version="2")],  # the version signed
        [ENCOUNTER],  # a resource left out
        [ENCOUNTER, _obs("o1", 72), _obs("o3", 72)],  # one more
    ],
)
def test_any_change_to_what_is_signed_changes_the_hash(changed: list[dict[str, Any]]) -> None:
    assert canonical_form(changed).sha256 != canonical_form([ENCOUNTER, _obs("o1", 72)]).sha256


def test_only_stored_versions_once_each_can_be_signed() -> None:
    with pytest.raises(ValueError, match="versionId"):
        canonical_form([{"resourceType": "Observation", "id": "x"}])
    with pytest.raises(ValueError, match="twice"):
        canonical_form([_obs("o1", 72), _obs("o1", 72, version="2")])
    with pytest.raises(ValueError, match="Nothing"):
        canonical_form([])
    assert versioned_reference(ENCOUNTER) == "Encounter/e1/_history/3"
