"""Where a facility is paid: its bank account, kept on its Organization in the registry.

A VietQR code names the receiving bank (its NAPAS BIN) and account. Each facility of a shared
deployment has its own; FHIR R4's Organization has no element for it, so it is an extension
whose value is an Identifier (``system`` the BIN as a URN, ``value`` the account number). The
registry owns Organizations, so only its administrators (or the platform's setup) change it.
See: https://hl7.org/fhir/R4/organization.html
"""

from __future__ import annotations

from typing import Any, Final

from sokhoe.clinic.vietqr import BankAccount

BANK_ACCOUNT: Final = "https://fhir.sokhoe.vn/StructureDefinition/organization-bank-account"
_BIN: Final = "urn:napas:bin:"


def bank_account(organization: dict[str, Any] | None) -> BankAccount | None:
    """The facility's account, or None when it has none on file (the bill then takes cash)."""
    for ext in (organization or {}).get("extension", []):
        ident = ext.get("valueIdentifier") or {}
        system = str(ident.get("system", ""))
        if ext.get("url") == BANK_ACCOUNT and system.startswith(_BIN) and ident.get("value"):
            return BankAccount(system.removeprefix(_BIN), str(ident["value"]))
    return None


def with_bank_account(organization: dict[str, Any], account: BankAccount) -> dict[str, Any]:
    """``organization`` with ``account`` as its (only) bank account."""
    others = [e for e in organization.get("extension", []) if e.get("url") != BANK_ACCOUNT]
    ident = {"system": f"{_BIN}{account.bin}", "value": account.account}
    return {**organization, "extension": [*others, {"url": BANK_ACCOUNT, "valueIdentifier": ident}]}


__all__ = ["BANK_ACCOUNT", "bank_account", "with_bank_account"]
