"""From an identity an OpenID Connect provider vouched for to a signed-in citizen.

The provider (VNeID-like, see :mod:`sokhoe.access.oidc`) asserts the 12-digit personal ID
(*căn cước công dân*, CCCD), which since Decree 102/2025 is also the health ID: the citizen is
the one living Patient holding that identifier. Nobody is registered here: a person without a
record yet gets one at their next visit (``Patient/$check-in`` with the chip ID card), where a
facility sees the card.
"""

from __future__ import annotations

from dataclasses import replace

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import with_wards
from sokhoe.access.oidc import Identity, OidcConfig, subject_of
from sokhoe.access.otp import CITIZEN_SCOPES, normalise_phone
from sokhoe.access.principal import Principal
from sokhoe.errors import Forbidden
from sokhoe.mpi.identifiers import CCCD, validate_cccd


def _living(repo: GuardedRepository, pid: str, depth: int = 0) -> str | None:
    """Follow ``Patient.link`` ``replaced-by`` to the record that survived a merge."""
    with repo.snapshot() as tx:
        current = tx.read("Patient", pid)
    if current is None or current.deleted or current.content is None or depth > 10:
        return None
    if current.content.get("active") is False and not current.content.get("link"):
        return None
    for link in current.content.get("link", []):
        ref = (link.get("other") or {}).get("reference", "")
        if link.get("type") == "replaced-by" and ref.startswith("Patient/"):
            return _living(repo, ref.split("/", 1)[1], depth + 1)
    return str(current.id)


def patient_with_cccd(repo: GuardedRepository, cccd: str) -> str:
    """The id of the one living Patient holding this CCCD; Forbidden when there is none or
    several (duplicates a facility has yet to merge: signing in to two records that might
    be two people is worse than asking the citizen to have them merged)."""
    query = repo.parse_query("Patient", [("identifier", f"{CCCD}|{cccd}")], strict=True)
    with repo.snapshot() as tx:
        found = tx.search_ids(query, limit=20)
    living = {pid for pid in (_living(repo, f) for f in found) if pid is not None}
    masked = cccd[:3] + "******" + cccd[-3:]
    if not living:
        raise Forbidden(
            f"No health record holds personal ID {masked} yet; a facility registers it at your "
            "next visit (check-in with your chip ID card)"
        )
    if len(living) > 1:
        raise Forbidden(
            f"Several health records hold personal ID {masked}; ask a facility to merge them"
        )
    return living.pop()


def citizen_for(repo: GuardedRepository, config: OidcConfig, identity: Identity) -> Principal:
    """The citizen principal of a verified identity: their Patient by CCCD and, when the
    provider vouches for their phone number (``phone_number_verified``), the children they
    are parent or guardian of (found, as for SMS sign-in, by that phone)."""
    raw = identity.claims.get(config.cccd_claim)
    if raw is None or raw == "":
        raise Forbidden(
            f"The identity provider did not give your personal ID (claim "
            f"'{config.cccd_claim}'); sign-in needs it to find your record"
        )
    try:
        cccd = validate_cccd(str(raw))
    except ValueError as exc:
        raise Forbidden(f"The identity provider gave an invalid personal ID: {exc}") from exc
    patient = patient_with_cccd(repo, cccd)
    name = identity.claims.get("name")
    subject = subject_of(config, identity.subject)
    principal = Principal(
        kind="citizen",
        subject=subject,
        display=name if isinstance(name, str) and name else subject,
        scopes=CITIZEN_SCOPES,
        patient_ids=(patient,),
    )
    phone = identity.claims.get("phone_number")
    if identity.claims.get("phone_number_verified") is True and isinstance(phone, str):
        try:
            number = normalise_phone(phone)
        except ValueError:
            return principal
        wards = with_wards(repo, replace(principal, subject=number))
        principal = replace(principal, patient_ids=wards.patient_ids)
    return principal
