"""Clinician workspace services: the bill of a visit, the insurance share, VietQR payment.

Pages (``web/pages/clinic``) and operations call these with the caller's guarded repository.

- :mod:`~sokhoe.clinic.benefit`: the insurance rules in one versioned table, :func:`share`;
- :mod:`~sokhoe.clinic.billing`: the bill of one visit as a FHIR Invoice, and its payment;
- :mod:`~sokhoe.clinic.vietqr`: the national interbank payment QR (NAPAS VietQR).

The billing names are loaded on first use: billing reads the claims builder, which itself
asks :mod:`~sokhoe.clinic.benefit` for the share, so importing billing here eagerly would
make ``import sokhoe.interop.claims.facts`` circular.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sokhoe.clinic.benefit import Route, Split, share
from sokhoe.clinic.vietqr import read_payload, vietqr_payload, vietqr_svg

if TYPE_CHECKING:
    from sokhoe.clinic.billing import (
        Bill,
        BillLine,
        Payment,
        amount_due,
        compute_bill,
        issue_bill,
        payment_payload,
        record_payment,
    )

_BILLING = frozenset(
    {
        "Bill",
        "BillLine",
        "Payment",
        "amount_due",
        "compute_bill",
        "issue_bill",
        "payment_payload",
        "record_payment",
    }
)

__all__ = [
    "Bill",
    "BillLine",
    "Payment",
    "Route",
    "Split",
    "amount_due",
    "compute_bill",
    "issue_bill",
    "payment_payload",
    "read_payload",
    "record_payment",
    "share",
    "vietqr_payload",
    "vietqr_svg",
]


def __getattr__(name: str) -> Any:
    if name in _BILLING:
        return getattr(import_module("sokhoe.clinic.billing"), name)
    raise AttributeError(f"module 'sokhoe.clinic' has no attribute {name!r}")
