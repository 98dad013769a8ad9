"""What one caller may see and on whose behalf they act: their grantee names in the care
index and their :class:`~sokhoe.store.ports.Confinement`.

The rules of who sees a patient are data (rows of the care-relationship index, kept by
``sokhoe.access.care``); this module only says which rows speak for a caller:

- a facility's staff and systems act as ``facility:<code>`` and always see what their facility
  wrote (``owner``);
- a clinician is also ``user:staff:<username>``: the rows a broken glass leaves;
- a commune health worker is ``commune:<ward code>`` (residents of the commune), and so are
  the doctors and nurses of the ward's commune station (their session carries the ward the
  registry says the station serves: ``clinic/stations.py``);
- a citizen sees their own records (``patients``, merged records included) and, as
  ``citizen:<phone>``, the children a facility confirmed them guardian of;
- the platform (a system client or administrator without a facility) is not confined;
- analysts and registry administrators see no patient record; insurance appraisers see the
  claims data of every patient and nothing else of theirs.
Scopes narrow all of it to the resource types the token may read.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from sokhoe.access.principal import Principal
from sokhoe.access.scopes import scopes_allow
from sokhoe.fhir.definitions import resource_types
from sokhoe.store.ports import Confinement

CLAIM_TYPES = frozenset({"Claim", "ClaimResponse", "ExplanationOfBenefit", "Coverage"})
"""What an insurance appraiser may read: the claims data of any patient, and nothing else."""
NO_RECORD_ROLES = frozenset({"analyst", "insurance-appraiser", "registry-admin"})
"""Roles that never see or write a patient's clinical record as such."""
BREAK_GLASS_ROLES = frozenset({"doctor", "nurse"})
REGISTRY_ROLES = frozenset({"registry-admin"})
"""Staff who keep the shared registries (facilities, practitioners, catalogues)."""
WARD_ROLES = frozenset({"commune-health-worker", "doctor", "nurse"})
"""Staff whose ``commune`` opens the residents of that ward: the commune health worker, and a
commune station's clinicians (a session gets a ward only from the station's registry entry)."""


def is_platform(principal: Principal) -> bool:
    """Callers acting for the whole platform rather than one facility or person."""
    if principal.kind == "client":
        return principal.facility is None
    return principal.kind == "staff" and principal.role == "system-admin"


def keeps_registries(principal: Principal) -> bool:
    """Whether the caller may write the shared registries."""
    return is_platform(principal) or (
        principal.kind == "staff" and principal.role in REGISTRY_ROLES
    )


def grantees(principal: Principal) -> tuple[str, ...]:
    """The names under which care rows may speak for ``principal``."""
    if is_platform(principal) or principal.role in NO_RECORD_ROLES:
        return ()
    if principal.kind == "citizen":
        # an app a citizen connected holds one record (``patient_ids``), never the phone's
        # guardian rows: its token is confined to the patient picked at launch
        return () if principal.app else (f"citizen:{principal.subject}",)
    out: list[str] = []
    if principal.facility:
        out.append(f"facility:{principal.facility}")
    if principal.kind == "staff":
        out.append(user_grantee(principal))
        if principal.role in WARD_ROLES and principal.commune:
            out.append(f"commune:{principal.commune}")
    return tuple(out)


def user_grantee(principal: Principal) -> str:
    """The grantee of rows that open a record to this one person (a broken glass)."""
    return f"user:{principal.kind}:{principal.subject}"


@lru_cache(maxsize=512)
def readable_types(scopes: frozenset[str]) -> frozenset[str] | None:
    """The resource types the scopes let the caller read (None: every type)."""
    every = resource_types()
    allowed = frozenset(t for t in every if scopes_allow(scopes, t, "read"))
    return None if len(allowed) == len(every) else allowed


def confinement(
    principal: Principal,
    now: datetime,
    *,
    patients: tuple[str, ...] = (),
    break_glass: bool = False,
) -> Confinement | None:
    """What ``principal`` may see at ``now`` (None: everything).

    ``patients``: a citizen's records with every record merged with them. ``break_glass``:
    a clinician who gave an emergency reason reads any record, restricted categories too
    (each patient shown is audited as a broken glass).
    """
    if is_platform(principal):
        return None
    readable = readable_types(principal.scopes)
    if principal.role in NO_RECORD_ROLES:
        appraiser = principal.role == "insurance-appraiser"
        return Confinement(
            now,
            all_patients=appraiser,
            types=CLAIM_TYPES if appraiser else None,
            restrictions=False,
            readable=readable,
        )
    if break_glass and principal.role in BREAK_GLASS_ROLES:
        return Confinement(now, all_patients=True, restrictions=False, readable=readable)
    return Confinement(
        now,
        grantees=grantees(principal),
        patients=patients if principal.kind == "citizen" else (),
        owner=principal.facility if principal.kind != "citizen" else None,
        facility=principal.facility,
        readable=readable,
    )
