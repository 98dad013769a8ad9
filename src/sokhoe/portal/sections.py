"""What the self-declaration asks, section by section: the personal health-record form of the
commune stations (QĐ 831/QĐ-BYT 2017) and the health book's history part (QĐ 31/QĐ-BYT 2026).

Nothing printed on the chip ID card is asked again (name, birth date, sex, the ID number come
from the record); the answers' codes are in ``portal/codes.py``.
"""

from __future__ import annotations

from typing import Final

from sokhoe.portal.codes import (
    ALLERGY_CATEGORY,
    CHRONIC,
    ETHNIC_GROUPS,
    FAMILY_DISEASES,
    RELATIVES,
    VACCINES,
)
from sokhoe.portal.questionnaire import N_, Item, Option, Section
from sokhoe.portal.risks import ACTIVITY, ALCOHOL, BIRTH, EXPOSURE, PREGNANCIES, TOBACCO


def _gate(link: str, text: str, error: str, hint: str | None = None) -> Item:
    return Item(link, text, "boolean", required=True, error=error, hint=hint)


ABOUT = Section(
    "about",
    N_("About you"),
    (
        Item(
            "address",
            N_("Where do you live?"),
            "string",
            hint=N_(
                "House number and street, ward or commune, province or city. For example: "
                "Số 12 Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội"
            ),
            max_length=300,
        ),
        Item("ethnicity", N_("Ethnic group"), "choice", options=ETHNIC_GROUPS),
        Item(
            "occupation",
            N_("What is your job?"),
            "string",
            hint=N_("For example: farmer, factory worker, teacher, retired, pupil"),
        ),
        Item(
            "bhyt",
            N_("Health insurance card number (if you have one)"),
            "string",
            hint=N_("15 characters, for example DN4010123456789"),
            max_length=20,
        ),
    ),
    intro=N_(
        "Your name, date of birth, sex and ID number come from your record. If one of them is "
        "wrong, bring your ID card to the health station."
    ),
    record=(
        ("name", N_("Name")),
        ("birth", N_("Date of birth")),
        ("sex", N_("Sex")),
        ("cccd", N_("ID number")),
        ("phone", N_("Mobile number")),
    ),
)

BLOOD = Section(
    "blood",
    N_("Blood group"),
    (
        Item(
            "abo",
            N_("What is your blood group?"),
            "choice",
            required=True,
            error=N_("Select your blood group, or “I do not know”"),
            options=(
                Option("A", "A"),
                Option("B", "B"),
                Option("AB", "AB"),
                Option("O", "O"),
                Option("unknown", N_("I do not know")),
            ),
        ),
        Item(
            "rh",
            N_("Rhesus (Rh) factor"),
            "choice",
            options=(
                Option("positive", N_("Rh positive (+)")),
                Option("negative", N_("Rh negative (−)")),
                Option("unknown", N_("I do not know")),
            ),
            hint=N_("Most people in Viet Nam are Rh positive. Leave it if you are not sure."),
        ),
    ),
)

ALLERGIES = Section(
    "allergies",
    N_("Allergies"),
    (
        _gate(
            "allergies-any",
            N_("Do you have any allergies?"),
            N_("Select yes if you have any allergies"),
            N_("To a medicine, a food or something else, such as insect stings"),
        ),
        Item(
            "allergy",
            N_("Allergy"),
            "group",
            more=N_("Add another allergy"),
            repeats=True,
            required=True,
            error=N_("Add at least one allergy, or go back and answer No"),
            when=("allergies-any", True),
            items=(
                Item(
                    "allergy-kind",
                    N_("What are you allergic to?"),
                    "choice",
                    required=True,
                    error=N_("Select what you are allergic to"),
                    options=(
                        Option("medication", N_("A medicine"), ALLERGY_CATEGORY),
                        Option("food", N_("A food"), ALLERGY_CATEGORY),
                        Option(
                            "environment",
                            N_("Something else (insect stings, pollen, dust)"),
                            ALLERGY_CATEGORY,
                        ),
                    ),
                ),
                Item(
                    "allergy-substance",
                    N_("Name of the medicine, food or thing"),
                    "string",
                    required=True,
                    error=N_("Enter the name of the medicine, food or thing"),
                    hint=N_("For example: penicillin, shrimp, bee stings"),
                ),
                Item(
                    "allergy-reaction",
                    N_("What happens to you?"),
                    "string",
                    hint=N_("For example: rash, swelling, difficulty breathing"),
                ),
            ),
        ),
    ),
)

CONDITIONS = Section(
    "conditions",
    N_("Long-term illnesses"),
    (
        _gate(
            "conditions-any",
            N_("Do you have a long-term illness?"),
            N_("Select yes if you have a long-term illness"),
            N_("An illness a doctor told you about that lasts, such as high blood pressure"),
        ),
        Item(
            "condition",
            N_("Which illnesses?"),
            "choice",
            repeats=True,
            options=CHRONIC,
            when=("conditions-any", True),
            hint=N_("Select all that apply"),
        ),
        Item(
            "condition-other",
            N_("Other illnesses"),
            "text",
            when=("conditions-any", True),
            hint=N_("One per line"),
            max_length=1000,
        ),
    ),
    one_of=(("condition", "condition-other"), N_("Select an illness or write it in the box")),
)

SURGERIES = Section(
    "surgeries",
    N_("Operations"),
    (
        _gate(
            "surgeries-any",
            N_("Have you ever had an operation?"),
            N_("Select yes if you have had an operation"),
        ),
        Item(
            "surgery",
            N_("Operation"),
            "group",
            more=N_("Add another operation"),
            repeats=True,
            required=True,
            error=N_("Add at least one operation, or go back and answer No"),
            when=("surgeries-any", True),
            items=(
                Item(
                    "surgery-what",
                    N_("What was operated on?"),
                    "string",
                    required=True,
                    error=N_("Enter what was operated on"),
                    hint=N_("For example: appendix, caesarean section, cataract"),
                ),
                Item("surgery-year", N_("Year"), "integer", low=1920, high=2100),
            ),
        ),
    ),
)

DISABILITIES = Section(
    "disabilities",
    N_("Disabilities"),
    (
        _gate(
            "disabilities-any",
            N_("Do you have a disability?"),
            N_("Select yes if you have a disability"),
        ),
        Item(
            "disability",
            N_("Which?"),
            "choice",
            repeats=True,
            required=True,
            error=N_("Select at least one"),
            when=("disabilities-any", True),
            options=(
                Option("seeing", N_("Seeing")),
                Option("hearing", N_("Hearing")),
                Option("moving", N_("Moving or walking")),
                Option("speaking", N_("Speaking")),
                Option("learning", N_("Learning or understanding")),
                Option("mental", N_("Mental health")),
                Option("other", N_("Something else")),
            ),
            hint=N_("Select all that apply"),
        ),
        Item(
            "disability-detail",
            N_("Tell us more (optional)"),
            "string",
            when=("disabilities-any", True),
        ),
    ),
)

FAMILY = Section(
    "family",
    N_("Family history"),
    (
        _gate(
            "family-any",
            N_("Do your parents, brothers, sisters or children have a serious illness?"),
            N_("Select yes if someone in your family has a serious illness"),
            N_("Such as high blood pressure, diabetes, heart disease, stroke or cancer"),
        ),
        Item(
            "relative",
            N_("Family member"),
            "group",
            more=N_("Add another family member"),
            repeats=True,
            required=True,
            error=N_("Add at least one family member, or go back and answer No"),
            when=("family-any", True),
            items=(
                Item(
                    "relative-who",
                    N_("Who?"),
                    "choice",
                    required=True,
                    error=N_("Select who it is"),
                    options=RELATIVES,
                ),
                Item(
                    "relative-disease",
                    N_("Which illness?"),
                    "choice",
                    required=True,
                    error=N_("Select the illness"),
                    options=FAMILY_DISEASES,
                    other="relative-other",
                ),
                Item("relative-other", N_("If something else, which?"), "string"),
            ),
        ),
    ),
)

VACCINATIONS = Section(
    "vaccines",
    N_("Vaccinations"),
    (
        _gate(
            "vaccines-any",
            N_("Have you had vaccinations that are not in your health book?"),
            N_("Select yes if you had vaccinations that are not in your book"),
            N_("For example at a private vaccination centre, or before you moved here"),
        ),
        Item(
            "vaccine",
            N_("Vaccination"),
            "group",
            more=N_("Add another vaccination"),
            repeats=True,
            required=True,
            error=N_("Add at least one vaccination, or go back and answer No"),
            when=("vaccines-any", True),
            items=(
                Item(
                    "vaccine-code",
                    N_("Which vaccine?"),
                    "choice",
                    required=True,
                    error=N_("Select the vaccine"),
                    options=VACCINES,
                    other="vaccine-other",
                ),
                Item("vaccine-other", N_("If another vaccine, which?"), "string"),
                Item(
                    "vaccine-date",
                    N_("When?"),
                    "date",
                    required=True,
                    error=N_("Enter at least the year of the vaccination"),
                    hint=N_("If you do not know the day, give the month and year, or the year"),
                ),
            ),
        ),
        Item(
            "vaccine-card",
            N_("A photo of your vaccination card (optional)"),
            "attachment",
            when=("vaccines-any", True),
            hint=N_("A photo (JPEG or PNG) of at most 10 MB. The station checks it."),
        ),
    ),
)

SECTIONS: Final = (
    ABOUT,
    BLOOD,
    ALLERGIES,
    CONDITIONS,
    SURGERIES,
    DISABILITIES,
    FAMILY,
    VACCINATIONS,
    TOBACCO,
    ALCOHOL,
    ACTIVITY,
    EXPOSURE,
    BIRTH,
    PREGNANCIES,
)
"""In the order asked: what matters most to a clinician first (allergies, illnesses)."""
BY_LINK: Final = {s.link: s for s in SECTIONS}

__all__ = ["BY_LINK", "SECTIONS"]
