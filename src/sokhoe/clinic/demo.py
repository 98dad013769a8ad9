"""The clinic pages' demo (``make run``): two facilities of the demo population ready for
``/clinic``, with rooms, staff accounts and a list of today's patients.

The two are a commune health station (*trạm y tế xã*) and a regional medical centre (*trung tâm
y tế khu vực*, the district hospital before the 2025 reorganisation) of the same province, the
ones most of the demo's people are registered at (their insurance card's facility,
``Patient.managingOrganization``), so their regulars' history is open to them.

Everything goes through the clinic's own services and the access door. The platform picks the
facilities and writes their rooms (:func:`sokhoe.clinic.setup.add_rooms`, the registry's door);
accounts are :func:`~sokhoe.clinic.setup.add_staff`'s; each person of the day passes the desk's
:func:`sokhoe.clinic.intake.take` (the ID card's QR, or a small child's insurance card number)
and :func:`sokhoe.clinic.visits.start_visit` as the facility's receptionist, and the first of
each room is called in by its doctor (:func:`~sokhoe.clinic.visits.set_status`). So the demo
does nothing the pages could not, and its audit trail reads like a morning at the desk. Most
are the facility's regulars (two of them, when it has them, back for their blood pressure or
diabetes medicines); one is new to it, and their history elsewhere opens only with the code
sent to their phone, as the rules say.

Why here and not in ``demo/``: ``demo/`` writes files and knows no repository or service; this
is the clinic's setup (beside :mod:`sokhoe.clinic.setup`) run on a loaded demo store.

Re-running is safe: rooms have derived ids, accounts are made once (later starts keep the
facilities their accounts name, whatever the records say by then), the day's people are drawn
from the day's date, and someone already in a facility's list today is not checked in again.
"Today" is the local date (Asia/Ho_Chi_Minh); a start on a later day makes that day's list.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any, Final

from argon2 import PasswordHasher
from sqlalchemy import Engine

from sokhoe.access.accounts import TOTP_REQUIRED_ROLES, account
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.passwords import STRONG
from sokhoe.access.principal import Principal
from sokhoe.clinic import intake, visits
from sokhoe.clinic.records import find, read
from sokhoe.clinic.setup import add_practitioner, add_rooms, add_staff, set_bank_account
from sokhoe.clinic.vietqr import BankAccount
from sokhoe.errors import FhirError
from sokhoe.fhir.references import codings, reference_id
from sokhoe.interop.claims.formats import name_text
from sokhoe.interop.claims.sources import (
    VIETNAM_TZ,
    FacilityRef,
    encounters_on,
    find_facility,
    search_all,
)
from sokhoe.mpi.identifiers import BHYT, CCCD, CMND, FACILITY
from sokhoe.registry.facilities import LEVEL_SYSTEM

log = logging.getLogger("sokhoe.clinic.demo")
CLINICIANS: Final = frozenset({"doctor", "nurse"})
"""Demo accounts registered as Practitioners with a (made-up) practising certificate."""


@dataclass(frozen=True)
class Site:
    """One demo facility: which level to pick, its rooms, its staff, how many come a day."""

    key: str
    level: str
    rooms: tuple[str, ...]
    staff: tuple[tuple[str, str, str], ...]
    """``(username, role, display name)``; the receptionist first, the doctor last."""
    size: int


STATION: Final = Site(
    "tram",
    "commune",
    ("Phòng khám 1", "Phòng khám 2", "Phòng tiêm chủng"),
    (
        ("tiepdon.tram", "receptionist", "Lê Thị Cúc"),
        ("dd.tram", "nurse", "ĐD. Trần Thị Bình"),
        ("bs.tram", "doctor", "BS. Đinh Văn Hùng"),
    ),
    7,
)
HOSPITAL: Final = Site(
    "khuvuc",  # no "huyện": districts were abolished in 2025, the centre is "khu vực"
    "regional",
    ("Phòng khám Nội 1", "Phòng khám Ngoại", "Phòng cấp cứu"),
    (
        ("tiepdon.khuvuc", "receptionist", "Đỗ Thị Hoa"),
        ("dd.khuvuc", "nurse", "ĐD. Vũ Thị Lan"),
        ("bs.khuvuc", "doctor", "BS. Phạm Minh Đức"),
    ),
    8,
)
SITES: Final = (STATION, HOSPITAL)
DEMO_BANK: Final = BankAccount("970415", "0000DEMO0000")
"""Where the demo's VietQR codes pay: a made-up account (a banking app reading it finds no
such account), so the bill page shows a real-format code without pointing at anyone's money."""
SAMPLE: Final = 5000
"""Patients counted to find the busiest facilities (ids are random: a fair sample)."""
OPENS, CLOSES = time(7, 0), time(17, 0)
"""Opening hours: a start within them lists people who came in the last hour, a start
after them the morning's list (from opening), a start before them the minutes before now."""
CHRONIC_A_DAY: Final = 2
"""Regulars followed for hypertension or diabetes coming back for their medicines each day."""
_CHRONIC: Final = {"I10": "Tái khám tăng huyết áp, lĩnh thuốc", "E11": "Tái khám đái tháo đường"}
_ACUTE: Final = (
    "Ho, sổ mũi 3 ngày",
    "Sốt, đau họng",
    "Đau bụng, đi ngoài",
    "Đau đầu, chóng mặt",
    "Đau lưng",
    "Khám sức khỏe",
)
_SURGICAL: Final = ("Đau khớp gối", "Ngã xe máy, đau cổ tay", "Vết thương ở bàn chân")
_URGENT: Final = ("Đau ngực trái, khó thở", "Sốt cao 39,5 °C, nôn nhiều")


@dataclass(frozen=True)
class SiteToday:
    site: Site
    facility: FacilityRef
    queued: int
    """The facility's visits today (the demo's and any others)."""
    added: int
    """Visits this run started (0 when today's list was made by an earlier start)."""


@dataclass(frozen=True)
class ClinicDemo:
    day: date
    sites: tuple[SiteToday, ...]

    def sign_in_text(self, base_url: str, password: str) -> str:
        """How to sign in at ``/clinic``: each account with its role and facility."""
        lines = [
            f"Clinic pages: {base_url}/clinic (sign in at {base_url}/clinic/sign-in), "
            f"password {password} for each account below:"
        ]
        for today in self.sites:
            lines.append(
                f"  {today.facility.name} ({today.facility.code}): {today.queued} people in "
                f"today's list ({self.day:%d/%m/%Y}), rooms {', '.join(today.site.rooms)}"
            )
            lines += [f"    {u:<15} {r:<13} {d}" for u, r, d in today.site.staff]
        roles = {role for s in self.sites for _, role, _ in s.site.staff}
        need = sorted(roles & TOTP_REQUIRED_ROLES)
        lines.append(
            "  No authenticator code for these roles (leave it empty; it is asked only of "
            "accounts that enrolled one"
            + (f", and {', '.join(need)} must enrol first" if need else "")
            + ")."
        )
        doctor = self.sites[0].site.staff[-1][0]
        lines.append(
            "  Doctors and nurses sign visits with their development certificate (the sign "
            "page's second button), or by code once they enrol an authenticator app "
            f"(sokhoe user totp {doctor})."
        )
        return "\n".join(lines)


def ensure_clinic_demo(
    platform: GuardedRepository,
    engine: Engine,
    password: str,
    now: datetime | None = None,
    *,
    hasher: PasswordHasher = STRONG,
) -> ClinicDemo:
    """Set up both sites (once) and today's lists (once a day); see the module docstring."""
    moment = (now or platform.clock()).astimezone(VIETNAM_TZ)
    chosen = _facilities(platform, engine)
    taken: set[str] = set()
    done = []
    for site in SITES:
        facility = chosen[site.key]
        add_rooms(platform, facility.code, list(site.rooms))
        add_staff(engine, facility.code, password, list(site.staff), hasher=hasher)
        for number, (username, role, display) in enumerate(site.staff):
            if role in CLINICIANS:  # what they prescribe reaches the national system
                certificate = f"{900000 + number:06d}/DEMO{facility.code}-CCHN"
                add_practitioner(
                    platform, engine, username, display, role, facility.code, certificate
                )
        set_bank_account(platform, facility.code, DEMO_BANK)
        added = _queue(platform, engine, site, facility, moment, taken)
        queued = len(encounters_on(platform, facility, moment.date()))
        done.append(SiteToday(site, facility, queued, added))
    return ClinicDemo(moment.date(), tuple(done))


# -- which facilities ---------------------------------------------------------------------


def _facilities(platform: GuardedRepository, engine: Engine) -> dict[str, FacilityRef]:
    """The facility of each site: the one its accounts name, else the busiest of its level
    (the hospital in the station's province when it has one)."""
    found: dict[str, FacilityRef] = {}
    for site in SITES:
        staff = account(engine, site.staff[0][0])
        if staff is not None and staff.facility is not None:
            found[site.key] = find_facility(platform, staff.facility)
    if len(found) == len(SITES):
        return found
    registered = Counter(
        reference_id(p.get("managingOrganization"), "Organization")
        for p in islice(search_all(platform, "Patient", []), SAMPLE)
    )
    for site in SITES:
        if site.key in found:
            continue
        orgs = list(
            search_all(platform, "Organization", [("type", f"{LEVEL_SYSTEM}|{site.level}")])
        )
        if not orgs:
            raise LookupError(f"No {site.level} facility in the registry: load the demo first")
        province = found[STATION.key].code[:2] if STATION.key in found else None

        def rank(org: dict[str, Any], province: str | None = province) -> tuple[int, int, str]:
            code = _code(org)
            return (code[:2] == province, registered[str(org["id"])], code)

        best = max(orgs, key=rank)
        found[site.key] = FacilityRef(str(best["id"]), _code(best), str(best.get("name", "")))
    return found


def _code(org: dict[str, Any]) -> str:
    return next(
        (str(i["value"]) for i in org.get("identifier", []) if i.get("system") == FACILITY), ""
    )


# -- who comes today ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Arrival:
    patient: dict[str, Any]
    known: bool
    """Registered at the facility (its regular), so the desk sees their record."""
    room: str
    reason: str


def _queue(
    platform: GuardedRepository,
    engine: Engine,
    site: Site,
    facility: FacilityRef,
    moment: datetime,
    taken: set[str],
) -> int:
    """Check in the day's people at the desk and call the first of each room in."""
    desk, doctor = (account(engine, site.staff[i][0]) for i in (0, -1))
    if desk is None or doctor is None:
        return 0  # an account was deactivated: no list is made in its name
    day = moment.date()
    rng = random.Random(f"sokhoe-clinic-demo:{facility.code}:{day.isoformat()}")  # noqa: S311
    arrivals = _arrivals(platform, site, facility, day, rng, taken)
    taken.update(str(a.patient["id"]) for a in arrivals)
    here = {
        reference_id(e.get("subject"), "Patient") for e in encounters_on(platform, facility, day)
    }
    rooms = {r.name: r.id for r in visits.rooms(platform, facility)}
    times = _times(moment, len(arrivals), rng)
    seen_rooms: set[str] = set()
    added = 0
    for arrival, at in zip(arrivals, times, strict=True):
        first_in_room = arrival.room not in seen_rooms
        seen_rooms.add(arrival.room)
        if arrival.patient["id"] in here:
            continue  # checked in by an earlier start today
        added += _check_in(platform, desk, doctor, facility, arrival, rooms, at, first_in_room)
    return added


def _check_in(
    platform: GuardedRepository,
    desk_staff: Principal,
    doctor_staff: Principal,
    facility: FacilityRef,
    arrival: _Arrival,
    rooms: dict[str, str],
    at: datetime,
    call_in: bool,
) -> int:
    desk = platform.for_caller(desk_staff)
    try:
        found = intake.take(desk, _typed(arrival, at.date()))
        if found.patient is None:
            return 0
        encounter = visits.start_visit(
            desk,
            facility_code=facility.code,
            patient_id=str(found.patient["id"]),
            patient_name=name_text(found.patient),
            room_id=rooms.get(arrival.room),
            payer=_payer(arrival.patient, at.date()),
            now=at,
            reason=arrival.reason,
        )
    except FhirError as exc:  # e.g. two records hold the number: the review queue decides
        log.warning("clinic demo: Patient/%s not checked in: %s", arrival.patient["id"], exc)
        return 0
    if call_in:
        room = platform.for_caller(doctor_staff)
        visits.set_status(room, str(encounter["id"]), "in-progress", at + timedelta(minutes=4))
    return 1


def _arrivals(
    platform: GuardedRepository,
    site: Site,
    facility: FacilityRef,
    day: date,
    rng: random.Random,
    taken: set[str],
) -> list[_Arrival]:
    """The day's people (regulars and one newcomer), each with a room and a reason."""
    regulars = _people(platform, [("organization", f"Organization/{facility.id}")], day, taken)
    own = {str(p["id"]) for p in regulars}
    org = read(platform, "Organization", facility.id) or {}
    province = next((a["state"] for a in org.get("address", []) if a.get("state")), None)
    chronic = _chronic(platform, [str(p["id"]) for p in regulars])
    followed = [p for p in regulars if chronic.get(str(p["id"]))]  # the station's programme
    picked = rng.sample(followed, min(len(followed), CHRONIC_A_DAY, site.size - 1))
    others = [p for p in regulars if p not in picked]
    picked += rng.sample(others, min(len(others), site.size - 1 - len(picked)))
    children = [p for p in others if _age(p, day) < 6]
    if site is STATION and children and not any(_age(p, day) < 6 for p in picked):
        picked = [*picked[:-1], rng.choice(children)]  # someone for the vaccination room
    newcomers: list[dict[str, Any]] = []
    for where in ([("address-state", str(province))] if province else [], []):
        need = site.size - len(picked) - len(newcomers)  # anywhere: a small demo's province
        if need <= 0:
            break
        seen = own | {str(p["id"]) for p in newcomers}
        pool = [p for p in _people(platform, where, day, taken) if str(p["id"]) not in seen]
        newcomers += rng.sample(pool, min(len(pool), need))
    people = [(p, True) for p in picked] + [(p, False) for p in newcomers]
    rng.shuffle(people)
    chronic.update(_chronic(platform, [str(p["id"]) for p in newcomers]))
    rooms = _rooms(site, [(p, chronic.get(str(p["id"]), [])) for p, _ in people], day, rng)
    return [
        _Arrival(p, known, room, reason)
        for (p, known), (room, reason) in zip(people, rooms, strict=True)
    ]


def _rooms(
    site: Site, people: list[tuple[dict[str, Any], list[str]]], day: date, rng: random.Random
) -> list[tuple[str, str]]:
    """A room and a reason for each person, by age and their long-term conditions."""
    out = []
    urgent = site is HOSPITAL
    turn = 0  # the others take the examination rooms in turn
    for patient, chronic in people:
        age = _age(patient, day)
        if site is STATION and age < 6:
            out.append((site.rooms[2], "Tiêm chủng theo lịch tiêm chủng mở rộng"))
        elif chronic:
            out.append((site.rooms[0], _CHRONIC[chronic[0]]))
        elif urgent and age >= 16:
            urgent = False
            out.append((site.rooms[2], rng.choice(_URGENT)))
        else:
            turn += 1
            if site is HOSPITAL and turn % 2:
                out.append((site.rooms[1], rng.choice(_SURGICAL)))
            else:
                out.append((site.rooms[turn % 2 if site is STATION else 0], rng.choice(_ACUTE)))
    return out


def _people(
    platform: GuardedRepository, params: list[tuple[str, str]], day: date, taken: set[str]
) -> list[dict[str, Any]]:
    found = find(platform, "Patient", [*params, ("_sort", "_id")], 300)
    return _usable(found, day, taken)


def _usable(people: Iterable[dict[str, Any]], day: date, taken: set[str]) -> list[dict[str, Any]]:
    """Living people of the loaded population (registered at a facility: not someone a desk
    made today, nor a duplicate record) with an ID card, not linked, not in another list."""
    return [
        p
        for p in people
        if p.get("active", True)
        and not p.get("link")
        and p.get("managingOrganization")
        and not p.get("deceasedBoolean")
        and "deceasedDateTime" not in p
        and _identifier(p, CCCD) is not None
        and p.get("birthDate")
        and date.fromisoformat(str(p["birthDate"])[:10]) <= day
        and str(p["id"]) not in taken
    ]


def _chronic(platform: GuardedRepository, patient_ids: list[str]) -> dict[str, list[str]]:
    """Each person's active long-term conditions the demo has a reason for (I10, E11)."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(patient_ids), 50):
        subjects = ",".join(f"Patient/{pid}" for pid in patient_ids[start : start + 50])
        params = [("patient", subjects), ("clinical-status", "active")]
        for condition in find(platform, "Condition", params, 1000):
            codes = {c.get("code", "")[:3] for c in codings(condition.get("code"))}
            pid = str(reference_id(condition.get("subject"), "Patient"))
            found[pid] = sorted({*found.get(pid, []), *(codes & _CHRONIC.keys())})
    return found


def _times(moment: datetime, count: int, rng: random.Random) -> list[datetime]:
    """Arrival times a few minutes apart: ending just before ``moment`` during opening hours,
    the morning's from :data:`OPENS` after them; never after ``moment`` nor before midnight."""
    gaps = [timedelta(minutes=rng.randint(3, 9)) for _ in range(count)]
    span = sum(gaps, timedelta())
    opens = datetime.combine(moment.date(), OPENS, VIETNAM_TZ)
    closes = datetime.combine(moment.date(), CLOSES, VIETNAM_TZ)
    if moment >= closes:  # after hours: the morning's list
        first = opens
    else:  # the last one came a minute ago
        first = moment - span - timedelta(minutes=1)
    midnight = datetime.combine(moment.date(), time(0), VIETNAM_TZ)
    return [
        max(first + sum(gaps[: i + 1], timedelta()), midnight + timedelta(seconds=i))
        for i in range(count)
    ]


# -- what the desk types ------------------------------------------------------------------


def _typed(arrival: _Arrival, day: date) -> str:
    """What reaches the desk's box: a regular small child's insurance card number (parents
    bring the card), else the scanner's text of the ID card's QR."""
    card = _identifier(arrival.patient, BHYT)
    if arrival.known and card is not None and _age(arrival.patient, day) < 6:
        return card
    return _qr(arrival.patient)


def _qr(patient: dict[str, Any]) -> str:
    """The CCCD QR text of the person's card: ``ID|old ID|name|ddMMyyyy|sex|address|issued``
    (six fields when there was no old ID); the issue date is made up, the rest is theirs."""
    number = str(_identifier(patient, CCCD))
    born = date.fromisoformat(str(patient["birthDate"])[:10])
    issued = date(2021, 1 + int(number[-2:]) % 12, 1 + int(number[-4:-2]) % 28)
    address: dict[str, Any] = next(iter(patient.get("address", [])), {})
    where = ", ".join([*address.get("line", []), *(address.get(k, "") for k in ("city", "state"))])
    fields = [
        number,
        _identifier(patient, CMND),
        name_text(patient),
        f"{born:%d%m%Y}",
        "Nữ" if patient.get("gender") == "female" else "Nam",
        where.strip(", "),
        f"{issued:%d%m%Y}" if issued > born else "",
    ]
    return "|".join(f for f in fields if f is not None)


def _identifier(patient: dict[str, Any], system: str) -> str | None:
    return next(
        (
            str(i["value"])
            for i in patient.get("identifier", [])
            if i.get("system") == system and (i.get("use") != "old" or system == CMND)
        ),
        None,
    )


def _payer(patient: dict[str, Any], day: date) -> visits.Payer:
    """Insurance when the person holds a BHYT card valid today, else fee-paying."""
    for ident in patient.get("identifier", []):
        if ident.get("system") != BHYT or ident.get("use") == "old":
            continue
        period = ident.get("period") or {}
        if period.get("start", "") <= day.isoformat() <= (period.get("end") or "9999"):
            return "insurance"
    return "self-pay"


def _age(patient: dict[str, Any], day: date) -> int:
    born = date.fromisoformat(str(patient["birthDate"])[:10])
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


__all__ = ["HOSPITAL", "SITES", "STATION", "ClinicDemo", "Site", "SiteToday", "ensure_clinic_demo"]


def signers(demo: ClinicDemo) -> list[tuple[str, str]]:
    """``(username, display name)`` of the demo's doctors and nurses (they sign visits)."""
    return [
        (username, display)
        for today in demo.sites
        for username, role, display in today.site.staff
        if role in ("doctor", "nurse")
    ]
