"""The codes the self-declaration's answers carry: ICD-10 for the common long-term illnesses,
CVX for vaccines, HL7 allergy categories and family roles, the 54 ethnic groups with the
statistics office's two-digit codes as in the insurance field ``MA_DANTOC`` (the list's order
is the 1979 decision 121-TCTK/PPCĐ; unconfirmed against the Ministry's current table), and our
own codes (:data:`~sokhoe.portal.questionnaire.DECLARATION`) for the rest.
"""

from __future__ import annotations

from typing import Final

from sokhoe.portal.questionnaire import N_, Option
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM

CVX: Final = "http://hl7.org/fhir/sid/cvx"
ALLERGY_CATEGORY: Final = "http://hl7.org/fhir/allergy-intolerance-category"
ETHNICITY: Final = "https://fhir.sokhoe.vn/CodeSystem/ethnicity"
V3_ROLE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

_ETHNIC_GROUPS = (
    "Kinh", "Tày", "Thái", "Hoa", "Khơ-me", "Mường", "Nùng", "HMông", "Dao", "Gia-rai", "Ngái",
    "Ê-đê", "Ba-na", "Xơ-đăng", "Sán Chay", "Cơ-ho", "Chăm", "Sán Dìu", "Hrê", "Mnông",
    "Ra-glai", "Xtiêng", "Bru-Vân Kiều", "Thổ", "Giáy", "Cơ-tu", "Gié-Triêng", "Mạ", "Khơ-mú",
    "Co", "Tà-ôi", "Chơ-ro", "Kháng", "Xinh-mun", "Hà Nhì", "Chu-ru", "Lào", "La Chí", "La Ha",
    "Phù Lá", "La Hủ", "Lự", "Lô Lô", "Chứt", "Mảng", "Pà Thẻn", "Cơ Lao", "Cống", "Bố Y",
    "Si La", "Pu Péo", "Brâu", "Ơ Đu", "Rơ-măm",
)  # fmt: skip
ETHNIC_GROUPS: Final = tuple(
    Option(f"{n:02d}", name, ETHNICITY) for n, name in enumerate(_ETHNIC_GROUPS, start=1)
)
"""The 54 ethnic groups (names are proper nouns: the same in every language)."""

CHRONIC: Final = (
    Option("I10", N_("High blood pressure"), ICD10_SYSTEM),
    Option("E11", N_("Type 2 diabetes"), ICD10_SYSTEM),
    Option("E10", N_("Type 1 diabetes"), ICD10_SYSTEM),
    Option("E78", N_("High blood fats (cholesterol)"), ICD10_SYSTEM),
    Option("I25", N_("Heart disease (angina, heart attack)"), ICD10_SYSTEM),
    Option("I50", N_("Heart failure"), ICD10_SYSTEM),
    Option("I69", N_("After-effects of a stroke"), ICD10_SYSTEM),
    Option("J45", N_("Asthma"), ICD10_SYSTEM),
    Option("J44", N_("Chronic lung disease (COPD)"), ICD10_SYSTEM),
    Option("B18", N_("Chronic hepatitis B or C"), ICD10_SYSTEM),
    Option("K74", N_("Cirrhosis of the liver"), ICD10_SYSTEM),
    Option("N18", N_("Chronic kidney disease"), ICD10_SYSTEM),
    Option("K27", N_("Stomach or duodenal ulcer"), ICD10_SYSTEM),
    Option("M19", N_("Joint wear (osteoarthritis)"), ICD10_SYSTEM),
    Option("E07", N_("Thyroid disease"), ICD10_SYSTEM),
    Option("D56", N_("Thalassaemia"), ICD10_SYSTEM),
    Option("G40", N_("Epilepsy"), ICD10_SYSTEM),
    Option("C80", N_("Cancer"), ICD10_SYSTEM),
)
"""Common long-term illnesses with their ICD-10 category (checked by the tests against the
classification)."""

FAMILY_DISEASES: Final = (
    Option("I10", N_("High blood pressure"), ICD10_SYSTEM),
    Option("E14", N_("Diabetes"), ICD10_SYSTEM),
    Option("I25", N_("Heart disease (angina, heart attack)"), ICD10_SYSTEM),
    Option("I64", N_("Stroke"), ICD10_SYSTEM),
    Option("C80", N_("Cancer"), ICD10_SYSTEM),
    Option("J45", N_("Asthma"), ICD10_SYSTEM),
    Option("D56", N_("Thalassaemia"), ICD10_SYSTEM),
    Option("G40", N_("Epilepsy"), ICD10_SYSTEM),
    Option("other", N_("Something else")),
)

RELATIVES: Final = (
    Option("FTH", N_("Father"), V3_ROLE),
    Option("MTH", N_("Mother"), V3_ROLE),
    Option("BRO", N_("Brother"), V3_ROLE),
    Option("SIS", N_("Sister"), V3_ROLE),
    Option("GRPRN", N_("Grandparent"), V3_ROLE),
    Option("CHILD", N_("Child"), V3_ROLE),
)

VACCINES: Final = (
    Option("213", N_("COVID-19"), CVX),
    Option("45", N_("Hepatitis B"), CVX),
    Option("112", N_("Tetanus"), CVX),
    Option("88", N_("Flu (influenza)"), CVX),
    Option("137", N_("HPV (cervical cancer)"), CVX),
    Option("90", N_("Rabies"), CVX),
    Option("129", N_("Japanese encephalitis"), CVX),
    Option("04", N_("Measles and rubella (MR)"), CVX),
    Option("03", N_("Measles, mumps and rubella (MMR)"), CVX),
    Option("21", N_("Chickenpox"), CVX),
    Option("85", N_("Hepatitis A"), CVX),
    Option("91", N_("Typhoid"), CVX),
    Option("other", N_("Another vaccine")),
)

YES_NO_UNKNOWN: Final = (
    Option("yes", N_("Yes")),
    Option("no", N_("No")),
    Option("unknown", N_("I do not know")),
)
NEVER_NOW_BEFORE: Final = (
    Option("never", N_("No, never")),
    Option("current", N_("Yes, I do now")),
    Option("former", N_("I used to, but I stopped")),
)


__all__ = [
    "ALLERGY_CATEGORY",
    "CHRONIC",
    "CVX",
    "ETHNICITY",
    "ETHNIC_GROUPS",
    "FAMILY_DISEASES",
    "NEVER_NOW_BEFORE",
    "RELATIVES",
    "V3_ROLE",
    "VACCINES",
    "YES_NO_UNKNOWN",
]
