"""The catalogue of the health department's indicators: what each one counts, at which areas
and periods it is published, and how the dashboard shows it.

Each :class:`Indicator` is a :class:`~sokhoe.warehouse.cells.Cube` (one DuckDB query over the
de-identified views of ``warehouse/build.py``, at the indicator's finest area and own period)
and a view of it: the tier of areas its rows list, its columns, order and chart.
:func:`sokhoe.warehouse.indicators.run` publishes them, suppressed.

Families (one dashboard page each): coverage of the electronic health record, EMR deployment,
disease patterns, non-communicable disease management, repeated tests, immunisation,
surveillance, prescribing and dispensing (``warehouse/medication.py``).
"""

from __future__ import annotations

from typing import Final

from sokhoe.warehouse.cells import COMMUNE, NATION, PROVINCE, Cube, Rate, Tier
from sokhoe.warehouse.definition import FACILITY, N_, Indicator
from sokhoe.warehouse.medication import MEDICATION

REPEAT_DAYS: Final = 30
"""Window in which the same test at another facility counts as repeated (the title of
``repeated_tests`` says it: change both)."""


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


_COVERAGE: Final = Cube(
    name="coverage",
    sql="""
        SELECT province_code, commune_code, any_value(province_name) AS province,
               any_value(commune_name) AS commune, count(*) AS people_with_record
        FROM patient
        WHERE NOT coalesce(deceased, false) AND province_code IS NOT NULL
        GROUP BY province_code, commune_code
    """,
    tiers=(
        Tier(
            "province",
            PROVINCE.key,
            PROVINCE.labels,
            attach="SELECT province_code, sum(population) AS population "
            "FROM population GROUP BY province_code",
        ),
        Tier(
            "commune",
            COMMUNE.key,
            COMMUNE.labels,
            attach="SELECT province_code, commune_code, sum(population) AS population "
            "FROM population GROUP BY province_code, commune_code",
        ),
    ),
    measures=("people_with_record",),
    counts=("people_with_record",),
    rates=(Rate("coverage_pct", "people_with_record", "population"),),
)
"""One cube for both coverage indicators: a province's row is the sum of its communes' (and of
its residents whose commune is unknown), so they are suppressed together."""

INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        name="ehr_coverage",
        family="coverage",
        title=N_("Residents with an electronic health record, by province"),
        cube=_COVERAGE,
        by="province",
        columns=("province_code", "province", "people_with_record", "population", "coverage_pct"),
        order=("-coverage_pct", "province"),
        x="province",
        y="coverage_pct",
        note=N_("Target: over 90%, then 100% (population from the denominator table)."),
    ),
    Indicator(
        name="ehr_coverage_commune",
        family="coverage",
        title=N_("Residents with an electronic health record, by commune"),
        cube=_COVERAGE,
        by="commune",
        columns=(
            "province_code",
            "commune_code",
            "province",
            "commune",
            "people_with_record",
            "population",
            "coverage_pct",
        ),
        order=("coverage_pct", "province", "commune"),
        limit=200,
        x="commune",
        y="coverage_pct",
        note=N_(
            "The 200 communes with the lowest coverage shown (hidden ones after them); "
            "choose a province to see all of its own."
        ),
    ),
    Indicator(
        name="visits_by_facility",
        family="emr",
        title=N_("Visits each facility recorded in the shared record, by month"),
        cube=Cube(
            name="visits_by_facility",
            sql=f"""
                SELECT v.month, f.province_code, f.code AS facility_code, f.name AS facility,
                       f.level, count(*) AS visits, count(DISTINCT v.patient_key) AS people
                FROM ({VISITS}) v JOIN facility f USING (facility_id)
                GROUP BY v.month, f.province_code, f.code, f.name, f.level
            """,
            tiers=(FACILITY,),
            period="month",
            measures=("visits", "people"),
            counts=("people", "visits"),
        ),
        by="facility",
        columns=("month", "facility_code", "facility", "level", "visits", "people"),
        order=("month", "-visits", "facility_code"),
        chart="bar-stacked",
        x="month",
        y="visits",
        color="level",
        note=N_("Which facilities feed the shared record, and how much."),
    ),
    Indicator(
        name="emr_deployment",
        family="emr",
        title=N_("Facilities with electronic medical records live, by sector and level"),
        cube=Cube(
            name="emr_deployment",
            sql="""
                SELECT province_code, ownership AS sector, level,
                       count(*) AS facilities,
                       count(*) FILTER (WHERE emr_status IN ('whole', 'partial')) AS emr_live,
                       count(*) FILTER (WHERE emr_status = 'whole') AS whole_facility,
                       count(*) FILTER (WHERE emr_status = 'partial') AS some_departments
                FROM facility
                WHERE level NOT IN ('pharmacy')
                GROUP BY province_code, ownership, level
            """,
            tiers=(NATION, PROVINCE),
            dimensions=("sector", "level"),
            measures=("facilities", "emr_live", "whole_facility", "some_departments"),
            rates=(Rate("emr_live_pct", "emr_live", "facilities"),),
        ),
        by="area",
        columns=(
            "sector",
            "level",
            "facilities",
            "emr_live",
            "whole_facility",
            "some_departments",
            "emr_live_pct",
        ),
        order=("sector", "level"),
        x="level",
        y="emr_live_pct",
        color="sector",
        note=N_("Facilities are not people: no suppression."),
    ),
    Indicator(
        name="disease_chapters",
        family="diseases",
        title=N_("Diagnoses by ICD-10 chapter and month"),
        cube=Cube(
            name="disease_chapters",
            sql=f"""
                WITH d AS (
                    SELECT v.*, upper(c.icd10) AS c
                    FROM condition c JOIN ({VISITS}) v USING (encounter_key)
                    WHERE c.icd10 IS NOT NULL
                )
                SELECT province_code, month, {_ICD10_CHAPTER} AS chapter,
                       count(DISTINCT patient_key) AS people
                FROM d
                GROUP BY province_code, month, chapter
            """,
            tiers=(NATION, PROVINCE),
            period="month",
            dimensions=("chapter",),
            measures=("people",),
            counts=("people",),
        ),
        by="area",
        columns=("month", "chapter", "people"),
        order=("month", "chapter"),
        chart="bar-stacked",
        x="month",
        y="people",
        color="chapter",
    ),
    Indicator(
        name="disease_top_codes",
        family="diseases",
        title=N_("Top diagnoses by age band and sex, by year"),
        cube=Cube(
            name="disease_top_codes",
            sql=f"""
                WITH d AS (
                    SELECT v.*, substr(v.month, 1, 4) AS year, upper(c.icd10) AS icd10
                    FROM condition c JOIN ({VISITS}) v USING (encounter_key)
                    WHERE c.icd10 IS NOT NULL
                ), ranked AS (
                    SELECT year, icd10,
                           row_number() OVER (PARTITION BY year
                                              ORDER BY count(*) DESC, icd10) AS rank
                    FROM d GROUP BY year, icd10
                )
                SELECT d.province_code, d.year, d.icd10, {_AGE_BAND} AS age_band,
                       d.gender AS sex, count(DISTINCT d.patient_key) AS people
                FROM d JOIN ranked r ON r.year = d.year AND r.icd10 = d.icd10 AND r.rank <= 10
                GROUP BY d.province_code, d.year, d.icd10, age_band, sex
            """,
            tiers=(NATION, PROVINCE),
            period="year",
            dimensions=("icd10", "age_band", "sex"),
            measures=("people",),
            counts=("people",),
        ),
        by="area",
        columns=("year", "icd10", "age_band", "sex", "people"),
        order=("year", "icd10", "age_band", "sex"),
        chart="bar-stacked",
        x="icd10",
        y="people",
        color="age_band",
        note=N_("The ten most frequent codes of each year nationwide, counted in every province."),
    ),
    Indicator(
        name="ncd_management",
        family="ncd",
        title=N_("Hypertension and diabetes under management, and the share controlled"),
        cube=Cube(
            name="ncd_management",
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
                    FROM observation WHERE systolic IS NOT NULL
                    GROUP BY patient_key
                ), last_a1c AS (
                    SELECT patient_key, arg_max(value, effective) AS hba1c
                    FROM observation WHERE loinc = '4548-4'
                    GROUP BY patient_key
                )
                SELECT p.province_code, any_value(p.province_name) AS province, dx.disease,
                       count(*) AS people,
                       count(*) FILTER (WHERE CASE dx.disease
                           WHEN 'hypertension' THEN sbp IS NOT NULL
                           ELSE hba1c IS NOT NULL END) AS measured,
                       count(*) FILTER (WHERE CASE dx.disease
                           WHEN 'hypertension' THEN sbp < 140 AND dbp < 90
                           ELSE hba1c < 7 END) AS controlled
                FROM dx JOIN patient p USING (patient_key)
                     LEFT JOIN last_bp USING (patient_key) LEFT JOIN last_a1c USING (patient_key)
                WHERE NOT coalesce(p.deceased, false)
                GROUP BY p.province_code, dx.disease
            """,
            tiers=(PROVINCE,),
            dimensions=("disease",),
            measures=("people", "measured", "controlled"),
            counts=("people", "measured", "controlled"),
            parts=(("people", "measured"), ("measured", "controlled")),
            rates=(Rate("controlled_pct", "controlled", "people"),),
        ),
        by="province",
        columns=(
            "province_code",
            "province",
            "disease",
            "people",
            "measured",
            "controlled",
            "controlled_pct",
        ),
        order=("province", "disease"),
        x="province",
        y="controlled_pct",
        color="disease",
        note=N_(
            "Controlled: last blood pressure under 140/90; last HbA1c under 7%. The current "
            "record (the period filter does not apply: differences between two dates would "
            "count the few people who changed)."
        ),
    ),
    Indicator(
        name="repeated_tests",
        family="repeats",
        title=N_("The same test repeated within 30 days at another facility"),
        cube=Cube(
            name="repeated_tests",
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
                SELECT p.province_code, strftime(r.day, '%Y-%m') AS month, r.test,
                       count(DISTINCT r.patient_key) AS people,
                       count(*) AS repeated_tests,
                       sum(coalesce(price.vnd, 0)) AS cost_vnd
                FROM repeats r
                     JOIN patient p USING (patient_key)
                     LEFT JOIN test_price price ON price.test = r.test
                GROUP BY p.province_code, month, r.test
            """,
            tiers=(NATION, PROVINCE),
            period="month",
            dimensions=("test",),
            measures=("people", "repeated_tests", "cost_vnd"),
            counts=("people", "repeated_tests"),
            derived=("cost_vnd",),
        ),
        by="area",
        columns=("month", "test", "people", "repeated_tests", "cost_vnd"),
        order=("month", "test"),
        x="month",
        y="cost_vnd",
        color="test",
        note=N_("Cost at the reference price list (test_price table)."),
    ),
    Indicator(
        name="immunisation_coverage",
        family="immunisation",
        title=N_("Expanded programme on immunisation: coverage by birth cohort"),
        cube=Cube(
            name="immunisation_coverage",
            sql="""
                WITH children AS (
                    SELECT patient_key, province_code,
                           CAST(substr(birth_month, 1, 4) AS INTEGER) AS cohort
                    FROM patient
                    WHERE birth_month IS NOT NULL
                      AND CAST(substr(birth_month, 1, 4) AS INTEGER) >= year(current_date) - 6
                ), series AS (
                    SELECT DISTINCT series FROM immunization WHERE series LIKE 'TCMR %'
                ), given AS (
                    SELECT DISTINCT patient_key, series
                    FROM immunization WHERE status = 'completed'
                )
                SELECT c.province_code, CAST(c.cohort AS VARCHAR) AS cohort, s.series AS vaccine,
                       count(*) AS children,
                       count(g.patient_key) AS vaccinated
                FROM children c CROSS JOIN series s
                     LEFT JOIN given g ON g.patient_key = c.patient_key AND g.series = s.series
                GROUP BY c.province_code, c.cohort, s.series
            """,
            tiers=(NATION, PROVINCE),
            dimensions=("cohort", "vaccine"),
            measures=("children", "vaccinated"),
            counts=("children", "vaccinated"),
            parts=(("children", "vaccinated"),),
            rates=(Rate("coverage_pct", "vaccinated", "children"),),
            tie=("vaccine",),
        ),
        by="area",
        columns=("cohort", "vaccine", "children", "vaccinated", "coverage_pct"),
        order=("cohort", "vaccine"),
        chart="bar-grouped",
        x="vaccine",
        y="coverage_pct",
        color="cohort",
        note=N_("Children born in the last six years, as the record stands."),
    ),
    Indicator(
        name="notifiable_weekly",
        family="surveillance",
        title=N_("Notifiable diseases: weekly cases by province, with outbreak alerts"),
        cube=Cube(
            name="notifiable_weekly",
            sql="""
                SELECT week, province_code, province, disease, people, expected, threshold,
                       alarm, smallest_week
                FROM notifiable_alerts
            """,
            tiers=(PROVINCE,),
            period="week",
            dimensions=("disease",),
            measures=("people", "expected", "threshold", "alarm", "smallest_week"),
            counts=("people",),
            derived=("expected", "threshold"),
            guards=(("expected", "smallest_week"), ("threshold", "smallest_week")),
        ),
        by="province",
        columns=(
            "week",
            "province_code",
            "province",
            "disease",
            "people",
            "expected",
            "threshold",
            "alarm",
        ),
        order=("week", "province_code", "disease"),
        chart="bar-stacked",
        x="week",
        y="people",
        color="disease",
        note=N_(
            "Alerts computed at each warehouse build over the last year: improved Farrington "
            "(Noufaily et al. 2013) where three years of history exist, EARS C2 otherwise; "
            "see the back-test in the README. The expected count and threshold are computed "
            "from earlier weeks, so they are shown only for series with no small week."
        ),
    ),
    *MEDICATION,
)

FAMILIES: Final = {
    "coverage": N_("Electronic health record coverage"),
    "emr": N_("Electronic medical records in facilities"),
    "diseases": N_("Disease patterns"),
    "ncd": N_("Non-communicable disease management"),
    "repeats": N_("Repeated tests"),
    "immunisation": N_("Immunisation"),
    "surveillance": N_("Disease surveillance and outbreak alerts"),
    "medication": N_("Prescribing and dispensing"),
}


__all__ = ["FAMILIES", "INDICATORS", "REPEAT_DAYS", "VISITS", "Indicator"]
