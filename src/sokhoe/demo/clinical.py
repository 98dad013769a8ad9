"""Clinical records of one person: visits, diagnoses, vital signs, labs, prescriptions,
childhood immunisations, allergies and imaging, from 2021 to mid-2026.

Resources are built as plain dicts (no validation here: the generator must stay fast; the tests
validate every resource). Acute illnesses arrive as a Poisson process whose rate depends on age
and whose diagnosis mix depends on the month (dengue peaks June–November, respiratory infections
in the cool months); people with hypertension or type 2 diabetes come back every one to three
months, so a few people carry hundreds of resources while most have a handful.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Any

from sokhoe.demo.facilities import Facility
from sokhoe.demo.population import REF_ORD, Person

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DRUG = "https://fhir.sokhoe.vn/CodeSystem/drug"
CVX = "http://hl7.org/fhir/sid/cvx"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLIN = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
START_ORD = date(2021, 1, 1).toordinal()
_CLASS = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}
_CLASS_VI = {"AMB": "Khám ngoại trú", "IMP": "Điều trị nội trú", "EMER": "Cấp cứu"}

DRUGS: dict[str, tuple[str, str]] = {  # key: (display, dosage text)
    "AMLODIPIN-5": ("Amlodipin 5mg", "Uống 1 viên/ngày, buổi sáng"),
    "LOSARTAN-50": ("Losartan 50mg", "Uống 1 viên/ngày"),
    "METFORMIN-500": ("Metformin 500mg", "Uống 1 viên x 2 lần/ngày, sau ăn"),
    "GLICLAZID-30": ("Gliclazid 30mg MR", "Uống 1 viên/ngày, trước ăn sáng"),
    "PARACETAMOL-500": ("Paracetamol 500mg", "Uống 1 viên khi sốt > 38,5°C, cách 4–6 giờ"),
    "AMOXICILIN-500": ("Amoxicilin 500mg", "Uống 1 viên x 3 lần/ngày trong 7 ngày"),
    "CEFTRIAXON-1G": ("Ceftriaxon 1g", "Tiêm tĩnh mạch 1 lọ/ngày"),
    "OMEPRAZOL-20": ("Omeprazol 20mg", "Uống 1 viên trước ăn sáng 30 phút"),
    "ORESOL": ("Oresol 245", "Pha 1 gói với 200 ml nước, uống theo nhu cầu"),
    "MELOXICAM-7.5": ("Meloxicam 7.5mg", "Uống 1 viên/ngày sau ăn"),
    "CIPROFLOXACIN-500": ("Ciprofloxacin 500mg", "Uống 1 viên x 2 lần/ngày trong 5 ngày"),
    "CLORPHENIRAMIN-4": ("Clorpheniramin 4mg", "Uống 1 viên x 2 lần/ngày"),
    "ATORVASTATIN-10": ("Atorvastatin 10mg", "Uống 1 viên/ngày buổi tối"),
}


@dataclass(frozen=True, slots=True)
class Dx:
    code: str
    display: str
    weight: float
    cls: str
    vitals: str
    """Letters: T temperature, H heart rate, B blood pressure, W weight (and height)."""
    labs: tuple[str, ...]
    drugs: tuple[str, ...]
    imaging: tuple[str, float, str] | None = None
    """(modality, probability, description)."""
    season: str = ""


ACUTE: list[Dx] = [
    Dx(
        "J06.9",
        "Nhiễm trùng đường hô hấp trên cấp",
        30,
        "AMB",
        "TH",
        (),
        ("PARACETAMOL-500",),
        season="cool",
    ),
    Dx(
        "J20.9",
        "Viêm phế quản cấp",
        10,
        "AMB",
        "TH",
        (),
        ("AMOXICILIN-500", "PARACETAMOL-500"),
        season="cool",
    ),
    Dx(
        "J18.9",
        "Viêm phổi, không đặc hiệu",
        3,
        "IMP",
        "THB",
        (),
        ("CEFTRIAXON-1G",),
        ("DX", 0.9, "X-quang ngực thẳng"),
        season="cool",
    ),
    Dx("A90", "Sốt Dengue", 6, "AMB", "TH", ("777-3",), ("PARACETAMOL-500",), season="dengue"),
    Dx(
        "A91",
        "Sốt xuất huyết Dengue",
        1.5,
        "IMP",
        "THB",
        ("777-3",),
        ("PARACETAMOL-500",),
        season="dengue",
    ),
    Dx(
        "K29.7",
        "Viêm dạ dày, không đặc hiệu",
        8,
        "AMB",
        "B",
        (),
        ("OMEPRAZOL-20",),
        ("US", 0.15, "Siêu âm ổ bụng"),
    ),
    Dx("A09", "Tiêu chảy và viêm dạ dày ruột do nhiễm trùng", 6, "AMB", "TH", (), ("ORESOL",)),
    Dx(
        "S52.5",
        "Gãy đầu dưới xương quay",
        1.5,
        "EMER",
        "H",
        (),
        ("PARACETAMOL-500",),
        ("DX", 1.0, "X-quang cẳng tay"),
    ),
    Dx(
        "S06.0",
        "Chấn động não",
        1.0,
        "EMER",
        "HB",
        (),
        ("PARACETAMOL-500",),
        ("CT", 0.9, "Chụp cắt lớp vi tính sọ não"),
    ),
    Dx("T14.0", "Tổn thương nông ở vùng cơ thể không xác định", 4, "EMER", "H", (), ()),
    Dx(
        "S93.4",
        "Bong gân và căng cơ cổ chân",
        2,
        "EMER",
        "",
        (),
        ("MELOXICAM-7.5",),
        ("DX", 0.5, "X-quang cổ chân"),
    ),
    Dx(
        "M54.5",
        "Đau thắt lưng",
        5,
        "AMB",
        "B",
        (),
        ("MELOXICAM-7.5",),
        ("DX", 0.2, "X-quang cột sống thắt lưng"),
    ),
    Dx("H10.9", "Viêm kết mạc, không đặc hiệu", 3, "AMB", "", (), ("CLORPHENIRAMIN-4",)),
    Dx("N39.0", "Nhiễm khuẩn đường tiết niệu", 3, "AMB", "T", (), ("CIPROFLOXACIN-500",)),
    Dx("B08.4", "Bệnh tay chân miệng", 1.0, "AMB", "TH", (), ("PARACETAMOL-500",)),
    Dx("Z00.0", "Khám sức khỏe tổng quát", 8, "AMB", "HBW", ("2345-7", "2093-3"), ()),
]
HTN = Dx("I10", "Tăng huyết áp vô căn (nguyên phát)", 0, "AMB", "B", (), ("AMLODIPIN-5",))
DM = Dx(
    "E11.9",
    "Bệnh đái tháo đường type 2 không có biến chứng",
    0,
    "AMB",
    "W",
    ("2345-7",),
    ("METFORMIN-500",),
)


def _month_cum(month: int) -> list[float]:
    def w(d: Dx) -> float:
        if d.season == "dengue":
            return d.weight * (3.0 if 6 <= month <= 11 else 0.25)
        if d.season == "cool":
            return d.weight * (1.5 if month in (11, 12, 1, 2, 3) else 0.8)
        return d.weight

    return list(accumulate(w(d) for d in ACUTE))


_MONTH_CUM = [_month_cum(m) for m in range(1, 13)]
_LABS: dict[str, tuple[str, str, str]] = {  # LOINC: (display, unit, UCUM)
    "2345-7": ("Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
    "4548-4": ("Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%"),
    "2160-0": ("Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
    "777-3": ("Platelets [#/volume] in Blood by Automated count", "10*3/uL", "10*3/uL"),
    "2093-3": ("Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"),
}
_EPI: list[tuple[str, str, str, int, int]] = [  # (CVX, text, series, dose, age in days)
    ("19", "Vắc xin BCG (phòng lao)", "BCG", 1, 1),
    ("08", "Vắc xin viêm gan B sơ sinh (VGB)", "VGB", 1, 0),
    ("198", "Vắc xin 5 trong 1 DPT-VGB-Hib", "DPT-VGB-Hib", 1, 60),
    ("178", "Vắc xin bại liệt uống (OPV)", "OPV", 1, 60),
    ("198", "Vắc xin 5 trong 1 DPT-VGB-Hib", "DPT-VGB-Hib", 2, 90),
    ("178", "Vắc xin bại liệt uống (OPV)", "OPV", 2, 90),
    ("198", "Vắc xin 5 trong 1 DPT-VGB-Hib", "DPT-VGB-Hib", 3, 120),
    ("178", "Vắc xin bại liệt uống (OPV)", "OPV", 3, 120),
    ("10", "Vắc xin bại liệt tiêm (IPV)", "IPV", 1, 150),
    ("05", "Vắc xin sởi", "Sởi", 1, 270),
    ("39", "Vắc xin viêm não Nhật Bản", "VNNB", 1, 365),
    ("39", "Vắc xin viêm não Nhật Bản", "VNNB", 2, 375),
    ("04", "Vắc xin sởi - rubella (MR)", "MR", 1, 540),
    ("01", "Vắc xin DPT (nhắc lại)", "DPT", 4, 540),
    ("39", "Vắc xin viêm não Nhật Bản", "VNNB", 3, 730),
]
_ALLERGIES = [
    ("Penicilin", "medication", "high", "Nổi mày đay, khó thở"),
    ("Hải sản (tôm, cua)", "food", "low", "Ngứa, phát ban"),
    ("Aspirin", "medication", "low", "Phát ban"),
    ("Sữa bò", "food", "low", "Nôn, tiêu chảy"),
    ("Bụi nhà", "environment", "low", "Hắt hơi, sổ mũi"),
]
_MODALITY = {"DX": "Digital Radiography", "CT": "Computed Tomography", "US": "Ultrasound"}


class Records:
    """Builds the resources of one person; ``out`` collects them in creation order."""

    def __init__(self, person: Person, central: list[Facility]) -> None:
        self.p = person
        self.rng = person.rng
        self.central = central
        self.subject = {"reference": f"Patient/{person.id}"}
        self.out: list[dict[str, Any]] = []
        self.doctor = ""
        self.enc_ref: dict[str, str] = {}
        self.time = ""

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, ord_: int) -> str:
        minute = self.rng.randrange(7 * 60, 17 * 60)
        hour, minute = divmod(minute, 60)
        return f"{date.fromordinal(ord_).isoformat()}T{hour:02d}:{minute:02d}:00+07:00"

    def facility(self, cls: str) -> Facility:
        r = self.rng.random()
        local = self.p.local
        if cls == "AMB":
            if r < 0.5:
                return self.p.home
            level = "regional" if r < 0.75 else "private-clinic" if r < 0.95 else "provincial"
        elif cls == "EMER":
            level = "regional" if r < 0.5 else "provincial"
        else:
            if r < 0.08:
                return self.rng.choice(self.central)
            level = "provincial" if r < 0.65 else "regional"
        return self.rng.choice(local[level])

    # -- building blocks -------------------------------------------------------------------
    def encounter(self, dx: Dx, ord_: int, cls: str, fac: Facility, cond_id: str) -> str:
        eid = self.uid()
        start = self.when(ord_)
        end = self.when(ord_ + self.rng.randint(3, 8)) if cls == "IMP" else start
        enc: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": ACT, "code": cls, "display": _CLASS[cls]},
            "type": [{"text": _CLASS_VI[cls]}],
            "subject": self.subject,
            "period": {"start": start, "end": end},
            "reasonCode": [
                {
                    "coding": [{"system": ICD10, "code": dx.code, "display": dx.display}],
                    "text": dx.display,
                }
            ],
            "diagnosis": [{"condition": {"reference": f"Condition/{cond_id}"}, "rank": 1}],
            "serviceProvider": {"reference": f"Organization/{fac.id}", "display": fac.name},
        }
        if fac.practitioners:
            self.doctor = self.rng.choice(fac.practitioners)
            enc["participant"] = [{"individual": {"reference": f"Practitioner/{self.doctor}"}}]
        else:
            self.doctor = ""
        self.out.append(enc)
        self.enc_ref = {"reference": f"Encounter/{eid}"}
        self.time = start
        return eid

    def condition(self, cid: str, dx: Dx, onset: str, chronic: bool) -> None:
        cond: dict[str, Any] = {
            "resourceType": "Condition",
            "id": cid,
            "clinicalStatus": {
                "coding": [{"system": COND_CLIN, "code": "active" if chronic else "resolved"}]
            },
            "verificationStatus": {"coding": [{"system": COND_VER, "code": "confirmed"}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": COND_CAT,
                            "code": "problem-list-item" if chronic else "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": ICD10, "code": dx.code, "display": dx.display}],
                "text": dx.display,
            },
            "subject": self.subject,
            "encounter": self.enc_ref,
            "onsetDateTime": onset,
            "recordedDate": onset,
        }
        if not chronic:
            cond["abatementString"] = "Khỏi bệnh"
        self.out.append(cond)

    def _obs(self, cat: str, code: str, display: str) -> dict[str, Any]:
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self.uid(),
            "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": cat}]}],
            "code": {
                "coding": [{"system": LOINC, "code": code, "display": display}],
                "text": display,
            },
            "subject": self.subject,
            "encounter": self.enc_ref,
            "effectiveDateTime": self.time,
        }
        self.out.append(obs)
        return obs

    def quantity(self, cat: str, code: str, display: str, value: float, unit: str) -> None:
        self._obs(cat, code, display)["valueQuantity"] = {
            "value": value,
            "unit": unit,
            "system": UCUM,
            "code": unit,
        }

    def vitals(self, letters: str, sys_bp: int = 0) -> None:
        rng = self.rng
        if "T" in letters:
            self.quantity(
                "vital-signs",
                "8310-5",
                "Body temperature",
                round(rng.uniform(37.2, 39.8), 1),
                "Cel",
            )
        if "H" in letters:
            self.quantity("vital-signs", "8867-4", "Heart rate", rng.randint(64, 112), "/min")
        if "B" in letters and self.p.age >= 16:
            sbp = sys_bp or rng.randint(100, 135)
            obs = self._obs("vital-signs", "85354-9", "Blood pressure panel")
            obs["component"] = [
                {
                    "code": {"coding": [{"system": LOINC, "code": code, "display": disp}]},
                    "valueQuantity": {
                        "value": val,
                        "unit": "mm[Hg]",
                        "system": UCUM,
                        "code": "mm[Hg]",
                    },
                }
                for code, disp, val in (
                    ("8480-6", "Systolic blood pressure", sbp),
                    ("8462-4", "Diastolic blood pressure", sbp - rng.randint(35, 55)),
                )
            ]
        if "W" in letters:
            age = self.p.age
            adult = 58.0 if self.p.sex == "male" else 50.0
            kg = min(adult, 3.2 + age * 2.6) if age < 18 else adult
            self.quantity(
                "vital-signs",
                "29463-7",
                "Body weight",
                round(kg * rng.uniform(0.85, 1.25), 1),
                "kg",
            )
            cm = min(165.0, 50 + age * 6.5) if self.p.sex == "male" else min(155.0, 50 + age * 6)
            self.quantity(
                "vital-signs", "8302-2", "Body height", round(cm * rng.uniform(0.96, 1.04), 0), "cm"
            )

    def lab(self, code: str, value: float) -> None:
        display, unit, _ = _LABS[code]
        self.quantity("laboratory", code, display, value, unit)

    def prescribe(self, key: str, days: int) -> None:
        display, how = DRUGS[key]
        req: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": self.uid(),
            "status": "completed",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": DRUG, "code": key, "display": display}],
                "text": display,
            },
            "subject": self.subject,
            "encounter": self.enc_ref,
            "authoredOn": self.time,
            "dosageInstruction": [{"text": how}],
            "dispenseRequest": {
                "expectedSupplyDuration": {
                    "value": days,
                    "unit": "ngày",
                    "system": UCUM,
                    "code": "d",
                }
            },
        }
        if self.doctor:
            req["requester"] = {"reference": f"Practitioner/{self.doctor}"}
        self.out.append(req)

    def imaging(self, modality: str, description: str) -> None:
        self.out.append(
            {
                "resourceType": "ImagingStudy",
                "id": self.uid(),
                "identifier": [
                    {
                        "system": "urn:dicom:uid",
                        "value": f"urn:oid:2.25.{self.rng.getrandbits(100)}",
                    }
                ],
                "status": "available",
                "modality": [{"system": DCM, "code": modality, "display": _MODALITY[modality]}],
                "subject": self.subject,
                "encounter": self.enc_ref,
                "started": self.time,
                "numberOfSeries": 1,
                "numberOfInstances": self.rng.randint(1, 3) if modality != "CT" else 120,
                "description": description,
            }
        )

    # -- episodes --------------------------------------------------------------------------
    def acute(self) -> None:
        p, rng = self.p, self.rng
        age = p.age
        rate = 0.6 if age < 6 else 0.2 if age < 18 else 0.18 if age < 60 else 0.3
        t = float(max(START_ORD, p.birth_ord + 30))
        while True:
            t += rng.expovariate(rate / 365.0)
            ord_ = int(t)
            if ord_ > REF_ORD:
                return
            month = date.fromordinal(ord_).month
            dx = rng.choices(ACUTE, cum_weights=_MONTH_CUM[month - 1])[0]
            cls = dx.cls
            if dx.code == "A90" and rng.random() < 0.2:
                cls = "IMP"
            fac = self.facility(cls)
            cid = self.uid()
            self.encounter(dx, ord_, cls, fac, cid)
            self.condition(cid, dx, self.time, chronic=False)
            self.vitals(dx.vitals)
            for lab in dx.labs:
                value = {
                    "777-3": rng.randint(20, 140),
                    "2345-7": rng.randint(75, 125),
                    "2093-3": rng.randint(140, 260),
                }[lab]
                self.lab(lab, value)
            for drug in dx.drugs:
                self.prescribe(drug, 5 if cls != "IMP" else 7)
            if dx.imaging and rng.random() < dx.imaging[1]:
                self.imaging(dx.imaging[0], dx.imaging[2])

    def chronic(self, dx: Dx, extra: tuple[str, ...]) -> None:
        """Diagnosis, then follow-up every 1–3 months until the reference date."""
        p, rng = self.p, self.rng
        earliest = max(START_ORD, p.birth_ord + 30 * 365)
        if earliest >= REF_ORD:
            return
        ord_ = rng.randint(earliest, REF_ORD)
        if rng.random() < 0.5:  # diagnosed before the window: follow-up from its start
            ord_ = earliest + rng.randint(0, 60)
        step = rng.choice((30, 60, 90, 90))
        fac = self.p.home if rng.random() < 0.6 else rng.choice(self.p.local["regional"])
        cid = self.uid()
        visit = 0
        level = rng.randint(135, 165)
        while ord_ <= REF_ORD:
            self.encounter(dx, ord_, "AMB", fac, cid)
            if visit == 0:
                self.condition(cid, dx, self.time, chronic=True)
            if dx is HTN:
                self.vitals("B", sys_bp=level + rng.randint(-12, 12))
                level = max(122, level - 3)
            else:
                self.lab("2345-7", rng.randint(110, 240))
                if visit % 3 == 0:
                    self.lab("4548-4", round(rng.uniform(6.3, 9.5), 1))
                if visit % 6 == 0:
                    self.vitals("W")
            if visit % 12 == 0:
                self.lab("2160-0", round(rng.uniform(0.6, 1.4), 2))
                self.lab("2093-3", rng.randint(150, 280))
            for drug in (*dx.drugs, *extra):
                self.prescribe(drug, step)
            visit += 1
            ord_ += step + rng.randint(-3, 5)

    def immunizations(self) -> None:
        p, rng = self.p, self.rng
        if REF_ORD - p.birth_ord > 7 * 365:
            return
        actor = {"reference": f"Organization/{p.home.id}", "display": p.home.name}
        for cvx, text, series, dose, days in _EPI:
            ord_ = p.birth_ord + days + (rng.randint(0, 21) if days else 0)
            if ord_ > REF_ORD or rng.random() > 0.95:
                continue
            self.out.append(
                {
                    "resourceType": "Immunization",
                    "id": self.uid(),
                    "status": "completed",
                    "vaccineCode": {"coding": [{"system": CVX, "code": cvx}], "text": text},
                    "patient": self.subject,
                    "occurrenceDateTime": self.when(ord_),
                    "primarySource": True,
                    "performer": [{"actor": actor}],
                    "protocolApplied": [
                        {"series": f"TCMR {series}", "doseNumberPositiveInt": dose}
                    ],
                }
            )

    def allergy(self) -> None:
        rng = self.rng
        substance, category, criticality, reaction = rng.choice(_ALLERGIES)
        self.out.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": self.uid(),
                "clinicalStatus": {"coding": [{"system": ALLERGY_CLIN, "code": "active"}]},
                "verificationStatus": {"coding": [{"system": ALLERGY_VER, "code": "confirmed"}]},
                "type": "allergy",
                "category": [category],
                "criticality": criticality,
                "code": {"text": substance},
                "patient": self.subject,
                "recordedDate": self.when(rng.randint(max(START_ORD, self.p.birth_ord), REF_ORD)),
                "reaction": [{"manifestation": [{"text": reaction}]}],
            }
        )


def person_records(person: Person, central: list[Facility]) -> list[dict[str, Any]]:
    """Every clinical resource of ``person`` (the Patient itself excluded)."""
    rec = Records(person, central)
    rng = rec.rng
    age = person.age
    rec.immunizations()
    if rng.random() < 0.03:
        rec.allergy()
    rec.acute()
    htn_p = 0.0 if age < 30 else 0.02 if age < 45 else 0.05 if age < 60 else 0.1
    dm_p = 0.0 if age < 30 else 0.008 if age < 45 else 0.02 if age < 60 else 0.035
    if rng.random() < htn_p:
        rec.chronic(HTN, ("LOSARTAN-50",) if rng.random() < 0.3 else ())
    if rng.random() < dm_p:
        rec.chronic(DM, ("ATORVASTATIN-10",) if rng.random() < 0.4 else ())
    return rec.out
