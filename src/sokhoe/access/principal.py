"""Who is asking: a connected system, a staff member or a citizen, as a token describes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["client", "staff", "citizen"]

STAFF_ROLES = frozenset(
    {
        "system-admin",
        "facility-admin",
        "doctor",
        "nurse",
        "receptionist",
        "pharmacist",
        "commune-health-worker",
        "analyst",
        "insurance-appraiser",
        "registry-admin",
    }
)
"""Staff roles (issue: accounts and sign-in)."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request, after its token was verified."""

    kind: Kind
    subject: str
    """client_id, username or phone number."""
    display: str
    role: str | None = None
    """A staff role, ``system`` for a connected system, None for a citizen."""
    facility: str | None = None
    """The insurance facility code the caller acts for, if any."""
    commune: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    """SMART on FHIR v2 scopes granted (``system/Patient.rs``…)."""
    patient_ids: tuple[str, ...] = ()
    """A citizen's own Patient and those of the children they are guardian of."""
    session: str | None = None
    """The token id (``jti``), to revoke it."""
    facility_name: str | None = None
    """The name of ``facility`` as the registry had it when the session began: the header of
    every clinic page shows it, and carrying it in the session spares each page a registry
    search (a renamed facility shows its new name from the next sign-in)."""
    several_facilities: bool = False
    """Whether the staff member works at more than one facility (the pages offer to change),
    decided at sign-in like :attr:`facility_name`."""
    app: str | None = None
    """The client_id of the app acting for this person (SMART App Launch), None when the
    person acts themselves: the audit names both (``access/audit.py``)."""
    app_name: str | None = None
    grant: str | None = None
    """The app grant the token came from (``access/app_grants.py``): disconnecting the app
    revokes it, and with it every token it issued."""


def system_principal(
    subject: str, display: str, scopes: frozenset[str], facility: str | None = None
) -> Principal:
    """A connected system that signs in without a token: an adapter of the platform (an HL7
    listener, a PACS watcher, an import or export job) acting for ``facility`` (or for the
    whole platform when None), so its reads and writes go through the same policy and audit
    as an API client's."""
    return Principal(
        kind="client",
        subject=subject,
        display=display,
        role="system",
        facility=facility,
        scopes=scopes,
    )
