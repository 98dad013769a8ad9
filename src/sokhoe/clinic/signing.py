"""Signing a visit's record, and amending what was signed (Circular 13/2025/TT-BYT, Art. 3).

A record is signed by a digital signature or by "another electronic confirmation". The
:class:`Signer` port is how a signature is made; it is given the SHA-256 **digest** of the
canonical form (``clinic/canonical.py``), never the document, so that remote-signing services
— where the software sends a hash and the clinician approves it in a phone app — plug into the
same port as the two implementations here:

- :class:`TotpConfirmation`: the electronic confirmation of a clinician by the code of their
  authenticator app (the one they sign in with); the evidence is the time step used, never the
  code, and a step is good once;
- :class:`Pkcs12Signer`: an RSA signature (PKCS#1 v1.5, SHA-256) with the practitioner's own
  certificate from a PKCS#12 file; the evidence is the certificate.

:func:`sign_visit` gathers the visit, has the signer sign its digest outside any transaction
(a remote signer may take a minute), then, in the ``$sign`` operation's transaction, checks
the visit did not change meanwhile and writes the Provenance (``clinic/provenance.py``). What a
signature targets is frozen by the door (``access/signed.py``); :func:`amend` is the one way
to replace a signed version, and signs the visit again (activity ``amend``). Both Provenances
stay, and the history keeps both versions.
See: https://hl7.org/fhir/R4/provenance.html and https://hl7.org/fhir/R4/datatypes.html#Signature
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy import Engine

from sokhoe.access.accounts import confirm_totp, practitioner_of
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.session import GuardedSession
from sokhoe.access.signed import AMENDMENT, signatures_of
from sokhoe.clinic.canonical import Canonical, canonical_form
from sokhoe.clinic.certificates import SigningCredential, common_name, load_pkcs12
from sokhoe.clinic.provenance import Agent, signature_provenance
from sokhoe.clinic.signed_visit import SignedVisit, load_visit, require_signer
from sokhoe.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound, Unauthorized
from sokhoe.fhir.repository import check_id, check_type, validated
from sokhoe.fhir.resources import format_instant, same_content, with_meta
from sokhoe.messages import Message, message_of
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store.ports import StoreSession

TOTP_METHOD = "totp-confirmation"
PKCS12_METHOD = "pkcs12-rsa-sha256"
TOTP_FORMAT = "application/vnd.sokhoe.totp-confirmation+json"
RSA_FORMAT = "application/octet-stream"
"""The bare RSASSA-PKCS1-v1_5 signature bytes (the method says which algorithm)."""
SIGN_ROLES = frozenset({"doctor", "nurse", "facility-admin"})
OWNS = frozenset({"signature"})
STAFF_USERNAME = "https://fhir.sokhoe.vn/sid/staff-username"


@dataclass(frozen=True)
class Evidence:
    """What a signer returns: the signature (or confirmation record) and its evidence."""

    method: str
    sig_format: str
    data: bytes
    certificate: bytes | None = None
    """DER certificate of a digital signature."""
    time_step: int | None = None
    """The TOTP time step a confirmation used (the code itself is never kept)."""
    account: str | None = None


class Signer(Protocol):
    """The signing port: signs the SHA-256 digest of the canonical form, at ``when``.

    It takes a digest, not the document, so a remote-signing service (the clinician approves
    a hash on their phone) is one more implementation. Raise :class:`Forbidden` when the
    signer refuses (a wrong code, an expired certificate).
    """

    @property
    def method(self) -> str: ...

    @property
    def account(self) -> str | None:
        """The staff account the signer acts for, when it knows (checked against the caller)."""
        ...

    def sign(self, digest: bytes, when: datetime) -> Evidence: ...


class TotpConfirmation:
    """Electronic confirmation by the clinician's authenticator code (RFC 6238).

    A code is spent by the signature it confirms. With ``batch``, one code confirms every
    signature this signer makes: one form the clinician submitted with several decisions in it
    (the station's check of a resident's declared items, ``clinic/verification.py``), each
    decision still signed over its own content, with the same time step as evidence.
    """

    method = TOTP_METHOD

    def __init__(self, engine: Engine, username: str, code: str, *, batch: bool = False) -> None:
        self._engine, self._username, self._code = engine, username, code
        self._batch = batch
        self._step: int | None = None

    @property
    def account(self) -> str | None:
        return self._username

    def sign(self, digest: bytes, when: datetime) -> Evidence:
        try:
            step = self._step
            if step is None or not self._batch:
                step = confirm_totp(self._engine, self._username, self._code, when)
                self._step = step
        except Unauthorized as exc:
            raise Forbidden(
                Message("The signature was not confirmed: %(why)s", why=message_of(exc))
            ) from exc
        record = {
            "method": TOTP_METHOD,
            "account": self._username,
            "timeStep": step,
            "sha256": digest.hex(),
            "confirmed": format_instant(when),
        }
        data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        return Evidence(TOTP_METHOD, TOTP_FORMAT, data, time_step=step, account=self._username)


class Pkcs12Signer:
    """A digital signature with the practitioner's own certificate and key."""

    method = PKCS12_METHOD

    def __init__(self, credential: SigningCredential, account: str | None = None) -> None:
        self._credential, self._account = credential, account

    @classmethod
    def from_file(cls, path: Path, password: str, account: str | None = None) -> Pkcs12Signer:
        return cls(load_pkcs12(path, password), account)

    @property
    def account(self) -> str | None:
        return self._account

    def sign(self, digest: bytes, when: datetime) -> Evidence:
        cert = self._credential.certificate
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise Forbidden(
                Message(
                    "The certificate of %(name)s is valid from %(start)s to %(end)s, not at "
                    "%(when)s",
                    name=common_name(cert),
                    start=format_instant(cert.not_valid_before_utc),
                    end=format_instant(cert.not_valid_after_utc),
                    when=format_instant(when),
                )
            )
        signature = self._credential.key.sign(
            digest, padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        return Evidence(PKCS12_METHOD, RSA_FORMAT, signature, der, account=self._account)


@dataclass(frozen=True)
class Amendment:
    """The new version an amendment wrote, and the Provenance signing the visit again."""

    resource: dict[str, Any]
    provenance: dict[str, Any]


def _authorise(repo: GuardedRepository, visit: SignedVisit, signer: Signer, name: str) -> None:
    """Everything checked before anyone is asked to sign: role, facility, account.

    Not the patient's whole record: a visit holds only what its own facility wrote for it
    (``signed_visit.py``), which the facility may read and sign even when the history written
    elsewhere is still closed to it (a person checked in by their number). The signature
    itself is written into the compartment under the door's write rules."""
    repo.authorise_operation(name, "Encounter", ["read"], [], SIGN_ROLES)
    principal = repo.principal
    try:
        require_signer(repo, visit)
        if principal.kind == "staff" and signer.account not in (None, principal.subject):
            raise Forbidden(Message("A clinician signs with their own credentials only"))
    except Forbidden as refused:
        repo.record_refusal("operation", [visit.patient_id], str(refused))
        raise


def _signed(
    repo: GuardedRepository,
    visit: SignedVisit,
    signer: Signer,
    canonical: Canonical,
    when: datetime,
) -> Evidence:
    try:
        return signer.sign(canonical.digest, when)
    except Forbidden as refused:
        repo.record_refusal("operation", [visit.patient_id], str(refused))
        raise


def who_signs(repo: GuardedRepository) -> dict[str, Any]:
    """The signer as a Reference: their Practitioner when the account is linked to one."""
    principal = repo.principal
    who: dict[str, Any] = {"display": principal.display}
    if principal.kind == "staff":
        practitioner = practitioner_of(repo.auditor.engine, principal.subject)
        if practitioner is not None:
            who["reference"] = f"Practitioner/{practitioner}"
        who["identifier"] = {"system": STAFF_USERNAME, "value": principal.subject}
    return who


def organization_reference(repo: GuardedRepository, tx: StoreSession, code: str) -> dict[str, Any]:
    """The facility with insurance code ``code`` as a Reference (its Organization when the
    registry knows it), for a signature's ``onBehalfOf``."""
    query = repo.parse_query("Organization", [("identifier", f"{FACILITY}|{code}")])
    ids = tx.search_ids(query, 1)
    found = tx.read("Organization", ids[0]) if ids else None
    if found is None or found.content is None:
        return {"identifier": {"system": FACILITY, "value": code}}
    return {"reference": f"Organization/{found.id}", "display": found.content.get("name", code)}


def _record(
    repo: GuardedRepository,
    tx: StoreSession,
    activity: str,
    expected: Canonical,
    evidence: Evidence,
    who: dict[str, Any],
    when: datetime,
    encounter_id: str,
    **extra: Any,
) -> dict[str, Any]:
    """Check the visit is still what was signed, then write its signature Provenance, filed
    in the patient's compartment (R4 finds a Provenance's patient only among its targets)."""
    visit = load_visit(repo, tx, encounter_id)
    require_signer(repo, visit)
    if canonical_form(visit.contents).digest != expected.digest:
        raise Conflict(
            Message(
                "Encounter/%(id)s changed while it was being signed; review it and sign again",
                id=encounter_id,
            )
        )
    facility = visit.facility or repo.principal.facility
    agent = Agent(
        who, repo.principal.role, organization_reference(repo, tx, facility) if facility else None
    )
    provenance = signature_provenance(activity, expected, evidence, agent, when, **extra)
    validated(provenance, "Provenance")
    item = repo.prepare(provenance, provenance["id"], 1, "POST", None, repo.clock())
    item.patient_id = visit.patient_id
    tx.write([item])
    return item.content or provenance


def _operation(
    repo: GuardedRepository, name: str, visit: SignedVisit, owns: frozenset[str]
) -> AbstractContextManager[GuardedSession]:
    """The transaction of ``$sign`` or ``$amend`` on ``visit``, writing what ``owns`` names.

    It names no patient for the door to require: :func:`_authorise` already allowed the
    facility's own visit, which is narrower than the whole record; the patient is still named
    in the audit (``concerns``)."""
    return repo.operation(
        name,
        resource_type="Encounter",
        interactions=["read"],
        patients=[],
        concerns=[visit.patient_id],
        roles=SIGN_ROLES,
        owns=owns,
    )


def sign_visit(
    repo: GuardedRepository,
    encounter_id: str,
    signer: Signer,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    """Sign the visit of ``Encounter/encounter_id`` as it is now; returns the Provenance.

    ``expected_sha256`` is the digest of what the clinician reviewed (the sign page sends it
    back): a visit that changed since is refused, so nobody signs what they did not see.
    """
    with repo.snapshot() as tx:
        visit = load_visit(repo, tx, encounter_id)
    _authorise(repo, visit, signer, "sign")
    canonical = canonical_form(visit.contents)
    if expected_sha256 is not None and canonical.sha256 != expected_sha256:
        raise Conflict(
            Message(
                "Encounter/%(id)s changed after you reviewed it; review it and sign again",
                id=encounter_id,
            )
        )
    when = repo.clock()
    who = who_signs(repo)
    evidence = _signed(repo, visit, signer, canonical, when)
    with _operation(repo, "sign", visit, OWNS) as tx:
        return _record(repo, tx, "sign", canonical, evidence, who, when, encounter_id)


def amend(
    repo: GuardedRepository, resource: dict[str, Any], reason: str, signer: Signer
) -> Amendment:
    """Replace a signed version with ``resource`` (its new content, same type and id) and sign
    the visit again (activity ``amend``, ``entity`` the version replaced, ``reason``)."""
    if not reason.strip():
        raise InvalidRequest(Message("An amendment needs its reason"), "reason")
    rtype = str(validated(resource).get("resourceType"))
    check_type(rtype)
    rid = resource.get("id")
    if not isinstance(rid, str):
        raise InvalidRequest(Message("An amendment carries the id of the resource it amends"), "id")
    check_id(rid)
    with repo.snapshot() as tx:
        current = tx.read(rtype, rid)
        if current is None:
            raise NotFound(Message("%(ref)s is not known", ref=f"{rtype}/{rid}"))
        if current.deleted or current.content is None:
            raise Gone(Message("%(ref)s was deleted", ref=f"{rtype}/{rid}"))
        replaced = f"{rtype}/{rid}/_history/{current.version_id}"
        signing = [
            p
            for p in signatures_of(tx, repo.parse_query, [f"{rtype}/{rid}"])
            if any(t.get("reference") == replaced for t in p.get("target", []))
        ]
        encounters = [
            str(t["reference"]).split("/")[1]
            for p in signing
            for t in p.get("target", [])
            if str(t.get("reference", "")).startswith("Encounter/")
        ]
        if not encounters:
            raise InvalidRequest(
                Message("%(ref)s is not signed: change it with an ordinary update", ref=replaced)
            )
        visit = load_visit(repo, tx, encounters[-1])
    if same_content(current.content, resource):
        raise InvalidRequest(Message("The amendment changes nothing"))
    _authorise(repo, visit, signer, "amend")
    when = repo.clock()
    amended = with_meta(resource, rid, current.version_id + 1, when)
    canonical = canonical_form(
        [c for c in visit.contents if (c["resourceType"], c["id"]) != (rtype, rid)] + [amended]
    )
    who = who_signs(repo)
    evidence = _signed(repo, visit, signer, canonical, when)
    with _operation(repo, "amend", visit, OWNS | {AMENDMENT}) as tx:
        written = repo.update(resource, rtype, rid, if_match=f'W/"{current.version_id}"', tx=tx)
        provenance = _record(
            repo,
            tx,
            "amend",
            canonical,
            evidence,
            who,
            when,
            visit.encounter.id,
            reason=reason.strip(),
            revised=[replaced],
        )
    return Amendment(written.resource.content or {}, provenance)
