"""A visit's Invoice as the cashier's page shows it, read back from the stored resource.

The page shows what was issued — the Invoice the record holds — not a bill recomputed now:
the patient pays what the paper and the QR say (``clinic/billing.py`` writes it).
See: https://hl7.org/fhir/R4/invoice.html
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sokhoe.clinic.billing import BILL_NUMBER, COMPONENT, amount_due
from sokhoe.fhir.references import codings


@dataclass(frozen=True)
class Row:
    name: str
    quantity: Decimal
    amount: Decimal
    insurance: Decimal
    patient: Decimal


@dataclass(frozen=True)
class InvoiceView:
    id: str
    number: str
    status: str
    insured: bool
    terms: str
    rows: list[Row]
    total: Decimal
    insurance: Decimal
    due: int


def _amounts(components: list[dict[str, Any]]) -> dict[str, tuple[Decimal, Decimal]]:
    out = {}
    for c in components:
        code = next(
            (
                x.get("code")
                for x in c.get("code", {}).get("coding", [])
                if x["system"] == COMPONENT
            ),
            None,
        )
        amount = Decimal(str((c.get("amount") or {}).get("value", 0)))
        out[str(code)] = (amount, Decimal(str(c.get("factor", 1))))
    return out


def view(invoice: dict[str, Any]) -> InvoiceView:
    rows = []
    for item in invoice.get("lineItem", []):
        parts = _amounts(item.get("priceComponent", []))
        zero = (Decimal(0), Decimal(1))
        rows.append(
            Row(
                name=str((item.get("chargeItemCodeableConcept") or {}).get("text", "")),
                quantity=parts.get("amount", zero)[1],
                amount=parts.get("amount", zero)[0],
                insurance=parts.get("insurance", zero)[0],
                patient=parts.get("co-payment", zero)[0] + parts.get("self-pay", zero)[0],
            )
        )
    totals = _amounts(invoice.get("totalPriceComponent", []))
    payer = next((c.get("code") for c in codings(invoice.get("type"))), None)
    return InvoiceView(
        id=str(invoice["id"]),
        number=next(
            (str(i["value"]) for i in invoice.get("identifier", []) if i["system"] == BILL_NUMBER),
            str(invoice["id"]),
        ),
        status=str(invoice.get("status", "")),
        insured=payer == "insurance",
        terms=str(invoice.get("paymentTerms", "")),
        rows=rows,
        total=Decimal(str((invoice.get("totalGross") or {}).get("value", 0))),
        insurance=totals.get("insurance", (Decimal(0), Decimal(1)))[0],
        due=amount_due(invoice),
    )


__all__ = ["InvoiceView", "Row", "view"]
