"""Turn one encounter's record into the rows of the appraisal tables.

Pure: no I/O. What the record does not say (prices, insurance cost groups) comes from the
:class:`~sokhoe.interop.claims.catalogue.Catalogue`; what the rules leave to the facility
(department codes, visit-type codes) is in :mod:`~sokhoe.interop.claims.codes`. Anything
the claim needs but the record lacks is left empty, and the validator reports it: the builder
never invents clinical facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sokhoe.interop.claims.benefit import Split
from sokhoe.interop.claims.catalogue import SUPPLY_GROUPS, Catalogue, PriceItem
from sokhoe.interop.claims.codes import (
    DOITUONG_EMERGENCY,
    LOINC,
    MA_QUOCTICH_VIETNAM,
    PAY_IN_SCOPE,
    PAYMENT_FEE_FOR_SERVICE,
    VITALS,
)
from sokhoe.interop.claims.facts import VisitFacts
from sokhoe.interop.claims.formats import (
    birth12,
    coding_of,
    d8,
    dt12,
    identifiers,
    name_text,
    number,
)
from sokhoe.interop.claims.sources import EncounterRecord
from sokhoe.interop.claims.tables import TABLES
from sokhoe.interop.claims.validate import Problem, Row
from sokhoe.messages import Message, Text
from sokhoe.mpi.identifiers import CCCD, mrn_system


@dataclass
class Claim:
    """The rows of one encounter's tables, ready to validate and write."""

    ma_lk: str
    patient_id: str
    insured: bool
    tables: dict[str, list[Row]] = field(default_factory=dict)
    """LOAIHOSO → rows, in ``FILEHOSO`` order (XML1 first)."""
    checkin: list[Row] | None = None
    """XML0 rows (None when no check-in is due: emergencies and uninsured visits)."""
    problems: list[Problem] = field(default_factory=list)
    """What the builder could not fill (missing prices)."""
    split: Split | None = None
    """The fund's share of the visit and why (None: not insured)."""


class _Builder(VisitFacts):
    """Builds the tables from the facts (one instance per encounter)."""

    def drugs(self) -> list[Row]:
        rows: list[Row] = []
        for stt, req in enumerate(self.r.medications, start=1):
            concept = req.get("medicationCodeableConcept") or {}
            key = next((c.get("code", "") for c in concept.get("coding", [])), "")
            item = self.cat.get("drug", str(key))
            supply = (req.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
            days = Decimal(str(supply.get("value", 1)))
            dosage = "; ".join(
                str(d["text"]) for d in req.get("dosageInstruction", []) if d.get("text")
            )
            row: Row = {
                "MA_LK": self.ma_lk,
                "STT": str(stt),
                "MA_THUOC": item.code if item else "",
                "MA_NHOM": str(item.group) if item else "",
                "TEN_THUOC": item.name if item else str(concept.get("text", "")),
                "DON_VI_TINH": item.unit if item else "",
                "DUONG_DUNG": item.route if item else "",
                "LIEU_DUNG": dosage,
                "PHAM_VI": PAY_IN_SCOPE,
                "MA_KHOA": self.department,
                "MA_BAC_SI": self._requester(req),
                "NGAY_YL": dt12(req.get("authoredOn") or self.start),
                "NGAY_TH_YL": dt12(req.get("authoredOn") or self.start),
                "MA_PTTT": PAYMENT_FEE_FOR_SERVICE,
            }
            if item is None:
                drug = str(key or concept.get("text", "?"))
                self._missing_price("XML2", stt, Message("drug %(code)s", code=drug))
                row.update({"SO_LUONG": "", "DON_GIA": ""})
            else:
                qty = item.per_day * days
                row.update({"SO_LUONG": number(qty), "DON_GIA": number(item.price)})
                row.update(self._money(qty, item.price))
            rows.append(row)
        return rows

    def services(self) -> list[Row]:
        """XML3: the examination, bed days, lab tests, imaging and procedures."""
        items: list[tuple[PriceItem | None, Decimal, Text, str | None, str | None]] = []
        # (item, quantity, what, ordered, result)
        items.append(
            (
                self.cat.get("exam", self.cls),
                Decimal(1),
                Message("exam %(code)s", code=self.cls),
                self.start,
                None,
            )
        )
        if self.cls == "IMP":
            nights = self._nights()
            items.append(
                (
                    self.cat.get("bed", self.cls),
                    Decimal(nights),
                    Message("bed day"),
                    self.start,
                    None,
                )
            )
        for obs in self._labs():
            code = coding_of(obs.get("code"), LOINC).get("code", "")
            when = obs.get("effectiveDateTime")
            items.append(
                (
                    self.cat.get("lab", str(code)),
                    Decimal(1),
                    Message("lab test %(code)s", code=str(code)),
                    when,
                    when,
                )
            )
        for study in self.r.imaging:
            modality = str(((study.get("modality") or [{}])[0]).get("code", ""))
            item = self.cat.imaging(modality, str(study.get("description", "")))
            when = study.get("started")
            said = Message("imaging %(code)s", code=modality)
            items.append((item, Decimal(1), said, when, when))
        for proc in self.r.procedures:
            code = next((c.get("code", "") for c in (proc.get("code") or {}).get("coding", [])), "")
            when = proc.get("performedDateTime") or (proc.get("performedPeriod") or {}).get("start")
            item = self.cat.get("procedure", str(code))
            said = Message("procedure %(code)s", code=str(code))
            items.append((item, Decimal(1), said, when, when))
        ma_benh = ";".join(code for code, _ in self.diagnoses[:13])
        rows: list[Row] = []
        for stt, (item, qty, what, ordered, result) in enumerate(items, start=1):
            row: Row = {
                "MA_LK": self.ma_lk,
                "STT": str(stt),
                "MA_DICH_VU": item.code if item else "",
                "MA_NHOM": str(item.group) if item else "",
                "TEN_DICH_VU": item.name if item else "",
                "DON_VI_TINH": item.unit if item else "",
                "PHAM_VI": PAY_IN_SCOPE,
                "SO_LUONG": number(qty),
                "TYLE_TT_DV": "100",
                "MA_KHOA": self.department,
                "MA_BAC_SI": self.doctor[0],
                "NGUOI_THUC_HIEN": self.doctor[0],
                "MA_BENH": ma_benh,
                "NGAY_YL": dt12(ordered or self.start),
                "NGAY_TH_YL": dt12(ordered or self.start),
                "NGAY_KQ": dt12(result),
                "MA_PTTT": PAYMENT_FEE_FOR_SERVICE,
            }
            if item is None:
                self._missing_price("XML3", stt, what)
                row.update({"DON_GIA_BV": "", "DON_GIA_BH": ""})
            else:
                price = number(item.price)
                row.update({"DON_GIA_BV": price, "DON_GIA_BH": price})
                row.update(self._money(qty, item.price))
            rows.append(row)
        return rows

    def results(self) -> list[Row]:
        """XML4: one row per laboratory result (LOINC as ``MA_CHI_SO``: QĐ 1227 codes are not
        in the record; unconfirmed whether the portal accepts LOINC there)."""
        rows: list[Row] = []
        for stt, obs in enumerate(self._labs(), start=1):
            coding = coding_of(obs.get("code"), LOINC)
            item = self.cat.get("lab", str(coding.get("code", "")))
            quantity = obs.get("valueQuantity") or {}
            if quantity.get("value") is not None:
                value = number(Decimal(str(quantity["value"])))
            else:  # a text result ("âm tính") or a coded one
                concept = obs.get("valueCodeableConcept") or {}
                value = str(obs.get("valueString") or concept.get("text") or "")
            rows.append(
                {
                    "MA_LK": self.ma_lk,
                    "STT": str(stt),
                    "MA_DICH_VU": item.code if item else "",
                    "MA_CHI_SO": str(coding.get("code", "")),
                    "TEN_CHI_SO": str(
                        coding.get("display") or (obs.get("code") or {}).get("text", "")
                    ),
                    "GIA_TRI": value,
                    "DON_VI_DO": str(quantity.get("unit", "")),
                    "NGAY_KQ": dt12(obs.get("effectiveDateTime")),
                    "MA_BS_DOC_KQ": self.doctor[0],
                }
            )
        return rows

    def progress(self) -> list[Row]:
        """XML5: vital signs recorded at the visit, one row per moment."""
        by_time: dict[str, list[str]] = {}
        for obs in self.r.observations:
            code = coding_of(obs.get("code"), LOINC).get("code", "")
            when = str(obs.get("effectiveDateTime") or self.start or "")
            if code in VITALS:
                label, unit = VITALS[str(code)]
                value = (obs.get("valueQuantity") or {}).get("value")
                by_time.setdefault(when, []).append(f"{label} {value} {unit}")
            elif code == "85354-9":
                parts = {
                    coding_of(c.get("code"), LOINC).get("code"): (c.get("valueQuantity") or {}).get(
                        "value"
                    )
                    for c in obs.get("component", [])
                }
                by_time.setdefault(when, []).append(
                    f"Huyết áp {parts.get('8480-6')}/{parts.get('8462-4')} mmHg"
                )
        return [
            {
                "MA_LK": self.ma_lk,
                "STT": str(stt),
                "DIEN_BIEN_LS": "; ".join(notes),
                "THOI_DIEM_DBLS": dt12(when),
                "NGUOI_THUC_HIEN": self.doctor[0],
            }
            for stt, (when, notes) in enumerate(sorted(by_time.items()), start=1)
        ]

    def summary(self, drugs: list[Row], services: list[Row]) -> Row:
        """XML1: who, why, when, and the totals of XML2/XML3."""
        patient = self.r.patient
        cccd = identifiers(patient, CCCD)
        mrn = identifiers(patient, mrn_system(self.r.facility.code))
        phone = next(
            (t["value"] for t in patient.get("telecom", []) if t.get("system") == "phone"), ""
        )
        address, province, ward = self._address()
        registered = [
            self.r.facility_codes.get(
                (c.get("assigner") or {}).get("reference", "").removeprefix("Organization/"), ""
            )
            for c in self.cards
        ]

        def total(rows: Iterable[Row], name: str) -> Decimal:
            return sum((Decimal(r[name]) for r in rows if r.get(name)), Decimal(0))

        both = [*drugs, *services]
        supplies = [r for r in services if r.get("MA_NHOM") and int(r["MA_NHOM"]) in SUPPLY_GROUPS]
        paid = dt12(self.end)
        sex = {"male": "1", "female": "2"}.get(str(patient.get("gender", "")), "3")
        referred_by, referred_to = self.r.referred_by, self.r.referred_to  # codes.REFERRAL_FIELDS
        nights = self._nights() + 1 if self.cls == "IMP" else 0
        return {
            "MA_LK": self.ma_lk,
            "STT": "1",
            "MA_BN": mrn[0]["value"] if mrn else str(patient.get("id", "")),
            "HO_TEN": name_text(patient) if patient else "",
            "SO_CCCD": cccd[0]["value"] if cccd else "",
            "NGAY_SINH": birth12(patient.get("birthDate")),
            "GIOI_TINH": sex,
            "MA_QUOCTICH": MA_QUOCTICH_VIETNAM,
            "DIA_CHI": address,
            "MATINH_CU_TRU": province,
            "MAXA_CU_TRU": ward,
            "DIEN_THOAI": str(phone),
            "MA_THE_BHYT": ";".join(str(c["value"]) for c in self.cards),
            "MA_DKBD": ";".join(registered) if all(registered) else "",
            "GT_THE_TU": ";".join(d8((c.get("period") or {}).get("start")) for c in self.cards),
            "GT_THE_DEN": ";".join(d8((c.get("period") or {}).get("end")) for c in self.cards),
            "LY_DO_VV": self._reason() or (self.diagnoses[0][1] if self.diagnoses else ""),
            "CHAN_DOAN_VAO": self._reason() or (self.diagnoses[0][1] if self.diagnoses else ""),
            "CHAN_DOAN_RV": "; ".join(text for _, text in self.diagnoses),
            "MA_BENH_CHINH": self.diagnoses[0][0] if self.diagnoses else "",
            "MA_BENH_KT": ";".join(code for code, _ in self.diagnoses[1:]),
            "MA_DOITUONG_KCB": self.doituong,
            "MA_NOI_DI": referred_by.facility if referred_by else "",
            "MA_NOI_DEN": referred_to.facility if referred_to else "",
            "NGAY_VAO": dt12(self.start),
            "NGAY_VAO_NOI_TRU": dt12(self.start) if self.cls == "IMP" else "",
            "NGAY_RA": dt12(self.end),
            "GIAY_CHUYEN_TUYEN": referred_by.id[:50] if referred_by else "",
            "SO_NGAY_DTRI": str(nights),
            "KET_QUA_DTRI": self._result_code(),
            "MA_LOAI_RV": "1",
            "NGAY_TTOAN": paid,
            "T_THUOC": number(total(drugs, "THANH_TIEN_BV")),
            "T_VTYT": number(total(supplies, "THANH_TIEN_BV")),
            "T_TONGCHI_BV": number(total(both, "THANH_TIEN_BV")),
            "T_TONGCHI_BH": number(total(both, "THANH_TIEN_BH")),
            "T_BNTT": number(total(both, "T_BNTT")),
            "T_BNCCT": number(total(both, "T_BNCCT")),
            "T_BHTT": number(total(both, "T_BHTT")),
            "T_NGUONKHAC": number(total(both, "T_NGUONKHAC")),
            "NAM_QT": paid[:4],
            "THANG_QT": str(int(paid[4:6])) if paid else "",
            "MA_LOAI_KCB": self.loai_kcb(),
            "MA_KHOA": self.department,
            "MA_CSKCB": self.r.facility.code,
            "CAN_NANG": self._weight(),
            "MA_HSBA": self.ma_lk,
        }

    def _treatment(self, drugs: list[Row]) -> str:
        names = [r["TEN_THUOC"] for r in drugs if r.get("TEN_THUOC")]
        return ("Điều trị nội khoa: " + ", ".join(names)) if names else "Theo dõi, tư vấn"

    def discharge(self, drugs: list[Row]) -> Row:
        """XML7 (inpatient stays): the discharge paper."""
        return {
            "MA_LK": self.ma_lk,
            "SO_LUU_TRU": self.ma_lk,
            "MA_YTE": self.summary_row["MA_BN"],
            "MA_KHOA_RV": self.department,
            "NGAY_VAO": dt12(self.start),
            "NGAY_RA": dt12(self.end),
            "CHAN_DOAN_RV": self.summary_row["CHAN_DOAN_RV"][:1500],
            "PP_DIEUTRI": self._treatment(drugs)[:1500],
            "MA_BS": self.doctor[0],
            "TEN_BS": self.doctor[1],
            "NGAY_CT": dt12(self.end)[:8],
        }

    def record_summary(self, drugs: list[Row], results: list[Row]) -> Row:
        """XML8: what the citizen's health book shows of the visit."""
        found = "; ".join(
            f"{r['TEN_CHI_SO']}: {r['GIA_TRI']} {r['DON_VI_DO']}".strip() for r in results
        )
        return {
            "MA_LK": self.ma_lk,
            "MA_LOAI_KCB": self.summary_row["MA_LOAI_KCB"],
            "DON_VI": self.r.facility.name,
            "NGAY_VAO": dt12(self.start),
            "NGAY_RA": dt12(self.end),
            "CHAN_DOAN_VAO": self.summary_row["CHAN_DOAN_VAO"],
            "CHAN_DOAN_RV": self.summary_row["CHAN_DOAN_RV"],
            "QT_BENHLY": self.summary_row["LY_DO_VV"],
            "TOMTAT_KQ": found,
            "PP_DIEUTRI": self._treatment(drugs),
            "KET_QUA_DTRI": self.summary_row["KET_QUA_DTRI"],
            "NGAY_CT": dt12(self.end)[:8],
        }

    def checkin(self, services: list[Row]) -> list[Row] | None:
        """XML0, due for insured visits except emergencies (QĐ 4750 art. 2)."""
        if not self.insured or self.doituong == DOITUONG_EMERGENCY:
            return None
        first = services[0] if services else {}
        s = self.summary_row
        row = {k: s.get(k, "") for k in ("MA_LK", "MA_BN", "HO_TEN", "SO_CCCD", "NGAY_SINH")}
        row.update(
            {
                "STT": "1",
                "GIOI_TINH": s["GIOI_TINH"],
                "MA_THE_BHYT": s["MA_THE_BHYT"].split(";")[0],
                "MA_DKBD": s["MA_DKBD"].split(";")[0],
                "GT_THE_TU": s["GT_THE_TU"].split(";")[0],
                "GT_THE_DEN": s["GT_THE_DEN"].split(";")[0],
                "MA_DOITUONG_KCB": self.doituong,
                "NGAY_VAO": s["NGAY_VAO"],
                "NGAY_VAO_NOI_TRU": s["NGAY_VAO_NOI_TRU"],
                "MA_LOAI_KCB": s["MA_LOAI_KCB"],
                "MA_CSKCB": s["MA_CSKCB"],
                "MA_DICH_VU": first.get("MA_DICH_VU", ""),
                "TEN_DICH_VU": first.get("TEN_DICH_VU", ""),
                "NGAY_YL": first.get("NGAY_YL", s["NGAY_VAO"]),
            }
        )
        return [row]

    summary_row: Row

    def build(self) -> Claim:
        drugs = self.drugs()
        services = self.services()
        self.settle([*drugs, *services])
        results = self.results()
        self.summary_row = self.summary(drugs, services)
        tables: dict[str, list[Row]] = {"XML1": [self.summary_row]}
        if drugs:
            tables["XML2"] = drugs
        tables["XML3"] = services
        if results:
            tables["XML4"] = results
        progress = self.progress()
        if progress:
            tables["XML5"] = progress
        if self.cls == "IMP":
            tables["XML7"] = [self.discharge(drugs)]
        tables["XML8"] = [self.record_summary(drugs, results)]
        claim = Claim(self.ma_lk, str(self.r.patient.get("id", "")), self.insured)
        claim.tables = {k: [_complete(k, row) for row in rows] for k, rows in tables.items()}
        checkin = self.checkin(services)
        claim.checkin = [_complete("XML0", r) for r in checkin] if checkin else None
        claim.problems = self.problems
        claim.split = self.split
        return claim


def _complete(loai: str, row: Row) -> Row:
    """Every field of the table, in document order ("" for those not filled)."""
    return {name: row.get(name, "") for name in TABLES[loai].names}


def build_claim(record: EncounterRecord, catalogue: Catalogue) -> Claim:
    """The appraisal tables of one encounter (see the module docstring)."""
    return _Builder(record, catalogue).build()
