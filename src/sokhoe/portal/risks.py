"""The self-declaration's questions on risk factors, birth and pregnancies: the second half
of the commune stations' personal health-record form (QĐ 831/QĐ-BYT 2017) — tobacco
(water-pipe tobacco included), alcohol, physical activity, hazards at work, the person's birth,
and for women their pregnancies. ``portal/sections.py`` puts them in the order asked.
"""

from __future__ import annotations

from sokhoe.portal.codes import NEVER_NOW_BEFORE, YES_NO_UNKNOWN
from sokhoe.portal.questionnaire import N_, Item, Option, Section


def _gate(link: str, text: str, error: str, hint: str | None = None) -> Item:
    return Item(link, text, "boolean", required=True, error=error, hint=hint)


BIRTH = Section(
    "birth",
    N_("Your birth"),
    (
        Item(
            "delivery",
            N_("How were you born?"),
            "choice",
            options=(
                Option("vaginal", N_("Normal birth")),
                Option("caesarean", N_("Caesarean section")),
                Option("unknown", N_("I do not know")),
            ),
        ),
        Item("premature", N_("Were you born early (premature)?"), "choice", options=YES_NO_UNKNOWN),
        Item("birth-weight", N_("Weight at birth"), "integer", low=300, high=7000, unit="g"),
        Item("birth-length", N_("Length at birth"), "integer", low=20, high=70, unit="cm"),
        Item(
            "defects",
            N_("Were you born with a health problem (a birth defect)? What was it?"),
            "string",
        ),
    ),
    intro=N_("Answer what you know and leave the rest empty."),
)

TOBACCO = Section(
    "tobacco",
    N_("Smoking"),
    (
        Item(
            "tobacco",
            N_("Do you smoke cigarettes or a water pipe (thuốc lào)?"),
            "choice",
            required=True,
            error=N_("Select whether you smoke"),
            options=NEVER_NOW_BEFORE,
        ),
        Item(
            "tobacco-kind",
            N_("What do you smoke?"),
            "choice",
            repeats=True,
            when=("tobacco", "current"),
            options=(
                Option("cigarettes", N_("Cigarettes")),
                Option("water-pipe", N_("Water pipe (thuốc lào)")),
                Option("other", N_("Something else (cigars, e-cigarettes)")),
            ),
            hint=N_("Select all that apply"),
        ),
        Item(
            "tobacco-per-day",
            N_("How many times do you smoke a day?"),
            "integer",
            low=1,
            high=100,
            unit=N_("times a day"),
            when=("tobacco", "current"),
            hint=N_("Count each cigarette or each pipe"),
        ),
        Item(
            "tobacco-quit",
            N_("In which year did you stop?"),
            "integer",
            low=1920,
            high=2100,
            when=("tobacco", "former"),
        ),
    ),
    from_age=10,
)

ALCOHOL = Section(
    "alcohol",
    N_("Alcohol"),
    (
        Item(
            "alcohol",
            N_("Do you drink alcohol (beer, wine, rice spirit)?"),
            "choice",
            required=True,
            error=N_("Select whether you drink alcohol"),
            options=NEVER_NOW_BEFORE,
        ),
        Item(
            "alcohol-days",
            N_("On how many days a week do you drink?"),
            "integer",
            low=1,
            high=7,
            unit=N_("days a week"),
            when=("alcohol", "current"),
        ),
        Item(
            "alcohol-drinks",
            N_("How many drinks do you have on such a day?"),
            "integer",
            low=1,
            high=50,
            unit=N_("drinks"),
            when=("alcohol", "current"),
            hint=N_("One drink is a can of beer, a glass of wine or a small cup of spirit"),
        ),
        Item(
            "alcohol-quit",
            N_("In which year did you stop?"),
            "integer",
            low=1920,
            high=2100,
            when=("alcohol", "former"),
        ),
    ),
    from_age=10,
)

ACTIVITY = Section(
    "activity",
    N_("Physical activity"),
    (
        Item(
            "activity-days",
            N_("On how many days a week do you exercise or do hard physical work?"),
            "integer",
            required=True,
            error=N_("Enter a number of days from 0 to 7"),
            low=0,
            high=7,
            unit=N_("days a week"),
            hint=N_("Count days with at least 30 minutes that make you breathe faster"),
        ),
        Item(
            "activity-minutes",
            N_("On those days, for how many minutes?"),
            "integer",
            low=0,
            high=600,
            unit=N_("minutes"),
        ),
    ),
    from_age=6,
)

EXPOSURE = Section(
    "exposure",
    N_("Work hazards"),
    (
        _gate(
            "exposure-any",
            N_("At work, are you exposed to dust, chemicals, loud noise or radiation?"),
            N_("Select yes if you are exposed to something harmful at work"),
        ),
        Item(
            "exposure-kind",
            N_("What are you exposed to?"),
            "choice",
            repeats=True,
            required=True,
            error=N_("Select at least one thing you are exposed to"),
            when=("exposure-any", True),
            options=(
                Option("dust", N_("Dust")),
                Option("chemicals", N_("Chemicals or pesticides")),
                Option("noise", N_("Loud noise")),
                Option("radiation", N_("Radiation")),
                Option("other", N_("Something else")),
            ),
            hint=N_("Select all that apply"),
        ),
        Item(
            "exposure-detail", N_("Tell us more (optional)"), "string", when=("exposure-any", True)
        ),
        Item(
            "exposure-years",
            N_("For how many years?"),
            "integer",
            low=0,
            high=80,
            unit=N_("years"),
            when=("exposure-any", True),
        ),
    ),
    from_age=14,
)

PREGNANCIES = Section(
    "pregnancy",
    N_("Pregnancies"),
    (
        _gate(
            "pregnancy-ever",
            N_("Have you ever been pregnant?"),
            N_("Select yes if you have ever been pregnant"),
        ),
        Item(
            "pregnancy-now",
            N_("Are you pregnant now?"),
            "choice",
            when=("pregnancy-ever", True),
            options=YES_NO_UNKNOWN,
        ),
        Item(
            "pregnancies",
            N_("How many times have you been pregnant?"),
            "integer",
            low=1,
            high=30,
            when=("pregnancy-ever", True),
        ),
        Item(
            "births",
            N_("How many children have you given birth to?"),
            "integer",
            low=0,
            high=30,
            when=("pregnancy-ever", True),
        ),
        Item(
            "losses",
            N_("How many miscarriages or abortions?"),
            "integer",
            low=0,
            high=30,
            when=("pregnancy-ever", True),
            hint=N_("Leave empty if you prefer not to say"),
        ),
    ),
    women_only=True,
    from_age=12,
)


__all__ = ["ACTIVITY", "ALCOHOL", "BIRTH", "EXPOSURE", "PREGNANCIES", "TOBACCO"]
