"""The care-relationship index: who may see, or write into, which patient's compartment.

Rows are kept in the same transaction as the writes that make or end a relationship, so a
caller's rights can be part of the SQL of every read (``store/sql/confine.py``). They come
from:

- **record numbers**: a facility's number on the Patient (``…/sid/mrn/{code}``);
- **registration**: a facility that creates a new Patient record;
- **visits**: an Encounter whose ``serviceProvider`` is the facility's Organization (from its
  start until :data:`WINDOW` after its end);
- **referrals**: a ServiceRequest of category referral from a facility that may read the
  record, naming the receiving facility's Organization as performer;
- **consents**: a citizen's share code, redeemed by a facility (until the consent ends), and
  their restrictions of sensitive categories (the ``care_restriction`` rows);
- **presence**: a one-time code the patient read out at the desk, a share code, a confirmed
  guardian, a broken glass — written by the operations that check them;
- **home address**: the commune health worker's residents.

Knowing a number is not presence: what a facility could do with only a CCCD or a BHYT number
(check the person in, create a duplicate record) gives it a ``record`` row that is not
*proven*, or an ``own`` row that lets it write into the compartment but read only what it wrote
itself. When the patient index merges two records, proven rows open the whole person and
unproven ones open nothing of the other record: a facility cannot reach someone's history by
registering a new record with their number and waiting for the merge.

Facility writers never grant more than they had: the rows a facility's own write derives carry
its standing from before the write. Data loaded by the platform (legacy imports, demos,
synchronisation upstream) is trusted: its rows are proven.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sokhoe.access.levels import (
    BREAK_GLASS_WINDOW,
    OWN,
    RECORD,
    WINDOW,
    Standing,
    current,
    standing,
)
from sokhoe.access.merged import group_of, regroup, regroup_if_linked, ungroup
from sokhoe.mpi.identifiers import FACILITY, mrn_system
from sokhoe.registry.places import find_ward, resolve_province
from sokhoe.registry.sensitivity import ACT_CODE, SENSITIVE
from sokhoe.store.ports import CareRow, Restriction, StoredResource, StoreSession, WriteItem

__all__ = [
    "BREAK_GLASS_WINDOW",
    "OWN",
    "RECORD",
    "WINDOW",
    "Maintainer",
    "Standing",
    "Writer",
    "current",
    "grant",
    "group_of",
    "rebuild",
    "regroup",
    "regroup_if_linked",
    "standing",
    "ungroup",
]

MRN_PREFIX = mrn_system("")
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


@dataclass
class Writer:
    """Who is writing, as the index needs to know it."""

    platform: bool
    facility: str | None
    standing: Callable[[str], Standing | None]
    """The writer's facility standing on a patient, from before this transaction's writes."""
    created: set[str] = field(default_factory=set)
    """Patients this writer created in this transaction (it may write into them)."""


def _moment(text: object, *, end: bool = False) -> datetime | None:
    """A FHIR date or dateTime as an instant (the start of a partial date, or its end)."""
    if not isinstance(text, str) or len(text) < 4:
        return None
    try:
        if len(text) <= 10:
            parts = [int(p) for p in text.split("-")]
            year, month, day = [*parts, 1, 1][:3]
            start = datetime(year, month, day, tzinfo=UTC)
            if not end:
                return start
            if len(parts) == 1:
                return start.replace(year=year + 1)
            if len(parts) == 2:
                return (start + timedelta(days=32)).replace(day=1)
            return start + timedelta(days=1)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def facility_code(organization: dict[str, Any] | None) -> str | None:
    """The insurance facility code of an Organization (the registry's, not a client's)."""
    for ident in (organization or {}).get("identifier", []):
        if ident.get("system") == FACILITY and ident.get("use") != "old" and ident.get("value"):
            return str(ident["value"])
    return None


def record_numbers(patient: dict[str, Any]) -> set[str]:
    """The facilities whose current record number the Patient carries."""
    found = set()
    for ident in patient.get("identifier", []):
        system = str(ident.get("system", ""))
        if system.startswith(MRN_PREFIX) and ident.get("use") != "old" and ident.get("value"):
            if "end" not in (ident.get("period") or {}):
                found.add(system[len(MRN_PREFIX) :])
    return found


def home_commune(patient: dict[str, Any]) -> str | None:
    """The ward/commune code of the Patient's current home address."""
    for address in patient.get("address", []):
        if address.get("use") not in (None, "home") or "end" in (address.get("period") or {}):
            continue
        province = resolve_province(str(address.get("state", "")))
        ward = find_ward(province, str(address.get("city", ""))) if province else None
        if ward is not None:
            return str(ward.code)
    return None


class Maintainer:
    """Derives the rows a set of written versions makes or ends, in their transaction."""

    def __init__(self, tx: StoreSession, writer: Writer, now: datetime) -> None:
        self.tx = tx
        self.writer = writer
        self.now = now
        self._orgs: dict[str, str | None] = {}

    def apply(
        self, items: Sequence[WriteItem], before: dict[tuple[str, str], StoredResource | None]
    ) -> None:
        touched: set[str] = set()
        self._prefetch_orgs(items)
        add: list[CareRow] = []
        drop: list[CareRow] = []
        restrict: list[Restriction] = []
        unrestrict: list[Restriction] = []
        patients = [i.id for i in items if i.resource_type == "Patient"]
        others = [i for i in items if i.resource_type in ("Consent", "Encounter", REFERRAL)]
        existing = self._rows_by_patient(
            [*patients, *(p for i in others for p in self._patients(i, before))]
        )
        for item in items:
            if item.resource_type == "Patient":
                a, d = self._patient(item, before.get((item.resource_type, item.id)), existing)
            elif item.resource_type == "Encounter":
                a, d = self._encounter(item, before, existing)
            elif item.resource_type == REFERRAL:
                a, d = self._referral(item, before, existing)
            elif item.resource_type == "Consent":
                a, d, r, u = self._consent(item, before)
                restrict += r
                unrestrict += u
            else:
                continue
            add += a
            drop += d
            touched.update(self._patients(item, before))
        if drop:
            self.tx.unrelate(drop)
        if add:
            self.tx.relate(add)
        if unrestrict:
            self.tx.unrestrict(unrestrict)
        if restrict:
            self.tx.restrict(restrict)
        if touched:
            regroup_if_linked(self.tx, sorted(touched))

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _patients(
        item: WriteItem, before: dict[tuple[str, str], StoredResource | None]
    ) -> list[str]:
        old = before.get((item.resource_type, item.id))
        return [p for p in {item.patient_id, old.patient_id if old else None} if p]

    def _rows_by_patient(self, patient_ids: Sequence[str]) -> dict[str, list[CareRow]]:
        out: dict[str, list[CareRow]] = defaultdict(list)
        for row in self.tx.care(sorted(set(patient_ids))) if patient_ids else []:
            out[row.patient_id].append(row)
        return out

    def _prefetch_orgs(self, items: Sequence[WriteItem]) -> None:
        wanted = {
            ref.split("/", 1)[1]
            for i in items
            if i.content is not None
            for ref in _organisations(i)
            if ref.startswith("Organization/")
        } - set(self._orgs)
        if not wanted:
            return
        found = {o.id: o for o in self.tx.read_many([("Organization", oid) for oid in wanted])}
        for oid in wanted:
            org = found.get(oid)
            self._orgs[oid] = facility_code(org.content) if org else None

    def _level(self, patient_id: str, facility: str) -> Standing | None:
        """The standing a write by the writer gives ``facility`` on ``patient_id``."""
        if self.writer.platform:
            return Standing(RECORD, True)
        if self.writer.facility != facility:
            return None  # a facility never grants another one anything by writing
        if patient_id in self.writer.created:
            return Standing(RECORD, False)
        return self.writer.standing(patient_id)

    def _row(
        self,
        patient_id: str,
        grantee: str,
        standing: Standing,
        source: str,
        ref: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> CareRow:
        return CareRow(
            patient_id,
            grantee,
            standing.level,
            standing.proven,
            source,
            ref,
            patient_id,
            since or self.now,
            until,
        )

    def _patient(
        self,
        item: WriteItem,
        old: StoredResource | None,
        existing: dict[str, list[CareRow]],
    ) -> tuple[list[CareRow], list[CareRow]]:
        pid = item.id
        mine = [r for r in existing.get(pid, []) if r.via == pid]
        if item.content is None:  # a deleted record relates nobody any more
            return [], [r for r in mine if r.source in ("mrn", "address", "registered")]
        add: list[CareRow] = []
        drop: list[CareRow] = []
        numbers = record_numbers(item.content)
        held = {r.grantee.split(":", 1)[1]: r for r in mine if r.source == "mrn"}
        for facility in sorted(numbers - set(held)):
            level = self._level(pid, facility)
            if level is not None:
                add.append(self._row(pid, f"facility:{facility}", level, "mrn", ""))
        drop += [r for f, r in held.items() if f not in numbers]
        commune = home_commune(item.content)
        lived = [r for r in mine if r.source == "address"]
        if commune is not None and f"commune:{commune}" not in {r.grantee for r in lived}:
            add.append(self._row(pid, f"commune:{commune}", Standing(RECORD, True), "address", ""))
        drop += [r for r in lived if r.grantee != f"commune:{commune}"]
        if old is None and self.writer.facility and not self.writer.platform:
            registered = Standing(RECORD, False)
            add.append(
                self._row(pid, f"facility:{self.writer.facility}", registered, "registered", "")
            )
        return add, drop

    def _encounter(
        self,
        item: WriteItem,
        before: dict[tuple[str, str], StoredResource | None],
        existing: dict[str, list[CareRow]],
    ) -> tuple[list[CareRow], list[CareRow]]:
        ref = f"Encounter/{item.id}"
        drop = [
            r
            for p in self._patients(item, before)
            for r in existing.get(p, [])
            if r.source == "encounter" and r.source_ref == ref
        ]
        content = item.content
        if content is None or item.patient_id is None:
            return [], drop
        org_ref = str((content.get("serviceProvider") or {}).get("reference", ""))
        facility = self._orgs.get(org_ref.split("/", 1)[1]) if "/" in org_ref else None
        if facility is None:
            return [], drop
        level = self._level(item.patient_id, facility)
        if level is None:
            return [], drop
        period = content.get("period") or {}
        start = _moment(period.get("start"))
        end = _moment(period.get("end"), end=True) or _moment(period.get("start"), end=True)
        since = min(start, self.now) if start else self.now
        until = max(end or self.now, since) + WINDOW
        row = self._row(
            item.patient_id, f"facility:{facility}", level, "encounter", ref, since, until
        )
        return [row], [r for r in drop if r.key != row.key]

    def _referral(
        self,
        item: WriteItem,
        before: dict[tuple[str, str], StoredResource | None],
        existing: dict[str, list[CareRow]],
    ) -> tuple[list[CareRow], list[CareRow]]:
        """A referral (giấy chuyển tuyến) opens the record to the facility it names, for as
        long as the referring facility could pass on: its own standing, never more."""
        ref = f"{REFERRAL}/{item.id}"
        drop = [
            r
            for p in self._patients(item, before)
            for r in existing.get(p, [])
            if r.source == "referral" and r.source_ref == ref
        ]
        content, pid = item.content, item.patient_id
        if content is None or pid is None or not _is_referral(content):
            return [], drop
        if content.get("status") not in ("active", "completed"):
            return [], drop  # revoked or entered in error: the door closes again
        if self.writer.platform:
            standing: Standing | None = Standing(RECORD, True)
        elif pid in self.writer.created:
            standing = Standing(RECORD, False)
        else:
            standing = self.writer.standing(pid)
        if standing is None or standing.level != RECORD:
            return [], drop  # one cannot refer on what one may not read
        add: list[CareRow] = []
        authored = _moment(content.get("authoredOn")) or self.now
        period = content.get("occurrencePeriod") or {}
        until = (_moment(period.get("end"), end=True) or max(authored, self.now)) + WINDOW
        for org in _organisations(item):
            facility = self._orgs.get(org.split("/", 1)[1]) if "/" in org else None
            if facility is not None and facility != self.writer.facility:
                row = self._row(
                    pid, f"facility:{facility}", standing, "referral", ref, self.now, until
                )
                add.append(row)
        keep = {r.key for r in add}
        return add, [r for r in drop if r.key not in keep]

    def _consent(
        self, item: WriteItem, before: dict[tuple[str, str], StoredResource | None]
    ) -> tuple[list[CareRow], list[CareRow], list[Restriction], list[Restriction]]:
        ref = f"Consent/{item.id}"
        people = self._patients(item, before)
        drop = [r for r in self.tx.care(people) if r.source == "consent" and r.source_ref == ref]
        unrestrict = [x for x in self.tx.restrictions(people) if x.source_ref == ref]
        content = item.content
        pid = item.patient_id
        if content is None or pid is None or not _privacy(content):
            return [], drop, [], unrestrict
        if content.get("status") != "active":
            return [], drop, [], unrestrict
        provision = content.get("provision") or {}
        period = provision.get("period") or {}
        since = _moment(period.get("start")) or self.now
        until = _moment(period.get("end"))
        add: list[CareRow] = []
        restrict: list[Restriction] = []
        if provision.get("type") == "permit":
            for facility in _actor_facilities(provision):
                row = self._row(
                    pid,
                    f"facility:{facility}",
                    Standing(RECORD, True),
                    "consent",
                    ref,
                    since,
                    until,
                )
                add.append(row)
        elif provision.get("type") == "deny":
            permitted = sorted(
                {
                    f
                    for p in provision.get("provision", [])
                    if p.get("type") == "permit"
                    for f in _actor_facilities(p)
                }
            )
            for label in provision.get("securityLabel", []):
                if label.get("system") == ACT_CODE and label.get("code") in SENSITIVE:
                    code = str(label["code"])
                    restrict.append(Restriction(pid, code, "", ref, pid))
                    restrict += [Restriction(pid, code, f, ref, pid) for f in permitted]
        keep = {r.key for r in add}
        kept = {x.key for x in restrict}
        return (
            add,
            [r for r in drop if r.key not in keep],
            restrict,
            [x for x in unrestrict if x.key not in kept],
        )


REFERRAL = "ServiceRequest"
REFERRAL_CODES = frozenset({"3457005", "306206005", "306237005"})
"""SNOMED CT patient referral (and referral to a service / to a hospital) in a ServiceRequest's
``category``: what makes one a referral to another facility."""


def _is_referral(content: dict[str, Any]) -> bool:
    return any(
        c.get("code") in REFERRAL_CODES
        for cat in content.get("category", [])
        for c in (cat.get("coding") or [])
    )


def _organisations(item: WriteItem) -> list[str]:
    """The Organizations a write names as where care happens: an Encounter's
    ``serviceProvider``, a referral's ``performer``."""
    content = item.content or {}
    if item.resource_type == "Encounter":
        return [str((content.get("serviceProvider") or {}).get("reference", ""))]
    if item.resource_type == REFERRAL and _is_referral(content):
        return [str(p.get("reference", "")) for p in content.get("performer", [])]
    return []


def _privacy(consent: dict[str, Any]) -> bool:
    return any(
        c.get("system") == CONSENT_SCOPE and c.get("code") == "patient-privacy"
        for c in (consent.get("scope") or {}).get("coding", [])
    )


def _actor_facilities(provision: dict[str, Any]) -> list[str]:
    out = []
    for actor in provision.get("actor", []):
        ident = (actor.get("reference") or {}).get("identifier") or {}
        if ident.get("system") == FACILITY and ident.get("value"):
            out.append(str(ident["value"]))
    return out


# -- rows written by the operations that check presence or consent ------------------------------


def grant(
    tx: StoreSession,
    patient_id: str,
    grantee: str,
    source: str,
    now: datetime,
    *,
    level: str = RECORD,
    proven: bool = True,
    until: datetime | None = None,
    ref: str = "",
    all_labels: bool = False,
) -> CareRow:
    """Add one row (and spread it over the person's merged records)."""
    row = CareRow(
        patient_id, grantee, level, proven, source, ref, patient_id, now, until, all_labels
    )
    tx.relate([row])
    regroup_if_linked(tx, [patient_id])
    return row


def rebuild(
    rows_of: Callable[[], Iterable[StoredResource]], tx: StoreSession, now: datetime
) -> int:
    """Derive the index from stored records as if the platform had loaded them (used once on
    a database that predates the index); returns the rows written."""
    writer = Writer(platform=True, facility=None, standing=lambda _p: None)
    maintainer = Maintainer(tx, writer, now)
    resources = list(rows_of())
    items = [
        WriteItem(
            r.resource_type,
            r.id,
            r.version_id,
            r.last_updated,
            r.content,
            r.patient_id,
            None,
            "PUT",
            None,
        )
        for r in resources
        if r.resource_type in ("Patient", "Encounter", "Consent")
    ]
    for start in range(0, len(items), 1000):
        maintainer.apply(items[start : start + 1000], {})
    return len(tx.care(sorted({i.patient_id for i in items if i.patient_id})))
