"""The bill of one visit (*bảng kê chi phí, viện phí*): lines, insurance share, payment.

Why from the claim: the bill is computed by the claims builder
(:func:`~sokhoe.interop.claims.build.build_claim`) and read from its XML2/XML3 rows and XML1
totals, so what the cashier asks the patient to pay and what the facility claims from the
insurance fund come from the same lines, prices and share and cannot disagree.

In FHIR the bill is an ``Invoice`` (R4) for the patient, ``issued`` by the facility's
Organization: ``totalGross`` the visit's cost (``T_TONGCHI_BV``), ``totalNet`` what the
patient owes (``T_BNCCT`` + ``T_BNTT``), each ``lineItem`` with ``priceComponent``s (the
amount as ``base`` with the quantity as ``factor``, the fund's part as a ``deduction``, the
patient's parts as ``informational``). R4 Invoice has no encounter element (a ChargeItem's
``context`` is the R4 place, but the lines live in the Invoice), so the Encounter is named
by the :data:`INVOICE_ENCOUNTER` extension. Paying sets ``status`` to ``balanced`` ("the
invoice has been balanced / completely paid") and records a ``PaymentReconciliation`` whose
``detail.request`` is the Invoice; R4 has no payment-method element, so the method goes in
the R5 element's cross-version extension.
See: https://hl7.org/fhir/R4/invoice.html and https://hl7.org/fhir/R4/paymentreconciliation.html

Money: the XML keeps hundredths of a đồng; cash and transfers are whole đồng (ISO 4217 VND
has no minor unit), so the patient pays :func:`amount_due`, ``totalNet`` rounded half-up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.vietqr import BankAccount, vietqr_payload
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound, PreconditionFailed
from sokhoe.interop.claims.benefit import Route, Split
from sokhoe.interop.claims.build import build_claim
from sokhoe.interop.claims.catalogue import Catalogue, demo_catalogue
from sokhoe.interop.claims.sources import VIETNAM_TZ, EncounterRecord, FacilityRef, gather
from sokhoe.interop.claims.validate import Row
from sokhoe.messages import Message, Param, joined
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store.ports import StoredResource

INVOICE_ENCOUNTER = "https://fhir.sokhoe.vn/StructureDefinition/invoice-encounter"
BILL_NUMBER = "https://fhir.sokhoe.vn/sid/bill"
PAYER = "https://fhir.sokhoe.vn/CodeSystem/bill-payer"
COMPONENT = "https://fhir.sokhoe.vn/CodeSystem/bill-component"
DRUG_CODE = "https://fhir.sokhoe.vn/CodeSystem/bhyt-drug"
"""``MA_THUOC`` (XML2): the Ministry's active-ingredient code."""
SERVICE_CODE = "https://fhir.sokhoe.vn/CodeSystem/bhyt-service"
"""``MA_DICH_VU`` / ``MA_VAT_TU`` (XML3)."""
PAYMENT_METHOD = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-PaymentReconciliation.method"
)
METHOD_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/payment-method"
METHODS = {"cash": "Tiền mặt", "vietqr": "Chuyển khoản VietQR", "card": "Thẻ ngân hàng"}
BILLING_ROLES = frozenset(
    {"facility-admin", "doctor", "nurse", "receptionist", "commune-health-worker", "system"}
)
_NAMESPACE = uuid.UUID("2b0f5c7e-8d1a-4c36-9a57-51f0d7c3e9a4")
_UNIT = Decimal(1)


@dataclass(frozen=True)
class BillLine:
    """One drug (XML2) or service/supply (XML3) row of the claim, as the bill shows it."""

    table: Literal["XML2", "XML3"]
    code: str
    name: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    """``THANH_TIEN_BV``."""
    insurance: Decimal
    """``T_BHTT``: the fund pays."""
    co_payment: Decimal
    """``T_BNCCT``: the patient's share of the insured amount."""
    self_pay: Decimal
    """``T_BNTT``: what insurance does not cover (all of it for an uninsured visit)."""

    @property
    def patient(self) -> Decimal:
        return self.co_payment + self.self_pay


@dataclass(frozen=True)
class Bill:
    """The bill of one visit (see the module docstring)."""

    encounter_id: str
    patient_id: str
    facility: FacilityRef
    number: str
    payer: Literal["insurance", "self-pay"]
    card: str
    """``MA_THE_BHYT`` ("" when fee-paying)."""
    split: Split | None
    lines: tuple[BillLine, ...]
    total: Decimal
    """``T_TONGCHI_BV``."""
    insurance: Decimal
    """``T_BHTT``."""
    co_payment: Decimal
    """``T_BNCCT``."""
    self_pay: Decimal
    """``T_BNTT``."""
    referred_from: str = ""
    """``MA_NOI_DI``: the facility that referred the patient here ("" when not referred)."""

    @property
    def patient_total(self) -> Decimal:
        return self.co_payment + self.self_pay

    @property
    def due(self) -> int:
        """What the patient pays, in whole đồng."""
        return int(self.patient_total.quantize(_UNIT, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Payment:
    invoice: StoredResource
    reconciliation: StoredResource


def bill_number(facility: str, encounter_id: str) -> str:
    """Short and stable (``79001-3F2A9C1B0D``): it fits the 25 characters of a VietQR note."""
    digest = uuid.uuid5(_NAMESPACE, f"{facility}/{encounter_id}").hex[:10].upper()
    return f"{facility}-{digest}"


def invoice_id(encounter_id: str) -> str:
    """One Invoice per visit: issuing again revises it instead of making a second."""
    return str(uuid.uuid5(_NAMESPACE, f"Encounter/{encounter_id}"))


def _dec(row: Row, name: str) -> Decimal:
    return Decimal(row.get(name) or "0")


def _line(table: Literal["XML2", "XML3"], row: Row) -> BillLine:
    drug = table == "XML2"
    return BillLine(
        table,
        row["MA_THUOC"] if drug else (row["MA_DICH_VU"] or row["MA_VAT_TU"]),
        row["TEN_THUOC"] if drug else (row["TEN_DICH_VU"] or row["TEN_VAT_TU"]),
        row["DON_VI_TINH"],
        _dec(row, "SO_LUONG"),
        _dec(row, "DON_GIA" if drug else "DON_GIA_BV"),
        _dec(row, "THANH_TIEN_BV"),
        _dec(row, "T_BHTT"),
        _dec(row, "T_BNCCT"),
        _dec(row, "T_BNTT"),
    )


def compute_bill(record: EncounterRecord, catalogue: Catalogue) -> Bill:
    """The bill of one visit, read from its claim (pure). InvalidRequest when an item has no
    price: a visit that cannot be claimed cannot be billed either."""
    claim = build_claim(record, catalogue)
    if claim.problems:
        rows = [
            Message("%(table)s row %(row)s: %(why)s", table=p.table, row=str(p.stt), why=p.message)
            for p in claim.problems
        ]
        raise InvalidRequest(
            Message(
                "Encounter/%(id)s cannot be billed: %(problems)s",
                id=record.id,
                problems=joined(rows),
            )
        )
    summary = claim.tables["XML1"][0]
    lines = [_line("XML2", r) for r in claim.tables.get("XML2", [])]
    lines += [_line("XML3", r) for r in claim.tables.get("XML3", [])]
    return Bill(
        record.id,
        claim.patient_id,
        record.facility,
        bill_number(record.facility.code, record.id),
        "insurance" if claim.insured else "self-pay",
        summary["MA_THE_BHYT"],
        claim.split,
        tuple(lines),
        _dec(summary, "T_TONGCHI_BV"),
        _dec(summary, "T_BHTT"),
        _dec(summary, "T_BNCCT"),
        _dec(summary, "T_BNTT"),
        summary["MA_NOI_DI"],
    )


def _num(value: Decimal) -> int | float:
    """A JSON number (stored resources are JSON): exact for đồng with hundredths."""
    return int(value) if value == value.to_integral() else float(value)


def _money(value: Decimal | int) -> dict[str, Any]:
    return {"value": _num(Decimal(value)), "currency": "VND"}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _component(kind: str, code: str, amount: Decimal, factor: Decimal | None = None) -> Any:
    component: dict[str, Any] = {"type": kind, "code": _concept(COMPONENT, code)}
    if factor is not None:
        component["factor"] = _num(factor)
    return component | {"amount": _money(amount)}


def _shares(insurance: Decimal, co_payment: Decimal, self_pay: Decimal) -> list[Any]:
    return [
        _component("deduction", "insurance", insurance),
        _component("informational", "co-payment", co_payment),
        _component("informational", "self-pay", self_pay),
    ]


def invoice_resource(bill: Bill, issued: str) -> dict[str, Any]:
    """The bill as an R4 Invoice (module docstring), ``issued`` at the dateTime given."""
    insured = bill.payer == "insurance"
    encounter = {"reference": f"Encounter/{bill.encounter_id}"}
    return {
        "resourceType": "Invoice",
        "id": invoice_id(bill.encounter_id),
        "extension": [{"url": INVOICE_ENCOUNTER, "valueReference": encounter}],
        "identifier": [{"system": BILL_NUMBER, "value": bill.number}],
        "status": "issued",
        "type": _concept(PAYER, bill.payer, "Bảo hiểm y tế" if insured else "Viện phí (tự trả)"),
        "subject": {"reference": f"Patient/{bill.patient_id}"},
        "recipient": {"reference": f"Patient/{bill.patient_id}"},
        "date": issued,
        "issuer": {"reference": f"Organization/{bill.facility.id}", "display": bill.facility.name},
        "lineItem": [
            {
                "sequence": seq,
                "chargeItemCodeableConcept": _concept(
                    DRUG_CODE if line.table == "XML2" else SERVICE_CODE, line.code, line.name
                )
                | {"text": f"{line.name} ({line.unit})"},
                "priceComponent": [
                    _component("base", "amount", line.amount, line.quantity),
                    _component("informational", "unit-price", line.unit_price),
                    *_shares(line.insurance, line.co_payment, line.self_pay),
                ],
            }
            for seq, line in enumerate(bill.lines, start=1)
        ],
        "totalPriceComponent": _shares(bill.insurance, bill.co_payment, bill.self_pay),
        "totalGross": _money(bill.total),
        "totalNet": _money(bill.patient_total),
        "paymentTerms": _terms(bill),
    }


def _vnd(value: Decimal | int) -> str:
    """``81660`` → ``81.660``, as amounts are printed in Vietnam."""
    whole = f"{int(value):,}".replace(",", ".")
    cents = Decimal(value) - int(value)
    return whole + (f",{int(cents * 100):02d}" if cents else "")


def _terms(bill: Bill) -> str:
    """What the printed bill says about who pays (always Vietnamese)."""
    if bill.split is None:
        return f"Người bệnh tự chi trả {_vnd(bill.due)} đồng."
    why = f"mức hưởng {format(bill.split.percent, 'f').replace('.', ',')}%"
    if bill.split.route == Route.REFERRED:
        why += ", có giấy chuyển tuyến" + (
            f" từ cơ sở {bill.referred_from}" if bill.referred_from else ""
        )
    if bill.split.low_cost:
        why += ", chi phí lần khám thấp hơn 15% mức lương cơ sở"
    return (
        f"Quỹ BHYT chi trả {_vnd(bill.insurance)} đồng ({why}); "
        f"người bệnh thanh toán {_vnd(bill.due)} đồng."
    )


def _facility_of(repo: GuardedRepository, encounter: dict[str, Any]) -> FacilityRef:
    ref = str((encounter.get("serviceProvider") or {}).get("reference", ""))
    if not ref.startswith("Organization/"):
        raise InvalidRequest(
            Message("Encounter/%(id)s names no facility (serviceProvider)", id=str(encounter["id"]))
        )
    org = repo.read("Organization", ref.split("/", 1)[1]).content or {}
    codes = [i["value"] for i in org.get("identifier", []) if i.get("system") == FACILITY]
    if not codes:
        raise InvalidRequest(
            Message("%(ref)s has no insurance facility code (%(system)s)", ref=ref, system=FACILITY)
        )
    return FacilityRef(str(org["id"]), str(codes[0]), str(org.get("name", codes[0])))


def issue_bill(
    repo: GuardedRepository, encounter_id: str, catalogue: Catalogue | None = None
) -> tuple[Bill, StoredResource]:
    """Compute the visit's bill and write it as its Invoice (revising an unpaid one).

    Only the treating facility bills its visits; a paid bill is never changed.
    """
    repo.authorise_operation("bill", "Invoice", ["create", "update"], roles=BILLING_ROLES)
    encounter = repo.read("Encounter", encounter_id).content or {}
    facility = _facility_of(repo, encounter)
    own = repo.principal.facility
    if own is not None and own != facility.code:
        raise Forbidden(
            Message(
                "A caller of facility %(own)s cannot bill a visit at %(there)s",
                own=own,
                there=facility.code,
            )
        )
    bill = compute_bill(gather(repo, facility, encounter), catalogue or demo_catalogue())
    rid = invoice_id(encounter_id)
    try:
        existing: StoredResource | None = repo.read("Invoice", rid)
    except NotFound:
        existing = None
    version = None
    if existing is not None and existing.content is not None:
        old = existing.content
        if old.get("status") == "balanced":
            raise Conflict(
                Message(
                    "Invoice/%(id)s of Encounter/%(visit)s is paid; it cannot change",
                    id=rid,
                    visit=encounter_id,
                )
            )
        unchanged = invoice_resource(bill, str(old.get("date", "")))
        if old.get("status") == "issued" and unchanged == {k: old[k] for k in old if k != "meta"}:
            return bill, existing  # the same bill: no new version
        version = f'W/"{existing.version_id}"'
    issued = repo.clock().astimezone(VIETNAM_TZ).isoformat(timespec="seconds")
    invoice = invoice_resource(bill, issued)
    return bill, repo.update(invoice, "Invoice", rid, if_match=version).resource


def amount_due(invoice: dict[str, Any]) -> int:
    """What the patient pays on an Invoice, in whole đồng (``totalNet`` rounded half-up)."""
    net = Decimal(str((invoice.get("totalNet") or {}).get("value", 0)))
    return int(net.quantize(_UNIT, rounding=ROUND_HALF_UP))


def _bill_number(invoice: dict[str, Any]) -> str:
    return next(
        (str(i["value"]) for i in invoice.get("identifier", []) if i.get("system") == BILL_NUMBER),
        str(invoice.get("id", "")),
    )


def payment_payload(invoice: dict[str, Any], account: BankAccount) -> str:
    """The VietQR text that pays this Invoice into the facility's ``account``."""
    due = amount_due(invoice)
    if invoice.get("status") != "issued" or due <= 0:
        raise Conflict(
            Message("Invoice/%(id)s has nothing to pay by transfer", id=str(invoice.get("id")))
        )
    return vietqr_payload(account.bin, account.account, due, f"VP {_bill_number(invoice)}")


def _payable(invoice_id: str, invoice: dict[str, Any], amount: int | Decimal) -> int:
    """The amount due, when ``amount`` pays exactly it and the Invoice is still unpaid."""
    status = invoice.get("status")
    if status == "balanced":
        raise Conflict(
            Message("Invoice/%(id)s is already paid; a second payment is refused", id=invoice_id)
        )
    if status != "issued":
        raise Conflict(
            Message(
                "Invoice/%(id)s is %(status)s, not issued: it cannot be paid",
                id=invoice_id,
                status=str(status),
            )
        )
    due, paid = amount_due(invoice), Decimal(str(amount))
    if paid != paid.to_integral():
        raise InvalidRequest(
            Message("Payments are in whole đồng, got %(amount)s", amount=str(amount)), "amount"
        )
    if paid != due:
        amounts: dict[str, Param] = {"id": invoice_id, "due": due, "paid": int(paid)}
        raise InvalidRequest(
            Message(
                "The amount due on Invoice/%(id)s is %(due)s đồng; %(paid)s đồng is more than "
                "that. Take exactly the amount due.",
                **amounts,
            )
            if paid > due
            else Message(
                "The amount due on Invoice/%(id)s is %(due)s đồng; %(paid)s đồng is less than "
                "that. Take exactly the amount due.",
                **amounts,
            ),
            "amount",
        )
    return due


def _reconciliation(invoice: dict[str, Any], due: int, method: str, now: str) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "type": _concept("http://terminology.hl7.org/CodeSystem/payment-type", "payment"),
        "request": {"reference": f"Invoice/{invoice['id']}"},
        "amount": _money(due),
    }
    if (invoice.get("issuer") or {}).get("reference"):
        detail["payee"] = {"reference": invoice["issuer"]["reference"]}  # the facility
    number = _bill_number(invoice)
    method_concept = _concept(METHOD_SYSTEM, method, METHODS[method])
    return {
        "resourceType": "PaymentReconciliation",
        "extension": [{"url": PAYMENT_METHOD, "valueCodeableConcept": method_concept}],
        "identifier": [{"system": BILL_NUMBER, "value": number}],
        "status": "active",
        "created": now,
        "outcome": "complete",
        "disposition": f"Thu viện phí hóa đơn {number}",
        "paymentDate": now[:10],
        "paymentAmount": _money(due),
        "detail": [detail],
    }


def record_payment(
    repo: GuardedRepository, invoice_id: str, amount: int | Decimal, method: str
) -> Payment:
    """Record that the patient paid the Invoice: exactly the amount due, once.

    Writes the Invoice as ``balanced`` and a PaymentReconciliation in one transaction; the
    Invoice is written only over the version read here, so two desks taking the same payment
    at once cannot both succeed.
    """
    if method not in METHODS:
        raise InvalidRequest(
            Message(
                "method must be one of %(methods)s, not %(method)s",
                methods=", ".join(METHODS),
                method=repr(method),
            )
        )
    stored = repo.read("Invoice", invoice_id)
    invoice = dict(stored.content or {})
    due = _payable(invoice_id, invoice, amount)
    now = repo.clock().astimezone(VIETNAM_TZ).isoformat(timespec="seconds")
    reconciliation = _reconciliation(invoice, due, method, now)
    invoice["status"] = "balanced"
    try:
        with repo.transaction() as tx:
            done = repo.update(
                invoice, "Invoice", invoice_id, if_match=f'W/"{stored.version_id}"', tx=tx
            )
            made = repo.create(reconciliation, "PaymentReconciliation", tx=tx)
    except PreconditionFailed as exc:
        raise Conflict(
            Message(
                "Invoice/%(id)s changed while it was being paid (paid at another desk?): reload it",
                id=invoice_id,
            )
        ) from exc
    return Payment(done.resource, made.resource)
