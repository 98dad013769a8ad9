"""The prescribing and dispensing indicators (issue 13, item 9), over the ``medication_request``
and ``medication_dispense`` views.

Definitions (the README's warehouse section repeats them):

- **A prescription** is what one code (*mã đơn thuốc*) covers: the lines ``$prescribe`` issued
  together (``groupIdentifier``). Lines written before e-prescribing, or by a system without
  codes, have none: the lines of one visit then count as one prescription (as the insurance
  XML 2 groups a visit's drugs), a line with no visit as its own. Lines cancelled (a prescription
  cancelled and replaced counts once, as its replacement), entered in error or still drafts
  never count. A prescription belongs to its prescribing facility (the
  ``prescribing-facility`` extension, else its visit's facility) and to the month it was issued,
  in Vietnam's time.
- **Antibiotic prescriptions per 100 visits** (``antibiotic_prescriptions``): per facility and
  month, 100 × the prescriptions with at least one line of ATC group J01 (antibacterials for
  systemic use), however many such lines, over the facility's visits: its ``Encounter``s
  starting that month (cancelled or entered in error left out), with or without a
  prescription. The share of its prescriptions with an antibiotic is shown beside it.
- **Prescriptions filled** (``prescriptions_filled``): per prescribing facility and month of
  issue, every e-prescription (with a code; cancelled ones never count) once, by its
  dispensing state, the state ``$dispense`` records on every line of it in the transaction
  that hands medicine over (``prescribing/dispensing_state.py``): **filled** (``completed``:
  every line handed over in full), **partly filled** (``partially-dispensed``) or **not
  filled** (``issued``: nothing handed over yet, whether still valid or expired unfilled).
  A prescription still valid counts too (as what it is so far): counting only those whose
  validity ended hid this month's prescriptions, and what the pharmacies did with them,
  until a week later.
- **Overlapping prescriptions across facilities** (``overlapping_prescriptions``): a person
  prescribed the same ATC level-4 group (chemical subgroup, e.g. J01CA penicillins with
  extended spectrum) at two different facilities with overlapping supply periods. A supply
  period runs from issue for the prescribed days (``expectedSupplyDuration``, 1 day when
  missing); two overlap when each starts before the other ends. Per month of the later
  prescription (the one issued while the other was still being taken; the same instant: the
  larger code) and the person's province, by the group's level-3 parent: the people, and the
  later prescriptions. The claims export warns of the same thing for one visit
  (``interop/claims/checks.py``: same supply period, same overlap test, the same default of one
  day, cancelled prescriptions left out); it differs in two ways on purpose: it compares active
  ingredients from the exporting facility's price list, which the warehouse does not have
  (the ATC level-4 group is what the prescribing check of duplicate therapy uses, and catches
  two ingredients of one group), and it warns of overlaps at the same facility too, which a
  facility sees on its own (only the shared record sees across facilities, which is what this
  counts).

Every count here is protected as the other indicators' are: prescriptions and visits are at
least one per person, so a cell with 1 to 4 of any is hidden, with its rates.
"""

from __future__ import annotations

from typing import Final

from sokhoe.warehouse.cells import NATION, PROVINCE, Cube, Rate
from sokhoe.warehouse.definition import FACILITY, N_, Indicator

ANTIBIOTICS: Final = "J01"
"""ATC group of antibacterials for systemic use (WHO ATC index)."""
LOCAL_TIME: Final = "Asia/Ho_Chi_Minh"
NOT_PRESCRIBED: Final = "('cancelled', 'entered-in-error', 'draft')"
"""MedicationRequest statuses that are not a prescription given to a patient."""


def _month(instant: str) -> str:
    return f"strftime(timezone('{LOCAL_TIME}', {instant}), '%Y-%m')"


LINES: Final = f"""
    SELECT m.medication_request_key, m.patient_key, m.quantity,
           upper(m.atc) AS atc, upper(m.atc_level3) AS atc_level3,
           upper(m.atc_level4) AS atc_level4,
           coalesce(m.prescription_key, 'visit:' || m.encounter_key,
                    'line:' || m.medication_request_key) AS rx,
           m.prescription_key IS NOT NULL AS coded,
           coalesce(m.facility_id, e.facility_id) AS facility_id,
           CAST(m.authored AS TIMESTAMPTZ) AS issued,
           CAST(m.valid_until AS TIMESTAMPTZ) AS valid_until,
           coalesce(nullif(m.supply_days, 0), 1) AS days,
           coalesce(m.dispensing_state, 'issued') AS dispensing_state,
           {_month("CAST(m.authored AS TIMESTAMPTZ)")} AS month
    FROM medication_request m LEFT JOIN encounter e ON e.encounter_key = m.encounter_key
    WHERE m.authored IS NOT NULL AND coalesce(m.status, '') NOT IN {NOT_PRESCRIBED}
"""
"""Every prescribed line with its prescription (``rx``), facility, issue and month (see the
module docstring)."""

_FACILITY_COLUMNS: Final = "f.province_code, f.code AS facility_code, f.name AS facility, f.level"

_ANTIBIOTICS: Final = Cube(
    name="antibiotic_prescriptions",
    sql=f"""
        WITH lines AS ({LINES}), rx AS (
            SELECT facility_id, month, rx,
                   bool_or(coalesce(starts_with(atc, '{ANTIBIOTICS}'), false)) AS antibiotic
            FROM lines WHERE facility_id IS NOT NULL
            GROUP BY facility_id, month, rx
        ), given AS (
            SELECT facility_id, month, count(*) AS prescriptions,
                   count(*) FILTER (WHERE antibiotic) AS antibiotic_prescriptions
            FROM rx GROUP BY facility_id, month
        ), seen AS (
            SELECT facility_id, {_month("CAST(start AS TIMESTAMPTZ)")} AS month,
                   count(*) AS visits
            FROM encounter
            WHERE start IS NOT NULL AND facility_id IS NOT NULL
              AND coalesce(status, '') NOT IN ('cancelled', 'entered-in-error')
            GROUP BY facility_id, month
        )
        SELECT month, {_FACILITY_COLUMNS},
               coalesce(s.visits, 0) AS visits,
               coalesce(g.prescriptions, 0) AS prescriptions,
               coalesce(g.antibiotic_prescriptions, 0) AS antibiotic_prescriptions
        FROM seen s FULL JOIN given g USING (facility_id, month)
             JOIN facility f USING (facility_id)
    """,
    tiers=(FACILITY,),
    period="month",
    measures=("visits", "prescriptions", "antibiotic_prescriptions"),
    counts=("visits", "prescriptions", "antibiotic_prescriptions"),
    parts=(("prescriptions", "antibiotic_prescriptions"),),
    rates=(
        Rate("antibiotic_per_100_visits", "antibiotic_prescriptions", "visits"),
        Rate("antibiotic_pct", "antibiotic_prescriptions", "prescriptions"),
    ),
)

_FILLED: Final = Cube(
    name="prescriptions_filled",
    sql=f"""
        WITH lines AS ({LINES}), outcome AS (
            SELECT rx, any_value(month) AS month, any_value(facility_id) AS facility_id,
                   bool_and(dispensing_state = 'completed') AS whole,
                   bool_or(dispensing_state IN ('partially-dispensed', 'completed')) AS started
            FROM lines WHERE coded GROUP BY rx
        )
        SELECT o.month, {_FACILITY_COLUMNS},
               count(*) AS prescribed,
               count(*) FILTER (WHERE whole) AS filled,
               count(*) FILTER (WHERE started AND NOT whole) AS partly,
               count(*) FILTER (WHERE NOT started) AS not_filled
        FROM outcome o JOIN facility f USING (facility_id)
        GROUP BY o.month, f.province_code, f.code, f.name, f.level
    """,
    tiers=(FACILITY,),
    period="month",
    measures=("prescribed", "filled", "partly", "not_filled"),
    counts=("prescribed", "filled", "partly", "not_filled"),
    rates=(
        Rate("filled_pct", "filled", "prescribed"),
        Rate("partly_pct", "partly", "prescribed"),
        Rate("not_filled_pct", "not_filled", "prescribed"),
    ),
)

_OVERLAPS: Final = Cube(
    name="overlapping_prescriptions",
    sql=f"""
        WITH lines AS ({LINES}), spans AS (
            SELECT patient_key, rx, facility_id, atc_level3, atc_level4, month,
                   issued AS start,
                   issued + to_microseconds(CAST(days * 86400000000 AS BIGINT)) AS stop
            FROM lines
            WHERE patient_key IS NOT NULL AND facility_id IS NOT NULL
              AND length(atc_level4) = 5
        ), overlapping AS (
            SELECT DISTINCT later.patient_key, later.rx, later.month, later.atc_level3
            FROM spans later JOIN spans earlier
              ON later.patient_key = earlier.patient_key
             AND later.atc_level4 = earlier.atc_level4
             AND later.facility_id <> earlier.facility_id
             AND later.start < earlier.stop AND earlier.start < later.stop
             AND (later.start > earlier.start
                  OR (later.start = earlier.start AND later.rx > earlier.rx))
        )
        SELECT p.province_code, any_value(p.province_name) AS province, o.month,
               o.atc_level3 AS atc_group,
               count(DISTINCT o.patient_key) AS people,
               count(DISTINCT o.rx) AS overlapping_prescriptions
        FROM overlapping o JOIN patient p USING (patient_key)
        GROUP BY p.province_code, o.month, o.atc_level3
    """,
    tiers=(NATION, PROVINCE),
    period="month",
    dimensions=("atc_group",),
    measures=("people", "overlapping_prescriptions"),
    counts=("people", "overlapping_prescriptions"),
)

MEDICATION: Final = (
    Indicator(
        name="antibiotic_prescriptions",
        family="medication",
        title=N_("Antibiotic prescriptions per 100 visits, by facility and month"),
        cube=_ANTIBIOTICS,
        by="facility",
        columns=(
            "month",
            "facility_code",
            "facility",
            "level",
            "visits",
            "prescriptions",
            "antibiotic_prescriptions",
            "antibiotic_per_100_visits",
            "antibiotic_pct",
        ),
        order=("month", "facility_code"),
        chart="bar-grouped",
        x="month",
        y="antibiotic_per_100_visits",
        color="facility",
        note=N_(
            "Prescriptions with at least one antibiotic (ATC J01), counted once however many "
            "antibiotic lines, per 100 of the facility's visits in the month."
        ),
    ),
    Indicator(
        name="prescriptions_filled",
        family="medication",
        title=N_("Prescriptions filled, by dispensing state, facility and month"),
        cube=_FILLED,
        by="facility",
        columns=(
            "month",
            "facility_code",
            "facility",
            "level",
            "prescribed",
            "filled",
            "partly",
            "not_filled",
            "filled_pct",
            "partly_pct",
            "not_filled_pct",
        ),
        order=("month", "facility_code"),
        chart="bar-grouped",
        x="month",
        y="filled_pct",
        color="facility",
        note=N_(
            "Electronic prescriptions (cancelled ones left out) by their dispensing state: "
            "every line handed over in full, part of it, or nothing yet."
        ),
    ),
    Indicator(
        name="overlapping_prescriptions",
        family="medication",
        title=N_("The same medicine group prescribed at two facilities for overlapping days"),
        cube=_OVERLAPS,
        by="area",
        columns=("month", "atc_group", "people", "overlapping_prescriptions"),
        order=("month", "atc_group"),
        chart="bar-stacked",
        x="month",
        y="people",
        color="atc_group",
        note=N_(
            "Same ATC level-4 group at another facility while the earlier supply lasts (the "
            "claims export's warning); counted in the month of the later prescription, by the "
            "group's level-3 parent."
        ),
    ),
)
"""The family ``medication`` of the catalogue (``warehouse/catalogue.py``)."""


__all__ = ["ANTIBIOTICS", "LINES", "MEDICATION"]
