"""Sharing and privacy (*chia sẻ và quyền riêng tư*): the citizen's consents in one place.

The rules are ``access/consent.py``'s (the same services ``$share``, ``$restrict`` and the
withdrawal use): a share code lets the facility that enters it read the record for the days
chosen; a restriction keeps mental-health, HIV or sexual-health records for the facilities
that wrote them and those the citizen names; any of them is withdrawn at once. Each change
goes through the citizen's door (authorised and audited as the consent operations) and is
confirmed by an SMS to the phone signed in, so a change made on a lost phone does not go
unnoticed. The SMS never names the sensitive category: it is read on a lock screen.

The page also lists the facilities that see the record because of care (a visit within a
year, a record number, a referral, the commune health station). The citizen does not end
those here: a facility treating someone keeps and consults the record it is answerable for
(Circular 13/2025/TT-BYT), and a visit's access ends by itself a year after it; what the
citizen controls is what they granted, and the sensitive categories.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sokhoe.access.consent import (
    CODE_LIFETIME,
    MAX_DAYS,
    Share,
    create_share,
    restrict_category,
    revoke_consent,
)
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.levels import current
from sokhoe.access.sms import SmsDeliveryError, SmsGateway
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.resources import parse_instant
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.portal.facilities import Facility, display_name, facilities
from sokhoe.registry.places import ward_by_code
from sokhoe.registry.sensitivity import ACT_CODE
from sokhoe.store.ports import CareRow

log = logging.getLogger(__name__)

DAYS: Final = (1, 7, 30, 90)
"""The lengths a citizen picks from (the API takes any number up to a year)."""
CATEGORIES: Final = {
    "PSY": Message("Mental health"),
    "HIV": Message("HIV"),
    "SEX": Message("Sexual and reproductive health"),
}
TREATING_SOURCES: Final = frozenset({"encounter", "mrn", "registered", "referral"})
WHY: Final = {
    "encounter": Message("you were treated there in the last year"),
    "mrn": Message("it keeps a record number for you"),
    "registered": Message("it registered you"),
    "referral": Message("you were referred there"),
    "presence": Message("you read out the code sent to your phone at its desk"),
    "address": Message("the health station where you live"),
}


@dataclass(frozen=True)
class Granted:
    """A share code, waiting to be entered or entered by a facility."""

    consent_id: str
    waiting: bool
    facility: Facility | None
    made: datetime
    until: datetime
    """When the code stops working (waiting) or the facility's access ends."""


@dataclass(frozen=True)
class Kept:
    """One sensitive category and how it is kept."""

    code: str
    name: Message
    consent_ids: tuple[str, ...]
    facilities: tuple[Facility, ...]
    """The facilities named besides those that wrote the records."""

    @property
    def restricted(self) -> bool:
        return bool(self.consent_ids)


@dataclass(frozen=True)
class Seen:
    """A facility that sees the record because of care."""

    facility: Facility
    why: tuple[Message, ...]
    until: datetime | None


@dataclass(frozen=True)
class Overview:
    name: str
    shares: list[Granted]
    kept: list[Kept]
    seen: list[Seen]
    treating: list[Facility]
    """The facilities the citizen may name for a sensitive category: those that cared for
    them, and those named already."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _facilities_of(provision: dict[str, Any]) -> list[str]:
    out = []
    for actor in provision.get("actor", []):
        ident = (actor.get("reference") or {}).get("identifier") or {}
        if ident.get("system") == FACILITY and ident.get("value"):
            out.append(str(ident["value"]))
    return out


def overview(repo: GuardedRepository, patient_id: str) -> Overview:
    """Everything the sharing page shows for ``patient_id`` (read through the caller's door)."""
    repo.require_patient(patient_id, "read")
    now = repo.clock()
    patient = repo.read("Patient", patient_id).content or {}
    with repo.snapshot() as tx:
        rows = tx.care(linked_patient_ids(tx, patient_id))
    query = repo.parse_query(
        "Consent",
        [("patient", f"Patient/{patient_id}"), ("status", "active,proposed"), ("_count", "200")],
    )
    consents = [(m.id, m.content or {}) for m in repo.search(query).matches]
    granted: list[tuple[str, bool, str | None, datetime, datetime]] = []
    kept: dict[str, tuple[list[str], list[str]]] = {code: ([], []) for code in CATEGORIES}
    for cid, consent in consents:
        provision = consent.get("provision") or {}
        made = parse_instant(str(consent.get("dateTime")))
        if provision.get("type") == "permit":
            waiting = consent.get("status") == "proposed"
            end = made + CODE_LIFETIME if waiting else _end(provision)
            if end is not None and end <= now:
                continue  # a code nobody entered in time, a share that ran out
            actors = _facilities_of(provision)
            granted.append((cid, waiting, actors[0] if actors else None, made, end or now))
        elif provision.get("type") == "deny":
            permitted = [f for p in provision.get("provision", []) for f in _facilities_of(p)]
            for label in provision.get("securityLabel", []):
                if label.get("system") == ACT_CODE and label.get("code") in kept:
                    ids, permits = kept[str(label["code"])]
                    ids.append(cid)
                    permits.extend(permitted)
    treating: set[str] = set()
    seen_rows: dict[str, list[CareRow]] = {}
    for row in rows:
        kind, _, code = row.grantee.partition(":")
        if kind == "facility" and row.source in TREATING_SOURCES:
            treating.add(code)
        if kind in ("facility", "commune") and row.source in WHY and current(row, now):
            seen_rows.setdefault(row.grantee, []).append(row)
    permitted_now = {f for _, chosen in kept.values() for f in chosen}
    shared = {g[2] for g in granted if g[2]}
    seen_codes = {g.partition(":")[2] for g in seen_rows if g.startswith("facility:")}
    codes = shared | permitted_now | treating | seen_codes
    places = facilities(repo, codes)
    return Overview(
        display_name(patient),
        [
            Granted(cid, waiting, places.get(code) if code else None, made, end)
            for cid, waiting, code, made, end in sorted(granted, key=lambda g: g[3], reverse=True)
        ],
        [
            Kept(
                code,
                label,
                tuple(kept[code][0]),
                tuple(places[f] for f in dict.fromkeys(kept[code][1]) if f in places),
            )
            for code, label in CATEGORIES.items()
        ],
        [_seen(grantee, found, places) for grantee, found in sorted(seen_rows.items())],
        sorted((places[c] for c in treating | permitted_now), key=lambda f: f.name),
    )


def _seen(grantee: str, rows: list[CareRow], places: dict[str, Facility]) -> Seen:
    kind, _, code = grantee.partition(":")
    place = places.get(code) or Facility(code, code, None)
    if kind == "commune":
        ward = ward_by_code(code)
        place = Facility(code, ward[0].name if ward else code, None)
    ends = [r.until for r in rows]
    until = None if any(e is None for e in ends) else max(_aware(e) for e in ends if e)
    return Seen(place, tuple(dict.fromkeys(WHY[r.source] for r in rows)), until)


def _end(provision: dict[str, Any]) -> datetime | None:
    end = (provision.get("period") or {}).get("end")
    return parse_instant(str(end)) if end else None


def _confirm(gateway: SmsGateway, phone: str | None, text: str) -> bool:
    """The SMS confirming a change; a gateway failure does not undo the change (it is done,
    and audited), it is logged and the page says the message could not be sent."""
    if not phone:
        return False
    try:
        gateway.send(phone, text)
    except (SmsDeliveryError, OSError) as exc:
        log.warning("sharing confirmation not sent: %s", exc)
        return False
    return True


def _whose(name: str, own: bool) -> str:
    return "của bạn" if own or not name else f"của {name}"


def make_code(
    repo: GuardedRepository,
    gateway: SmsGateway,
    phone: str | None,
    patient_id: str,
    days: int,
    *,
    name: str = "",
    own: bool = True,
) -> Share:
    """A share code for ``days`` (one of :data:`DAYS`, or any up to a year)."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(Message("Choose how many days the facility may see the record."))
    made = create_share(repo, patient_id, days)
    _confirm(
        gateway,
        phone,
        f"Sổ sức khỏe: bạn vừa tạo mã chia sẻ hồ sơ sức khỏe {_whose(name, own)} "
        f"(cơ sở nhập mã được xem hồ sơ {days} ngày). Nếu không phải bạn, hãy thu hồi ở mục "
        '"Chia sẻ và quyền riêng tư".',
    )
    return made


def withdraw(
    repo: GuardedRepository,
    gateway: SmsGateway,
    phone: str | None,
    patient_id: str,
    consent_id: str,
    *,
    name: str = "",
    own: bool = True,
) -> None:
    """Withdraw a share code (waiting or entered): the facility loses access at once."""
    revoke_consent(repo, patient_id, consent_id)
    _confirm(
        gateway,
        phone,
        f"Sổ sức khỏe: bạn vừa thu hồi một quyền xem hồ sơ sức khỏe {_whose(name, own)}. "
        "Cơ sở đó không còn xem được hồ sơ.",
    )


def keep(
    repo: GuardedRepository,
    gateway: SmsGateway,
    phone: str | None,
    patient_id: str,
    category: str,
    chosen: Sequence[str],
    *,
    allowed: Sequence[str],
    replaces: Sequence[str] = (),
    name: str = "",
    own: bool = True,
) -> None:
    """Keep ``category`` for the facilities that wrote it and ``chosen`` ones (among
    ``allowed``: those that cared for the person), in place of ``replaces``."""
    if category not in CATEGORIES:
        raise InvalidRequest(Message("Choose which records to keep private."))
    unknown = [c for c in chosen if c not in allowed]
    if unknown:
        raise InvalidRequest(Message("Choose among the facilities listed."))
    restrict_category(repo, patient_id, category, list(dict.fromkeys(chosen)), replaces)
    _confirm(
        gateway,
        phone,
        f"Sổ sức khỏe: bạn vừa thay đổi cách giữ kín hồ sơ nhạy cảm {_whose(name, own)}. "
        'Nếu không phải bạn, hãy xem lại ở mục "Chia sẻ và quyền riêng tư".',
    )


def open_up(
    repo: GuardedRepository,
    gateway: SmsGateway,
    phone: str | None,
    patient_id: str,
    consent_ids: Sequence[str],
    *,
    name: str = "",
    own: bool = True,
) -> None:
    """Stop keeping a category private: withdraw its restrictions."""
    revoke_consent(repo, patient_id, *consent_ids)
    _confirm(
        gateway,
        phone,
        f"Sổ sức khỏe: bạn vừa bỏ giữ kín một loại hồ sơ nhạy cảm {_whose(name, own)}. "
        'Nếu không phải bạn, hãy xem lại ở mục "Chia sẻ và quyền riêng tư".',
    )


__all__ = [
    "CATEGORIES",
    "DAYS",
    "Granted",
    "Kept",
    "Overview",
    "Seen",
    "keep",
    "make_code",
    "open_up",
    "overview",
    "withdraw",
]
