"""Date search across precisions, by the specification's range rules, on every store: a stored
value covers a range at its precision ([low, high)) and so does a searched one; each prefix is a
condition on the two. Dates without a zone are Vietnam's days.
See: https://hl7.org/fhir/R4/search.html#prefix and https://hl7.org/fhir/R4/search.html#date"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

STORED: dict[str, dict[str, Any]] = {
    "instant": {"effectiveDateTime": "2020-06-15T10:00:00+07:00"},  # within 15 June
    "month": {"effectiveDateTime": "2020-06"},  # the whole of June
    "straddle": {  # from the 14th noon to the 15th noon
        "effectivePeriod": {
            "start": "2020-06-14T12:00:00+07:00",
            "end": "2020-06-15T12:00:00+07:00",
        }
    },
    "next-day": {"effectiveDateTime": "2020-06-16"},
}


@pytest.fixture
def ids(client: TestClient) -> dict[str, str]:
    made = {}
    for name, effective in STORED.items():
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": name},
            **effective,
        }
        made[name] = client.post("/fhir/Observation", json=body).json()["id"]
    return made


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # eq: the searched range holds the stored one whole
        ("eq2020-06-15", {"instant"}),
        ("2020-06-15", {"instant"}),
        ("eq2020-06", {"instant", "month", "straddle", "next-day"}),
        ("eq2020-06-15T10:00:00+07:00", {"instant"}),
        ("eq2020-06-15T03:00:00Z", {"instant"}),  # the same instant in UTC
        ("ne2020-06-15", {"month", "straddle", "next-day"}),
        # gt / lt: the range above / below the searched one meets the stored one
        ("gt2020-06-15", {"month", "next-day"}),
        ("lt2020-06-15", {"month", "straddle"}),
        # ge / le: as gt / lt, or the searched range holds the stored one whole; a stored range
        # that only ends (starts) inside the searched one does not match
        ("ge2020-06-15", {"instant", "month", "next-day"}),
        ("le2020-06-15", {"instant", "month", "straddle"}),
        ("le2020-06-14", {"month"}),
        ("ge2020-06-16", {"month", "next-day"}),
        # sa / eb: entirely after / before
        ("sa2020-06-15", {"next-day"}),
        ("eb2020-06-16", {"instant", "straddle"}),
        ("eb2020-06-15", set()),
    ],
)
def test_date_prefixes_follow_the_range_rules(
    client: TestClient, ids: dict[str, str], search: str, expected: set[str]
) -> None:
    found = client.get("/fhir/Observation", params={"date": search}).json()
    names = {
        n for n, rid in ids.items() for e in found.get("entry", []) if e["resource"]["id"] == rid
    }
    assert names == expected
