"""What presenting a prescription code opens: one prescription and its patient's allergies.

A pharmacy has no care relationship with the people whose prescriptions it fills, and must
not gain one: a pharmacist who could open the record of everyone who ever bought medicine
there would see far more than selling it needs. The prescription code (*mã đơn thuốc*) is the
proof instead, as a share code is for a facility: whoever holds it was given the prescription
by the patient (printed, or shown from their health book). Presenting it opens, for that one
request, nothing of the record but:

- the prescription's lines: the query *is* the code (``MedicationRequest?group-identifier=
  <system>|<code>``), under a confinement that admits MedicationRequests only;
- the patient's active allergies, under a confinement that admits AllergyIntolerances only and
  keeps the patient's restrictions of sensitive categories; of those, the prescribing rule
  (``prescribing/lookup.py``) decides per resource which concern the prescribed medicines, and
  only those are disclosed and audited;
- the patient's name and year of birth (:class:`Holder`), read from their ``Patient`` under a
  confinement that admits that one Patient only, and nothing else of it: what the paper
  prescription the patient hands over already shows, and what a dispensing label carries
  (a pharmacist checks the name against the buyer, and the label says whose medicine it is).
  Disclosing it is audited like the rest (``Patient/<id>`` among what was shown).

Nothing outlives the request: no care row is written, so every other path (read, search,
``_include``, ``$everything``, history, counts) stays exactly as closed as it was, and the next
look-up presents the code again. Each presentation is audited naming the patient, with what was
disclosed (the citizen sees it in their access log); a code that opens nothing is audited as a
refusal, so guessing codes leaves a trail. The callers authorise first (:func:`authorise`, a
pharmacist or a pharmacy's system), read inside their own transaction (:func:`present`) and
audit after (:func:`disclose`): the audit of a refusal takes its own short transaction, which
must not wait on the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sokhoe.access.rights import readable_types
from sokhoe.access.writes import PRESCRIPTION_CODES
from sokhoe.fhir.patient_links import widen_to_linked_patients
from sokhoe.store.ports import Confinement, StoredResource, StoreSession

if TYPE_CHECKING:
    from sokhoe.access.guard import GuardedRepository

PRESENTER_ROLES: Final = frozenset({"pharmacist", "system"})
"""Who presents a code: a pharmacist, or a pharmacy's own software (a connected system)."""
MAX_LINES: Final = 100
MAX_ALLERGIES: Final = 200


@dataclass(frozen=True)
class Holder:
    """Whose prescription it is, as far as a pharmacy may know: the name and year of birth."""

    name: str
    birth_year: str
    """The four digits of ``Patient.birthDate``, or empty when it is not recorded."""


@dataclass(frozen=True)
class Presented:
    """What one presented code opened (nothing of it is disclosed until :func:`disclose`)."""

    code: str
    patient_id: str
    lines: tuple[StoredResource, ...]
    """The prescription's MedicationRequests, as stored (their versions lock a dispense)."""
    allergies: tuple[StoredResource, ...]
    """The patient's active allergies the patient did not restrict from the caller."""
    holder: Holder | None = None
    """The patient's name and year of birth (None if their Patient could not be read)."""


def authorise(repo: GuardedRepository, operation: str, resource_type: str, action: str) -> None:
    """The caller may present codes: a pharmacist or a system, with the scopes to read
    prescriptions and allergies and to do ``action`` on ``resource_type`` (audited if not)."""
    repo.authorise_operation(operation, resource_type, [action], roles=PRESENTER_ROLES)
    repo.require_scope("MedicationRequest", "read")
    repo.require_scope("AllergyIntolerance", "read")


def _lines_only(repo: GuardedRepository) -> Confinement:
    return Confinement(
        repo.clock(),
        all_patients=True,
        types=frozenset({"MedicationRequest"}),
        shared=False,
        restrictions=False,  # the patient handed over this prescription: it opens whole
        readable=readable_types(repo.principal.scopes),
    )


def _allergies_only(repo: GuardedRepository) -> Confinement:
    return Confinement(
        repo.clock(),
        all_patients=True,
        types=frozenset({"AllergyIntolerance"}),
        shared=False,
        restrictions=True,
        facility=repo.principal.facility,
        readable=readable_types(repo.principal.scopes),
    )


def _patient_only(repo: GuardedRepository, patient_id: str) -> Confinement:
    return Confinement(
        repo.clock(),
        patients=(patient_id,),
        types=frozenset({"Patient"}),
        shared=False,
        restrictions=False,  # the name is on the paper the patient handed over
        readable=readable_types(repo.principal.scopes),
    )


def _holder(tx: StoreSession, repo: GuardedRepository, patient_id: str) -> Holder | None:
    """The name and birth year of ``patient_id``, and nothing else of the Patient."""
    found = tx.read_many([("Patient", patient_id)], _patient_only(repo, patient_id))
    patient = found[0].content if found and found[0].content else None
    if patient is None:
        return None
    names = patient.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    text = str(name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])]))
    birth = str(patient.get("birthDate") or "")
    return Holder(text.strip(), birth[:4] if len(birth) >= 4 else "")


def present(
    repo: GuardedRepository, tx: StoreSession, code: str, *, lines_only: bool = False
) -> Presented | None:
    """Read what ``code`` (already in canonical form) opens, inside ``tx``; None when no
    prescription has it (the caller audits that with :func:`refuse`). ``lines_only``: the
    lines and nothing of the patient (what a dispense needs, inside its write transaction)."""
    query = repo.parse_query(
        "MedicationRequest",
        [("group-identifier", f"{PRESCRIPTION_CODES}|{code}"), ("_count", str(MAX_LINES))],
    )
    lines = [m for m in tx.search(query, _lines_only(repo)).matches if m.patient_id]
    if not lines:
        return None
    patient_id = str(lines[0].patient_id)
    lines = [m for m in lines if m.patient_id == patient_id]  # one patient by construction
    ordered = tuple(sorted(lines, key=lambda r: r.id))
    if lines_only:
        return Presented(code, patient_id, ordered, ())
    allergy_query = repo.parse_query(
        "AllergyIntolerance",
        [
            ("patient", f"Patient/{patient_id}"),
            ("clinical-status", "active"),
            ("_count", str(MAX_ALLERGIES)),
        ],
    )
    found = tx.search(widen_to_linked_patients(tx, allergy_query), _allergies_only(repo))
    return Presented(
        code,
        patient_id,
        ordered,
        tuple(found.matches),
        _holder(tx, repo, patient_id),
    )


def disclose(
    repo: GuardedRepository,
    presented: Presented,
    shown: Sequence[StoredResource],
    *,
    operation: str,
) -> None:
    """Audit one presentation: the patient, and every resource shown to the caller (their
    Patient too when their name was: :attr:`Presented.holder`)."""
    where = repo.principal.facility or repo.principal.display
    named = [f"Patient/{presented.patient_id}"] if presented.holder is not None else []
    repo.record_access(
        "operation",
        [presented.patient_id],
        [f"${operation}", *(f"{r.resource_type}/{r.id}" for r in shown), *named],
        reason=f"${operation}: prescription code presented at {where}",
    )


def refuse(repo: GuardedRepository, operation: str, why: str) -> None:
    """Audit a presentation that opened nothing (an unknown or mistyped code)."""
    repo.record_refusal("operation", [], f"${operation}: {why}")


__all__ = [
    "PRESENTER_ROLES",
    "Holder",
    "Presented",
    "authorise",
    "disclose",
    "present",
    "refuse",
]
