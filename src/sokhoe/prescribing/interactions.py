"""A small, curated drug-interaction table: honest about its size and its source.

No free national interaction service exists in Vietnam, and the US RxNav interaction API closed
in January 2024. This table holds a few well-documented interactions between medicines common
at commune stations and district hospitals, keyed by ATC code (a level-5 substance or a shorter
group prefix), so that every salt and every catalogue's product of a substance matches. It is
*not* a complete interaction checker: a prescriber's judgement and a pharmacist's review stay
necessary, and the pages say so.

Source: curated by the sokhoe maintainers from the interactions section of the WHO Model
Formulary 2008 (Appendix 1) and the product information of the substances named; not yet
checked against the Ministry of Health's guidance on clinically important interactions
(unconfirmed). Severity ``high`` is a combination to avoid (contraindicated), ``moderate`` one
to monitor or adjust. Each change is a new :data:`VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["high", "moderate", "low"]
VERSION: Final = "sokhoe-interactions-2026.1"
SOURCE: Final = (
    "sokhoe, curated from the WHO Model Formulary 2008 (Appendix 1) and product information; "
    "unconfirmed against the Ministry of Health's guidance"
)


@dataclass(frozen=True)
class Interaction:
    """Two ATC groups that interact, what happens (in Vietnamese and English), how serious."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    severity: Severity
    effect_vi: str
    effect_en: str

    def matches(self, atc_a: str, atc_b: str) -> bool:
        def within(atc: str, groups: tuple[str, ...]) -> bool:
            return bool(atc) and any(atc.startswith(g) for g in groups)

        return (within(atc_a, self.first) and within(atc_b, self.second)) or (
            within(atc_b, self.first) and within(atc_a, self.second)
        )


_WARFARIN = ("B01AA",)
_NSAID = ("M01A", "N02BA")  # NSAIDs and aspirin as analgesic
_ASPIRIN_LOW = ("B01AC06",)
_MACROLIDE = ("J01FA",)
_QUINOLONE = ("J01MA",)
_METRONIDAZOLE = ("P01AB01", "J01XD01", "J01RA04")
_ACEI_ARB = ("C09A", "C09B", "C09C", "C09D")
_K_SPARING = ("C03DA", "C03DB")
_POTASSIUM = ("B05XA01", "A12BA")
_NITRATE = ("C01DA",)
_PDE5 = ("G04BE03", "G04BE08")
_OPIOID = ("N02A",)
_BENZODIAZEPINE = ("N05BA", "N05CD")
_SSRI = ("N06AB",)

TABLE: Final[tuple[Interaction, ...]] = (
    Interaction(
        _WARFARIN,
        _NSAID + _ASPIRIN_LOW,
        "high",
        "Tăng nguy cơ chảy máu (thuốc kháng vitamin K với NSAID/aspirin)",
        "Higher risk of bleeding (vitamin K antagonist with an NSAID or aspirin)",
    ),
    Interaction(
        _WARFARIN,
        _MACROLIDE + _METRONIDAZOLE,
        "high",
        "Tăng tác dụng chống đông, tăng INR, nguy cơ chảy máu",
        "Anticoagulant effect increased (INR rises): risk of bleeding",
    ),
    Interaction(
        _WARFARIN,
        _QUINOLONE,
        "moderate",
        "Có thể tăng INR: theo dõi INR",
        "May raise the INR: monitor it",
    ),
    Interaction(
        ("C10AA01", "C10AA02"),
        ("J01FA09", "J01FA01"),
        "high",
        "Chống chỉ định: tăng nguy cơ tiêu cơ vân (simvastatin/lovastatin với clarithromycin/"
        "erythromycin)",
        "Contraindicated: risk of myopathy and rhabdomyolysis (simvastatin or lovastatin with "
        "clarithromycin or erythromycin)",
    ),
    Interaction(
        _ACEI_ARB,
        _K_SPARING + _POTASSIUM,
        "high",
        "Nguy cơ tăng kali máu: theo dõi kali máu",
        "Risk of hyperkalaemia: monitor potassium",
    ),
    Interaction(
        _PDE5,
        _NITRATE,
        "high",
        "Chống chỉ định: tụt huyết áp nặng",
        "Contraindicated: severe hypotension",
    ),
    Interaction(
        ("C01AA05",),
        ("C01BD01",),
        "high",
        "Amiodaron làm tăng nồng độ digoxin: giảm liều digoxin và theo dõi",
        "Amiodarone raises digoxin levels: halve the digoxin dose and monitor",
    ),
    Interaction(
        _OPIOID,
        _BENZODIAZEPINE,
        "high",
        "Tăng nguy cơ ức chế hô hấp và an thần quá mức",
        "Higher risk of respiratory depression and oversedation",
    ),
    Interaction(
        ("N02AX02",),
        _SSRI,
        "high",
        "Nguy cơ hội chứng serotonin và co giật (tramadol với SSRI)",
        "Risk of serotonin syndrome and seizures (tramadol with an SSRI)",
    ),
    Interaction(
        ("B01AC04",),
        ("A02BC01", "A02BC05"),
        "moderate",
        "Omeprazol/esomeprazol làm giảm tác dụng chống kết tập tiểu cầu của clopidogrel",
        "Omeprazole or esomeprazole reduces clopidogrel's antiplatelet effect",
    ),
    Interaction(
        ("M04AA01",),
        ("L01BB02", "L04AX01"),
        "high",
        "Allopurinol làm tăng độc tính của mercaptopurin/azathioprin",
        "Allopurinol increases the toxicity of mercaptopurine or azathioprine",
    ),
    Interaction(
        ("A10BA02",),
        ("V08AB",),
        "moderate",
        "Metformin với thuốc cản quang chứa iod: nguy cơ nhiễm toan lactic",
        "Metformin with iodinated contrast: risk of lactic acidosis",
    ),
)


def interactions(atc_a: str, atc_b: str) -> list[Interaction]:
    """The table's entries for two medicines (by their ATC codes)."""
    return [i for i in TABLE if i.matches(atc_a, atc_b)]


__all__ = ["SOURCE", "TABLE", "VERSION", "Interaction", "Severity", "interactions"]
