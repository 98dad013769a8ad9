"""What one encounter's record says, in the terms of a claim.

The facts a claim is built on: the valid insurance cards, who treated, the ranked diagnoses,
the address codes, the visit type, and the money split of a line between the insurance fund
and the patient. :mod:`~sokhoe.interop.claims.build` turns them into table rows.

The split is the insurance rules' (:func:`~sokhoe.interop.claims.benefit.share`), decided once for
the whole visit (the low-cost rule looks at the visit's total), so the bill at the cashier's desk
and the claim split every line alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sokhoe.interop.claims.benefit import Route, Split, share
from sokhoe.interop.claims.catalogue import Catalogue
from sokhoe.interop.claims.codes import (
    DEPARTMENT,
    DOITUONG_EMERGENCY,
    DOITUONG_INSURED,
    DOITUONG_REFERRED,
    DOITUONG_UNINSURED,
    ICD10_SYSTEM,
    KET_QUA,
    LOAI_KCB,
    LOAI_KCB_SHORT_STAY,
    LOINC,
)
from sokhoe.interop.claims.formats import (
    CENT,
    coding_of,
    identifiers,
    name_text,
    number,
    round_money,
)
from sokhoe.interop.claims.sources import EncounterRecord, local_datetime
from sokhoe.interop.claims.validate import Problem, Row
from sokhoe.messages import Message, Text
from sokhoe.mpi.identifiers import BHYT, PRACTITIONER
from sokhoe.registry.addresses import address_codes
from sokhoe.registry.places import find_ward, resolve_province

ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"


class VisitFacts:
    """The facts of one encounter (see the module docstring)."""

    def __init__(self, record: EncounterRecord, catalogue: Catalogue) -> None:
        self.r = record
        self.cat = catalogue
        self.enc = record.encounter
        self.cls = str((self.enc.get("class") or {}).get("code", "AMB"))
        period = self.enc.get("period") or {}
        self.start: str | None = period.get("start")
        self.end: str | None = period.get("end") or self.start
        self.ma_lk = str(self.enc["id"])
        self.problems: list[Problem] = []
        self.department = DEPARTMENT.get(self.cls, DEPARTMENT["AMB"])
        self.cards = self._cards()
        self.insured = bool(self.cards)
        self.level = str(self.cards[0]["value"][2]) if self.cards else ""
        self.route = self._route()
        self.split: Split | None = None
        """Decided by :meth:`settle` once every line is priced."""
        if not self.insured:
            self.doituong = DOITUONG_UNINSURED
        elif self.cls == "EMER":
            self.doituong = DOITUONG_EMERGENCY
        elif self.route == Route.REFERRED:
            self.doituong = DOITUONG_REFERRED
        else:
            self.doituong = DOITUONG_INSURED
        self.doctor = self._doctor()
        self.diagnoses = self._diagnoses()

    # -- people and codes ----------------------------------------------------------------
    def _cards(self) -> list[dict[str, Any]]:
        """BHYT cards valid on the day of the visit."""
        day = local_datetime(self.start).date().isoformat() if self.start else ""
        valid = []
        for card in identifiers(self.r.patient, BHYT):
            period = card.get("period") or {}
            if period.get("start", "")[:10] <= day and day <= (period.get("end") or "9999")[:10]:
                valid.append(card)
        return valid

    def _doctor(self) -> tuple[str, str]:
        """(licence number ``MA_BAC_SI``, name) of the treating practitioner."""
        for participant in self.enc.get("participant", []):
            ref = (participant.get("individual") or {}).get("reference", "")
            practitioner = self.r.practitioners.get(ref.removeprefix("Practitioner/"))
            if practitioner:
                licence = identifiers(practitioner, PRACTITIONER)
                return (licence[0]["value"] if licence else "", name_text(practitioner))
        return ("", "")

    def _diagnoses(self) -> list[tuple[str, str]]:
        """(ICD-10 code, text) of each diagnosis, main (lowest rank) first."""
        ranked = sorted(self.enc.get("diagnosis", []), key=lambda d: d.get("rank", 99) if d else 99)
        out = []
        for dx in ranked:
            cid = ((dx or {}).get("condition") or {}).get("reference", "")
            condition = self.r.conditions.get(cid.removeprefix("Condition/"))
            if condition is None:
                continue
            coding = coding_of(condition.get("code"), ICD10_SYSTEM)
            text = (condition.get("code") or {}).get("text") or coding.get("display", "")
            if coding.get("code"):
                out.append((str(coding["code"]), str(text)))
        return out

    def _route(self) -> Route:
        """Emergency by class; referred when the visit is based on a referral to this
        facility (``EncounterRecord.referred_by``) or admitted by transfer from another
        facility; otherwise right-route: the record does not say when a visit was
        self-referred (the registered facility's level is not modelled), so no wrong-route
        share is derived here."""
        if self.cls == "EMER":
            return Route.EMERGENCY
        if self.r.referred_by is not None:
            return Route.REFERRED
        source = (self.enc.get("hospitalization") or {}).get("admitSource")
        if coding_of(source, ADMIT_SOURCE).get("code") == "hosp-trans":
            return Route.REFERRED
        return Route.RIGHT

    def _reason(self) -> str:
        for reason in self.enc.get("reasonCode", []):
            text = reason.get("text") or coding_of(reason, ICD10_SYSTEM).get("display")
            if text:
                return str(text)
        return ""

    def _address(self) -> tuple[str, str, str]:
        """(DIA_CHI, MATINH_CU_TRU, MAXA_CU_TRU) from the home address: its text as written
        (else its parts), and the codes it carries (a parsed card address,
        :mod:`sokhoe.registry.addresses`, whose unresolved units stay empty) or else those its
        province and ward names resolve to."""
        addresses = self.r.patient.get("address", [])
        home = next((a for a in addresses if a.get("use") in (None, "home")), None)
        if home is None:
            return ("", "", "")
        parts = [*home.get("line", []), home.get("city"), home.get("state")]
        text = str(home.get("text") or ", ".join(str(p) for p in parts if p))
        codes = address_codes(home)
        if codes is not None:
            return (text, *codes)
        province = resolve_province(str(home.get("state", "")))
        ward = find_ward(province, str(home.get("city", ""))) if province else None
        return (text, province.code if province else "", ward.code if ward else "")

    # -- money -----------------------------------------------------------------------------
    def _money(self, qty: Decimal, price: Decimal) -> Row:
        """A line's amount and its insured part; who pays it is :meth:`settle`'s."""
        bv = round_money(qty * price)
        rate = 100 if self.insured else 0
        bh = round_money(bv * rate / 100)
        return {
            "TYLE_TT_BH": str(rate),
            "THANH_TIEN_BV": number(bv),
            "THANH_TIEN_BH": number(bh),
            "T_NGUONKHAC_NSNN": "0",
            "T_NGUONKHAC_VTNN": "0",
            "T_NGUONKHAC_VTTN": "0",
            "T_NGUONKHAC_CL": "0",
            "T_NGUONKHAC": "0",
        }

    def settle(self, rows: list[Row]) -> None:
        """Split every priced line between the fund and the patient by the one share of the
        visit (:func:`~sokhoe.interop.claims.benefit.share` on the visit's insured total)."""
        priced = [r for r in rows if r.get("THANH_TIEN_BV")]
        insured_total = sum((Decimal(r["THANH_TIEN_BH"]) for r in priced), Decimal(0))
        if self.insured and self.start:
            try:
                self.split = share(
                    self.level,
                    self.route,
                    insured_total,
                    local_datetime(self.start).date(),
                    inpatient=self.cls == "IMP",
                )
            except ValueError as exc:
                self.problems.append(Problem("XML1", self.ma_lk, None, "MUC_HUONG", str(exc)))
        for row in priced:
            bv, bh = Decimal(row["THANH_TIEN_BV"]), Decimal(row["THANH_TIEN_BH"])
            bhtt = self.split.insurance(bh) if self.split else Decimal(0)
            row["MUC_HUONG"] = number(self.split.percent) if self.split else "0"
            row["T_BNTT"] = number(bv - bh)
            row["T_BNCCT"] = number(bh - bhtt)
            row["T_BHTT"] = number(bhtt)

    def _missing_price(self, table: str, stt: int, what: Text) -> None:
        said = Message("no price in the price list for %(what)s", what=what)
        self.problems.append(Problem(table, self.ma_lk, stt, "DON_GIA", said))

    # -- tables ----------------------------------------------------------------------------
    def _requester(self, req: dict[str, Any]) -> str:
        ref = (req.get("requester") or {}).get("reference", "")
        practitioner = self.r.practitioners.get(ref.removeprefix("Practitioner/"))
        licence = identifiers(practitioner, PRACTITIONER) if practitioner else []
        return str(licence[0]["value"]) if licence else self.doctor[0]

    def _labs(self) -> list[dict[str, Any]]:
        return [
            o
            for o in self.r.observations
            if any(
                c.get("code") == "laboratory"
                for cat in o.get("category", [])
                for c in cat.get("coding", [])
            )
        ]

    def _nights(self) -> int:
        if not self.start or not self.end:
            return 1
        days = (local_datetime(self.end).date() - local_datetime(self.start).date()).days
        return max(1, days)

    def _weight(self) -> str:
        for obs in self.r.observations:
            if coding_of(obs.get("code"), LOINC).get("code") == "29463-7":
                value = (obs.get("valueQuantity") or {}).get("value")
                if value is not None:
                    return number(Decimal(str(value)).quantize(CENT))
        return ""

    def _result_code(self) -> str:
        ranked = sorted(self.enc.get("diagnosis", []), key=lambda d: d.get("rank", 99))
        main: dict[str, Any] = ranked[0] if ranked else {}
        cid = (main.get("condition") or {}).get("reference", "").removeprefix("Condition/")
        status = coding_of(
            (self.r.conditions.get(cid) or {}).get("clinicalStatus"),
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
        ).get("code", "")
        return KET_QUA.get(str(status), "2")

    def loai_kcb(self) -> str:
        if self.cls == "IMP" and self.start and self.end:
            hours = (local_datetime(self.end) - local_datetime(self.start)).total_seconds() / 3600
            if hours < 4:
                return LOAI_KCB_SHORT_STAY
        return LOAI_KCB.get(self.cls, "01")
