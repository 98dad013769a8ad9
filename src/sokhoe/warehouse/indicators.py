"""The health department's indicators, each defined once as SQL over the warehouse views.

Every indicator is one DuckDB query over the de-identified tables of ``warehouse/build.py``,
filtered by area (province statistics-office code) and period (months ``YYYY-MM``), with the
columns it groups by and the ones it measures. What leaves this module is always an
aggregate, and **small cells are suppressed**: a row where any count of people is between 1
and 4 has those counts, and every rate computed from them, blanked and marked, so nobody can
be singled out from a published table (the usual statistical-disclosure rule; 5 is
configurable per call).

Families (one dashboard page each): coverage of the electronic health record, EMR deployment,
disease patterns, non-communicable disease management, repeated tests, immunisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb

from sokhoe.errors import InvalidRequest, NotFound

SUPPRESS_BELOW: Final = 5
REPEAT_DAYS: Final = 30
"""Window in which the same test at another facility counts as repeated."""

_AGE_BAND: Final = """CASE
    WHEN age < 5 THEN '0-4' WHEN age < 15 THEN '5-14' WHEN age < 25 THEN '15-24'
    WHEN age < 45 THEN '25-44' WHEN age < 65 THEN '45-64' ELSE '65+' END"""

_ICD10_CHAPTER: Final = """CASE
    WHEN c < 'C' THEN 'I Nhiễm trùng, ký sinh trùng'
    WHEN c < 'D5' THEN 'II Bướu tân sinh'
    WHEN c < 'E' THEN 'III Máu, miễn dịch'
    WHEN c < 'F' THEN 'IV Nội tiết, chuyển hoá'
    WHEN c < 'G' THEN 'V Tâm thần'
    WHEN c < 'H' THEN 'VI Thần kinh'
    WHEN c < 'H6' THEN 'VII Mắt'
    WHEN c < 'I' THEN 'VIII Tai, xương chũm'
    WHEN c < 'J' THEN 'IX Tuần hoàn'
    WHEN c < 'K' THEN 'X Hô hấp'
    WHEN c < 'L' THEN 'XI Tiêu hoá'
    WHEN c < 'M' THEN 'XII Da'
    WHEN c < 'N' THEN 'XIII Cơ xương khớp'
    WHEN c < 'O' THEN 'XIV Tiết niệu sinh dục'
    WHEN c < 'P' THEN 'XV Thai nghén, sinh đẻ'
    WHEN c < 'Q' THEN 'XVI Chu sinh'
    WHEN c < 'R' THEN 'XVII Dị tật bẩm sinh'
    WHEN c < 'S' THEN 'XVIII Triệu chứng, dấu hiệu'
    WHEN c < 'U' THEN 'XIX Chấn thương, ngộ độc'
    WHEN c < 'V' THEN 'XXII Mã đặc biệt'
    WHEN c < 'Z' THEN 'XX Nguyên nhân bên ngoài'
    ELSE 'XXI Yếu tố ảnh hưởng sức khoẻ' END"""
"""ICD-10 chapters by code range (WHO 2019), on the upper-cased code ``c``."""

VISITS: Final = """
    SELECT e.encounter_key, e.patient_key, e.facility_id,
           substr(e.start, 1, 7) AS month, CAST(substr(e.start, 1, 10) AS DATE) AS day,
           p.gender, p.province_code, p.province_name,
           date_diff('year', CAST(p.birth_month || '-01' AS DATE),
                     CAST(substr(e.start, 1, 10) AS DATE)) AS age
    FROM encounter e JOIN patient p USING (patient_key)
    WHERE e.start IS NOT NULL AND p.birth_month IS NOT NULL
"""


@dataclass(frozen=True)
class Indicator:
    """One indicator: its SQL and how to read and publish the result."""

    name: str
    family: str
    title: str
    sql: str
    """Uses ``$province`` (NULL for all), ``$start`` and ``$end`` (months, inclusive)."""
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    people: tuple[str, ...] = ()
    """Measures that count people: suppressed below :data:`SUPPRESS_BELOW`."""
    derived: tuple[str, ...] = ()
    """Measures computed from people counts (rates): blanked with them."""
    chart: str = "bar"
    x: str | None = None
    y: str | None = None
    color: str | None = None
    note: str = ""


@dataclass
class Result:
    indicator: Indicator
    columns: list[str]
    rows: list[dict[str, Any]]
    suppressed: int = 0
    filters: dict[str, Any] = field(default_factory=dict)


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        name="ehr_coverage",
        family="coverage",
        title="Residents with an electronic health record, by province",
        sql="""
            WITH have AS (
                SELECT province_code, any_value(province_name) AS province,
                       count(*) AS people_with_record
                FROM patient
                WHERE NOT coalesce(deceased, false) AND province_code IS NOT NULL
                  AND ($province IS NULL OR province_code = $province)
                GROUP BY province_code
            ), denominator AS (
                SELECT province_code, sum(population) AS population
                FROM population GROUP BY province_code
            )
            SELECT have.province_code, province, people_with_record, population,
                   round(100.0 * people_with_record / population, 1) AS coverage_pct
            FROM have LEFT JOIN denominator USING (province_code)
            ORDER BY coverage_pct DESC NULLS LAST, province
        """,
        dimensions=("province_code", "province"),
        measures=("people_with_record", "population", "coverage_pct"),
        people=("people_with_record",),
        derived=("coverage_pct",),
        x="province",
        y="coverage_pct",
        note="Target: over 90%, then 100% (population from the denominator table).",
    ),
    Indicator(
        name="ehr_coverage_commune",
        family="coverage",
        title="Residents with an electronic health record, by commune",
        sql="""
            WITH have AS (
                SELECT province_code, commune_code, any_value(province_name) AS province,
                       any_value(commune_name) AS commune, count(*) AS people_with_record
                FROM patient
                WHERE NOT coalesce(deceased, false) AND commune_code IS NOT NULL
                  AND ($province IS NULL OR province_code = $province)
                GROUP BY province_code, commune_code
            )
            SELECT have.province_code, have.commune_code, province, commune, people_with_record,
                   d.population,
                   round(100.0 * people_with_record / d.population, 1) AS coverage_pct
            FROM have LEFT JOIN population d
                 ON d.province_code = have.province_code AND d.commune_code = have.commune_code
            ORDER BY coverage_pct NULLS LAST, province, commune
            LIMIT 200
        """,
        dimensions=("province_code", "commune_code", "province", "commune"),
        measures=("people_with_record", "population", "coverage_pct"),
        people=("people_with_record",),
        derived=("coverage_pct",),
        x="commune",
        y="coverage_pct",
        note="The 200 communes with the lowest coverage (choose a province to see its own).",
    ),
    Indicator(
        name="visits_by_facility",
        family="emr",
        title="Visits each facility recorded in the shared record, by month",
        sql=f"""
            SELECT v.month, f.code AS facility_code, f.name AS facility, f.level,
                   count(*) AS visits, count(DISTINCT v.patient_key) AS people
            FROM ({VISITS}) v JOIN facility f USING (facility_id)
            WHERE ($province IS NULL OR f.province_code = $province)
              AND v.month BETWEEN $start AND $end
            GROUP BY v.month, f.code, f.name, f.level
            ORDER BY v.month, visits DESC
        """,
        dimensions=("month", "facility_code", "facility", "level"),
        measures=("visits", "people"),
        people=("people",),
        derived=("visits",),
        chart="bar-stacked",
        x="month",
        y="visits",
        color="level",
        note="Which facilities feed the shared record, and how much.",
    ),
    Indicator(
        name="emr_deployment",
        family="emr",
        title="Facilities with electronic medical records live, by sector and level",
        sql="""
            SELECT ownership AS sector, level,
                   count(*) AS facilities,
                   count(*) FILTER (WHERE emr_status IN ('whole', 'partial')) AS emr_live,
                   count(*) FILTER (WHERE emr_status = 'whole') AS whole_facility,
                   count(*) FILTER (WHERE emr_status = 'partial') AS some_departments,
                   round(100.0 * count(*) FILTER (WHERE emr_status IN ('whole', 'partial'))
                         / count(*), 1) AS emr_live_pct
            FROM facility
            WHERE level NOT IN ('pharmacy') AND ($province IS NULL OR province_code = $province)
            GROUP BY ownership, level
            ORDER BY sector, level
        """,
        dimensions=("sector", "level"),
        measures=("facilities", "emr_live", "whole_facility", "some_departments", "emr_live_pct"),
        x="level",
        y="emr_live_pct",
        color="sector",
        note="Facilities are not people: no suppression.",
    ),
    Indicator(
        name="disease_chapters",
        family="diseases",
        title="Diagnoses by ICD-10 chapter and month",
        sql=f"""
            WITH d AS (
                SELECT v.*, upper(c.icd10) AS c
                FROM condition c JOIN ({VISITS}) v USING (encounter_key)
                WHERE c.icd10 IS NOT NULL
            )
            SELECT month, {_ICD10_CHAPTER} AS chapter, count(DISTINCT patient_key) AS people
            FROM d
            WHERE ($province IS NULL OR province_code = $province)
              AND month BETWEEN $start AND $end
            GROUP BY month, chapter ORDER BY month, chapter
        """,
        dimensions=("month", "chapter"),
        measures=("people",),
        people=("people",),
        chart="bar-stacked",
        x="month",
        y="people",
        color="chapter",
    ),
    Indicator(
        name="disease_top_codes",
        family="diseases",
        title="Top diagnoses by age band and sex",
        sql=f"""
            WITH d AS (
                SELECT v.*, upper(c.icd10) AS icd10
                FROM condition c JOIN ({VISITS}) v USING (encounter_key)
                WHERE c.icd10 IS NOT NULL
                  AND ($province IS NULL OR v.province_code = $province)
                  AND v.month BETWEEN $start AND $end
            ), top AS (
                SELECT icd10 FROM d GROUP BY icd10 ORDER BY count(*) DESC, icd10 LIMIT 10
            )
            SELECT icd10, {_AGE_BAND} AS age_band, gender AS sex,
                   count(DISTINCT patient_key) AS people
            FROM d WHERE icd10 IN (SELECT icd10 FROM top)
            GROUP BY icd10, age_band, sex ORDER BY icd10, age_band, sex
        """,
        dimensions=("icd10", "age_band", "sex"),
        measures=("people",),
        people=("people",),
        chart="bar-stacked",
        x="icd10",
        y="people",
        color="age_band",
    ),
    Indicator(
        name="ncd_management",
        family="ncd",
        title="Hypertension and diabetes under management, and the share controlled",
        sql="""
            WITH dx AS (
                SELECT DISTINCT patient_key,
                       CASE WHEN upper(icd10) BETWEEN 'I10' AND 'I15ZZ' THEN 'hypertension'
                            ELSE 'diabetes' END AS disease
                FROM condition
                WHERE upper(icd10) BETWEEN 'I10' AND 'I15ZZ'
                   OR upper(icd10) BETWEEN 'E10' AND 'E14ZZ'
            ), last_bp AS (
                SELECT patient_key, arg_max(systolic, effective) AS sbp,
                       arg_max(diastolic, effective) AS dbp
                FROM observation WHERE systolic IS NOT NULL AND substr(effective, 1, 7) <= $end
                GROUP BY patient_key
            ), last_a1c AS (
                SELECT patient_key, arg_max(value, effective) AS hba1c
                FROM observation WHERE loinc = '4548-4' AND substr(effective, 1, 7) <= $end
                GROUP BY patient_key
            )
            SELECT p.province_code, any_value(p.province_name) AS province, dx.disease,
                   count(*) AS people,
                   count(*) FILTER (WHERE CASE dx.disease
                       WHEN 'hypertension' THEN sbp IS NOT NULL
                       ELSE hba1c IS NOT NULL END) AS measured,
                   count(*) FILTER (WHERE CASE dx.disease
                       WHEN 'hypertension' THEN sbp < 140 AND dbp < 90
                       ELSE hba1c < 7 END) AS controlled,
                   round(100.0 * controlled / nullif(people, 0), 1) AS controlled_pct
            FROM dx JOIN patient p USING (patient_key)
                 LEFT JOIN last_bp USING (patient_key) LEFT JOIN last_a1c USING (patient_key)
            WHERE NOT coalesce(p.deceased, false)
              AND ($province IS NULL OR p.province_code = $province)
            GROUP BY p.province_code, dx.disease ORDER BY province, dx.disease
        """,
        dimensions=("province_code", "province", "disease"),
        measures=("people", "measured", "controlled", "controlled_pct"),
        people=("people", "measured", "controlled"),
        derived=("controlled_pct",),
        x="province",
        y="controlled_pct",
        color="disease",
        note="Controlled: last blood pressure under 140/90; last HbA1c under 7%.",
    ),
    Indicator(
        name="repeated_tests",
        family="repeats",
        title=f"The same test repeated within {REPEAT_DAYS} days at another facility",
        sql=f"""
            WITH tests AS (
                SELECT o.patient_key, o.loinc AS test,
                       CAST(substr(o.effective, 1, 10) AS DATE) AS day, e.facility_id
                FROM observation o JOIN encounter e USING (encounter_key)
                WHERE o.category = 'laboratory' AND o.effective IS NOT NULL
                UNION ALL
                SELECT i.patient_key, 'imaging:' || i.modality,
                       CAST(substr(i.started, 1, 10) AS DATE), e.facility_id
                FROM imaging_study i JOIN encounter e USING (encounter_key)
                WHERE i.started IS NOT NULL
            ), repeats AS (
                SELECT later.patient_key, later.test, later.day, later.facility_id
                FROM tests later JOIN tests earlier
                  ON later.patient_key = earlier.patient_key AND later.test = earlier.test
                 AND later.facility_id <> earlier.facility_id
                 AND later.day > earlier.day AND later.day <= earlier.day + {REPEAT_DAYS}
            )
            SELECT strftime(r.day, '%Y-%m') AS month, r.test,
                   count(DISTINCT r.patient_key) AS people,
                   count(*) AS repeated_tests,
                   sum(coalesce(price.vnd, 0)) AS cost_vnd
            FROM repeats r
                 JOIN patient p USING (patient_key)
                 LEFT JOIN test_price price ON price.test = r.test
            WHERE ($province IS NULL OR p.province_code = $province)
              AND strftime(r.day, '%Y-%m') BETWEEN $start AND $end
            GROUP BY month, r.test ORDER BY month, r.test
        """,
        dimensions=("month", "test"),
        measures=("people", "repeated_tests", "cost_vnd"),
        people=("people",),
        derived=("repeated_tests", "cost_vnd"),
        x="month",
        y="cost_vnd",
        color="test",
        note="Cost at the reference price list (test_price table).",
    ),
    Indicator(
        name="immunisation_coverage",
        family="immunisation",
        title="Expanded programme on immunisation: coverage by birth cohort",
        sql="""
            WITH children AS (
                SELECT patient_key, CAST(substr(birth_month, 1, 4) AS INTEGER) AS cohort
                FROM patient
                WHERE birth_month IS NOT NULL
                  AND CAST(substr(birth_month, 1, 4) AS INTEGER) >= year(current_date) - 6
                  AND ($province IS NULL OR province_code = $province)
            ), series AS (
                SELECT DISTINCT series FROM immunization WHERE series LIKE 'TCMR %'
            ), given AS (
                SELECT DISTINCT patient_key, series FROM immunization WHERE status = 'completed'
            )
            SELECT c.cohort, s.series AS vaccine, count(*) AS children,
                   count(g.patient_key) AS vaccinated,
                   round(100.0 * count(g.patient_key) / count(*), 1) AS coverage_pct
            FROM children c CROSS JOIN series s
                 LEFT JOIN given g ON g.patient_key = c.patient_key AND g.series = s.series
            GROUP BY c.cohort, s.series ORDER BY c.cohort, vaccine
        """,
        dimensions=("cohort", "vaccine"),
        measures=("children", "vaccinated", "coverage_pct"),
        people=("children", "vaccinated"),
        derived=("coverage_pct",),
        chart="bar-grouped",
        x="vaccine",
        y="coverage_pct",
        color="cohort",
    ),
)


INDICATORS += (
    Indicator(
        name="notifiable_weekly",
        family="surveillance",
        title="Notifiable diseases: weekly cases by province, with outbreak alerts",
        sql="""
            SELECT week, province_code, province, disease, people, expected, threshold, alarm
            FROM notifiable_alerts
            WHERE ($province IS NULL OR province_code = $province)
              AND substr(week, 1, 7) BETWEEN $start AND $end
            ORDER BY week, province_code, disease
        """,
        dimensions=("week", "province_code", "province", "disease"),
        measures=("people", "expected", "threshold", "alarm"),
        people=("people",),
        derived=("expected", "threshold"),
        chart="bar-stacked",
        x="week",
        y="people",
        color="disease",
        note=(
            "Alerts computed at each warehouse build over the last year: improved Farrington "
            "(Noufaily et al. 2013) where three years of history exist, EARS C2 otherwise; "
            "see the back-test in the README."
        ),
    ),
)

FAMILIES: Final = {
    "coverage": "Electronic health record coverage",
    "emr": "Electronic medical records in facilities",
    "diseases": "Disease patterns",
    "ncd": "Non-communicable disease management",
    "repeats": "Repeated tests",
    "immunisation": "Immunisation",
    "surveillance": "Disease surveillance and outbreak alerts",
}

_BY_NAME: Final = {i.name: i for i in INDICATORS}


def indicator(name: str) -> Indicator:
    found = _BY_NAME.get(name)
    if found is None:
        raise NotFound(f"No indicator '{name}'; known: {', '.join(sorted(_BY_NAME))}")
    return found


def in_family(family: str) -> list[Indicator]:
    if family not in FAMILIES:
        raise NotFound(f"No indicator family '{family}'; known: {', '.join(FAMILIES)}")
    return [i for i in INDICATORS if i.family == family]


def _month(value: str | None, default: str, name: str) -> str:
    if value is None or value == "":
        return default
    text = value.strip()
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        raise InvalidRequest(f"{name} must be a month like 2026-01, got '{value}'", name)
    return text


def run(
    con: duckdb.DuckDBPyConnection,
    ind: Indicator,
    *,
    province: str | None = None,
    start: str | None = None,
    end: str | None = None,
    suppress_below: int = SUPPRESS_BELOW,
) -> Result:
    """Run ``ind`` with the filters and suppress small cells (see the module docstring)."""
    today = date.today()
    params = {
        "province": province or None,
        "start": _month(start, "1900-01", "from"),
        "end": _month(end, f"{today.year:04d}-{today.month:02d}", "to"),
    }
    if province is not None and province and not province.isdigit():
        raise InvalidRequest(f"province must be a statistics-office code, got '{province}'")
    used = {k: v for k, v in params.items() if f"${k}" in ind.sql}
    cursor = con.execute(ind.sql, used)
    columns = [d[0] for d in cursor.description or []]
    rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    suppressed = 0
    for row in rows:
        small = [c for c in ind.people if row.get(c) is not None and 0 < row[c] < suppress_below]
        if small:
            suppressed += 1
            for c in (*ind.people, *ind.derived):
                row[c] = None
            row["suppressed"] = True
    if ind.people:
        columns.append("suppressed")
        for row in rows:
            row.setdefault("suppressed", False)
    return Result(ind, columns, rows, suppressed, params)


def open_warehouse(folder: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the built warehouse, or :class:`NotFound` saying how to build
    it."""
    path = folder / "warehouse.duckdb"
    if not path.exists():
        raise NotFound("The warehouse has not been built yet: run 'sokhoe warehouse build'")
    return duckdb.connect(str(path), read_only=True)


__all__ = [
    "FAMILIES",
    "INDICATORS",
    "SUPPRESS_BELOW",
    "Indicator",
    "Result",
    "in_family",
    "indicator",
    "open_warehouse",
    "run",
]
