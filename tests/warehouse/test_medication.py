"""The prescribing and dispensing indicators from hand-written records: every number exact,
and every case that must not count (two antibiotic lines, a cancelled prescription, an
antifungal, a dispense entered in error, the same facility twice, supply periods that only
touch, two different groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.fhir.resources import new_id
from sokhoe.store import MemoryStore
from sokhoe.warehouse import indicators as ind
from sokhoe.warehouse.build import Warehouse

KEY = b"test-warehouse-key"
ATC = "http://www.whocc.no/atc"
CODES = "https://fhir.sokhoe.vn/sid/ma-don-thuoc"
FACILITY = "https://fhir.sokhoe.vn/StructureDefinition/prescribing-facility"
DISPENSING = "https://fhir.sokhoe.vn/StructureDefinition/dispensing"
OWNS = frozenset({"prescription", "dispensing"})
"""Prescriptions and dispenses are server-owned: the test writes them as their operations do."""
HCMC = {"use": "home", "city": "Phường Bến Thành", "state": "Thành phố Hồ Chí Minh"}


class Record:
    """Writes the test's facilities, people, visits, prescriptions and dispenses."""

    def __init__(self, repo: GuardedRepository) -> None:
        self.repo = repo
        self.codes = 0
        self.lines: dict[str, tuple[str, str]] = {}
        """Line id -> (Patient id, ATC code), for its dispenses."""
        self.requests: dict[str, dict[str, Any]] = {}
        """Line id -> the line as stored, with its prescription's other lines (``rx``)."""
        self.given: dict[str, int] = {}

    def put(self, resource: dict[str, Any], rid: str | None = None) -> str:
        rid = rid or new_id()
        self.repo.update({**resource, "id": rid}, resource["resourceType"], rid)
        return rid

    def _record_state(self, line: str) -> None:
        """What ``$dispense`` writes on every line of the prescription: its state."""
        group = [x for x, r in self.requests.items() if r["rx"] == self.requests[line]["rx"]]
        prescribed = {x: self.requests[x]["dispenseRequest"]["quantity"]["value"] for x in group}
        if all(self.given.get(x, 0) >= prescribed[x] for x in group):
            state = "completed"
        else:
            state = "partially-dispensed"
        for x in group:
            request = {k: v for k, v in self.requests[x].items() if k != "rx"}
            request["extension"] = [
                *request.get("extension", []),
                {"url": DISPENSING, "extension": [{"url": "state", "valueCode": state}]},
            ]
            self.put(request, x)

    def facility(self, code: str, name: str) -> str:
        return self.put(
            {
                "resourceType": "Organization",
                "identifier": [{"system": "https://fhir.sokhoe.vn/sid/ma-cskcb", "value": code}],
                "name": name,
                "type": [
                    {
                        "coding": [
                            {
                                "system": "https://fhir.sokhoe.vn/CodeSystem/facility-level",
                                "code": "commune",
                            }
                        ]
                    }
                ],
                "address": [HCMC],
            }
        )

    def person(self) -> str:
        return self.put(
            {
                "resourceType": "Patient",
                "gender": "female",
                "birthDate": "1970-05-01",
                "address": [HCMC],
            }
        )

    def visit(self, pid: str, org: str, start: str, status: str = "finished") -> str:
        return self.put(
            {
                "resourceType": "Encounter",
                "status": status,
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": start},
                "serviceProvider": {"reference": f"Organization/{org}"},
            }
        )

    def prescription(
        self,
        pid: str,
        org: str,
        authored: str,
        atcs: list[str],
        *,
        valid_until: str = "2026-06-30T00:00:00+07:00",
        days: int | None = 5,
        quantity: int = 10,
        status: str = "active",
        encounter: str | None = None,
        coded: bool = True,
    ) -> list[str]:
        """One prescription, a line per ATC code (as ``$prescribe`` writes it, or, not
        ``coded``, as a system without codes did); the lines' ids."""
        self.codes += 1
        code = f"79001{self.codes:07d}-C"
        lines = []
        for atc in atcs:
            request: dict[str, Any] = {
                "resourceType": "MedicationRequest",
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}]},
                "subject": {"reference": f"Patient/{pid}"},
                "authoredOn": authored,
                "dispenseRequest": {
                    "quantity": {"value": quantity, "unit": "Viên"},
                    "validityPeriod": {"start": authored, "end": valid_until},
                },
            }
            if days is not None:
                request["dispenseRequest"]["expectedSupplyDuration"] = {"value": days, "code": "d"}
            if encounter:
                request["encounter"] = {"reference": f"Encounter/{encounter}"}
            if coded:
                request["groupIdentifier"] = {"system": CODES, "value": code}
                request["extension"] = [
                    {"url": FACILITY, "valueReference": {"reference": f"Organization/{org}"}}
                ]
            lines.append(self.put(request))
            self.lines[lines[-1]] = (pid, atc)
            self.requests[lines[-1]] = {**request, "rx": code}
        return lines

    def dispense(
        self, line: str, quantity: int, when: str, pharmacy: str, status: str = "completed"
    ) -> None:
        pid, atc = self.lines[line]
        self.put(
            {
                "resourceType": "MedicationDispense",
                "status": status,
                "subject": {"reference": f"Patient/{pid}"},
                "medicationCodeableConcept": {"coding": [{"system": ATC, "code": atc}]},
                "performer": [{"actor": {"reference": f"Organization/{pharmacy}"}}],
                "authorizingPrescription": [{"reference": f"MedicationRequest/{line}"}],
                "quantity": {"value": quantity, "unit": "Viên"},
                "whenHandedOver": when,
            }
        )
        if status == "completed":
            self.given[line] = self.given.get(line, 0) + quantity
            self._record_state(line)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = MemoryStore()
    rec = Record(platform_repository(store, "http://test/fhir", owns=OWNS))
    a, b = rec.facility("79001", "Trạm Y tế A"), rec.facility("79002", "Bệnh viện B")
    pharmacy = rec.facility("79900", "Nhà thuốc P")
    march = "2026-03-10T09:00:00+07:00"
    ended = "2026-03-15T09:00:00+07:00"

    # Antibiotics and filling at A in March: ten visits, five prescriptions, three with an
    # antibiotic (one has two antibiotic lines; one has no code, its visit's lines are one).
    people = [rec.person() for _ in range(10)]
    visits = [rec.visit(pid, a, march) for pid in people]
    rec.visit(people[0], a, march, status="entered-in-error")  # not a visit
    two = rec.prescription(people[0], a, march, ["J01CA04", "J01FA10", "N02BE01"], quantity=15)
    rec.dispense(two[0], 10, "2026-03-10T10:00:00+07:00", pharmacy)
    rec.dispense(two[0], 5, "2026-03-12T10:00:00+07:00", pharmacy)  # in two parts: in full
    rec.dispense(two[1], 15, "2026-03-10T10:00:00+07:00", pharmacy)
    rec.dispense(two[2], 15, "2026-03-10T10:00:00+07:00", pharmacy)
    (partly,) = rec.prescription(people[1], a, march, ["J01MA02"], valid_until=ended)
    rec.dispense(partly, 5, "2026-03-11T10:00:00+07:00", pharmacy)
    rec.dispense(partly, 5, "2026-03-11T11:00:00+07:00", pharmacy, status="entered-in-error")
    rec.prescription(people[2], a, march, ["N02BE01"])  # nothing handed over
    rec.prescription(people[3], a, march, ["J01CA04"], status="cancelled")  # never counts
    for atc in ("J01CA04", "N02BE01"):  # before codes: one prescription per visit
        rec.prescription(people[4], a, march, [atc], encounter=visits[4], coded=False)
    forever = "2999-01-01T00:00:00Z"
    (started,) = rec.prescription(people[5], a, march, ["J02AC01"], valid_until=forever)
    rec.dispense(started, 4, "2026-03-11T10:00:00+07:00", pharmacy)  # still valid: 4 of 10
    # 03:00 on 1 April in Vietnam (still March in UTC): April's
    april = "2026-03-31T20:00:00Z"
    rec.visit(people[6], a, april)
    (whole,) = rec.prescription(people[6], a, april, ["J01CA04"])
    rec.dispense(whole, 10, "2026-04-01T08:00:00+07:00", pharmacy)
    # B in March: two visits, an antibiotic prescription still valid, nothing handed over yet
    for pid in people[7:9]:
        rec.visit(pid, b, march)
    rec.prescription(people[7], b, march, ["J01CA04"], valid_until=forever)

    # Overlaps in May, every person in Ho Chi Minh City.
    def course(pid: str, org: str, when: str, atc: str, days: int | None = 10) -> None:
        rec.prescription(pid, org, f"2026-05-{when}+07:00", [atc], days=days)

    counted = rec.person()  # J01CA at A, then J01CA at B four days later
    course(counted, a, "01T08:00:00", "J01CA04")
    course(counted, b, "05T08:00:00", "J01CA01")
    one_day = rec.person()  # no supply given: one day, as the claims check takes it
    course(one_day, a, "01T08:00:00", "J01CA04", days=None)
    course(one_day, b, "01T20:00:00", "J01CA04", days=None)
    tied = rec.person()  # the same instant at two facilities: one overlap, not two
    course(tied, a, "10T08:00:00", "J01MA02")
    course(tied, b, "10T08:00:00", "J01MA02")
    same_place = rec.person()  # the same facility twice: not across facilities
    course(same_place, a, "01T08:00:00", "J01CA04")
    course(same_place, a, "03T08:00:00", "J01CA04")
    touching = rec.person()  # the second starts as the first ends: no overlap
    course(touching, a, "01T08:00:00", "J01CA04", days=5)
    course(touching, b, "06T08:00:00", "J01CA04")
    other_group = rec.person()  # J01CA and J01CR: different level-4 groups
    course(other_group, a, "01T08:00:00", "J01CA04")
    course(other_group, b, "02T08:00:00", "J01CR02")
    cancelled = rec.person()
    course(cancelled, a, "01T08:00:00", "J01CA04")
    rec.prescription(cancelled, b, "2026-05-02T08:00:00+07:00", ["J01CA04"], status="cancelled")

    folder = tmp_path_factory.mktemp("wh")
    report = Warehouse(folder, KEY).build(store)
    assert report.rows["medication_dispense"] == 8
    return folder


def _rows(folder: Path, name: str, **filters: Any) -> list[dict[str, Any]]:
    with ind.open_warehouse(folder) as con:
        return ind.run(con, ind.indicator(name), **filters).rows


def test_antibiotic_prescriptions_per_100_visits(warehouse: Path) -> None:
    rows = _rows(
        warehouse, "antibiotic_prescriptions", start="2026-03", end="2026-04", suppress_below=1
    )
    found = [
        (
            r["month"],
            r["facility_code"],
            r["visits"],
            r["prescriptions"],
            r["antibiotic_prescriptions"],
            r["antibiotic_per_100_visits"],
            r["antibiotic_pct"],
        )
        for r in rows
    ]
    assert found == [
        # 10 visits (one entered in error left out); 5 prescriptions: the one with two
        # antibiotic lines once, the visit without codes once, the cancelled one not at all,
        # the antifungal (J02) not an antibiotic
        ("2026-03", "79001", 10, 5, 2 + 1, 30.0, 60.0),
        ("2026-03", "79002", 2, 1, 1, 50.0, 100.0),
        ("2026-04", "79001", 1, 1, 1, 100.0, 100.0),
    ]
    assert [r["facility"] for r in rows] == ["Trạm Y tế A", "Bệnh viện B", "Trạm Y tế A"]


def test_small_counts_are_hidden_with_their_rates(warehouse: Path) -> None:
    rows = _rows(warehouse, "antibiotic_prescriptions", start="2026-03", end="2026-03")
    by_facility = {r["facility_code"]: r for r in rows}
    assert by_facility["79002"]["suppressed"]
    hidden = ("visits", "antibiotic_prescriptions", "antibiotic_per_100_visits")
    assert all(by_facility["79002"][c] is ind.SUPPRESSED for c in hidden)
    # A's March: 10 visits but 3 antibiotic and 2 other prescriptions, each a small count
    assert by_facility["79001"]["antibiotic_per_100_visits"] is ind.SUPPRESSED


def test_prescriptions_filled_by_dispensing_state(warehouse: Path) -> None:
    rows = _rows(
        warehouse, "prescriptions_filled", start="2026-03", end="2026-04", suppress_below=1
    )
    found = [
        (r["month"], r["facility_code"], r["prescribed"], r["filled"], r["partly"], r["not_filled"])
        for r in rows
    ]
    # A in March: in full (in two parts), in part (the dispense entered in error not counted),
    # in part and still valid (counted now, as what it is so far), nothing; the cancelled one
    # and the lines without a code are not e-prescriptions. B: still valid, nothing handed over
    # yet. (Counting only prescriptions whose validity had ended left both still-valid ones
    # out, and B altogether.)
    assert found == [
        ("2026-03", "79001", 4, 1, 2, 1),
        ("2026-03", "79002", 1, 0, 0, 1),
        ("2026-04", "79001", 1, 1, 0, 0),
    ]
    assert (rows[0]["filled_pct"], rows[0]["partly_pct"], rows[0]["not_filled_pct"]) == (
        25.0,
        50.0,
        25.0,
    )


def test_overlapping_prescriptions_across_facilities(warehouse: Path) -> None:
    nation = _rows(
        warehouse, "overlapping_prescriptions", start="2026-05", end="2026-05", suppress_below=1
    )
    found = [
        (r["month"], r["atc_group"], r["people"], r["overlapping_prescriptions"]) for r in nation
    ]
    # J01C: four days into ten at another facility, and two one-day supplies 12 hours apart;
    # J01M: two at the same instant count once. Not: the same facility, periods that touch,
    # J01CA against J01CR, a cancelled prescription.
    assert found == [("2026-05", "J01C", 2, 2), ("2026-05", "J01M", 1, 1)]
    province = _rows(
        warehouse, "overlapping_prescriptions", province="79", end="2026-05", suppress_below=1
    )
    assert [(r["atc_group"], r["people"]) for r in province] == [("J01C", 2), ("J01M", 1)]
    hidden = _rows(warehouse, "overlapping_prescriptions", end="2026-05")
    assert all(r["people"] is ind.SUPPRESSED for r in hidden)


def test_the_views_keep_no_prescription_code(warehouse: Path) -> None:
    """The code is printed on paper and in the citizen's health book: the warehouse holds its
    pseudonym, so a code cannot find its person here, and its type beside it."""
    import duckdb

    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT prescription_key, prescription_type, atc_level3, atc_level4 "
            "FROM medication_request WHERE atc = 'J01FA10'"
        ).fetchall()
        handed = con.execute(
            "SELECT count(*) FROM medication_dispense d "
            "JOIN medication_request m USING (medication_request_key)"
        ).fetchone()
    ((key, kind, level3, level4),) = rows
    assert len(key) == 32 and not key.startswith("79001")
    assert (kind, level3, level4) == ("C", "J01F", "J01FA")
    assert handed == (8,)  # every dispense joins its line through the pseudonyms


def test_a_warehouse_built_before_a_view_changed_is_rebuilt_in_full(tmp_path: Path) -> None:
    """A refresh would fill new columns only for the resources changed since: a table whose
    columns are not its view's makes the next build a full one."""
    import duckdb

    store = MemoryStore()
    rec = Record(platform_repository(store, "http://test/fhir", owns=OWNS))
    org = rec.facility("79001", "Trạm Y tế A")
    rec.prescription(rec.person(), org, "2026-03-10T09:00:00+07:00", ["J01CA04"])
    warehouse = Warehouse(tmp_path / "wh", KEY)
    assert warehouse.build(store).full
    with duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb")) as con:  # an older view
        con.execute("ALTER TABLE medication_request DROP COLUMN atc_level4")
        con.execute("UPDATE medication_request SET atc = NULL")
    again = warehouse.build(store)
    assert again.full and again.rows["medication_request"] == 1
    assert not warehouse.build(store).full  # and then refreshes as before
    with duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("SELECT atc, atc_level4 FROM medication_request").fetchall()
    assert found == [("J01CA04", "J01CA")]


def test_the_dashboard_summary_adds_up_the_published_cells(warehouse: Path) -> None:
    from sokhoe.web.dashboard_summaries import summary

    with ind.open_warehouse(warehouse) as con:
        results = [
            ind.run(con, member, start="2026-03", end="2026-03", suppress_below=1)
            for member in ind.in_family("medication")
        ]
        hidden = [
            ind.run(con, member, start="2026-03", end="2026-03")
            for member in ind.in_family("medication")
        ]
    # A and B in March: 4 antibiotic prescriptions in 12 visits; 1 of 5 filled in full
    assert summary("medication", results, "vi") == (
        "33,3 đơn có kháng sinh trên 100 lượt khám; 20,0% đơn thuốc được cấp đủ "
        "(trong các ô được công bố)."
    )
    assert summary("medication", results, "en").startswith("33.3 antibiotic prescriptions")
    # every March cell is small: nothing is added up from hidden ones
    assert summary("medication", hidden, "vi") == (
        "Không có số liệu với bộ lọc này (hoặc mọi ô đều bị ẩn)."
    )
