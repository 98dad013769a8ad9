"""First start of ``make run``: fill an empty store with the synthetic demo population."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.passwords import STRONG
from sokhoe.fhir.bundles import process_bundle
from sokhoe.interop.load import load_paths

log = logging.getLogger("sokhoe.bootstrap")


def publish_registry(repo: GuardedRepository) -> int:
    """Store the platform's NamingSystems, the Vietnam core profiles and extensions
    (StructureDefinitions), the self-declaration's Questionnaire and the reference drug
    catalogue; return how many resources changed (fixed ids; unchanged ones make no new
    version)."""
    from sokhoe.ig.profiles import structure_definitions
    from sokhoe.portal.questionnaire import resource as questionnaire
    from sokhoe.portal.sections import SECTIONS
    from sokhoe.prescribing import publish_reference
    from sokhoe.registry.naming import registry_resources
    from sokhoe.web.i18n import catalogue

    changed = 0
    declaration = questionnaire(SECTIONS, catalogue("vi", "portal").gettext)
    for resource in [*registry_resources(), *structure_definitions(), declaration]:
        outcome = repo.update(resource, resource["resourceType"], resource["id"])
        changed += outcome.status == 201 or outcome.resource.version_id > 1
    report = publish_reference(repo)
    return changed + report.created + report.changed + report.retired


def store_is_empty(repo: GuardedRepository) -> bool:
    with repo.snapshot() as tx:
        _, total = tx.history(None, None, None, 1, 0)
    return total == 0


def ensure_demo(repo: GuardedRepository, patients: int, var_dir: Path, seed: int = 1) -> bool:
    """Generate and load ``patients`` synthetic people when the store is empty.

    Returns True when it loaded something. The generated files are kept under ``var/demo`` so a
    later ``sokhoe load`` can reuse them.
    """
    if not store_is_empty(repo):
        return False
    from tqdm import tqdm

    from sokhoe.demo import write_demo

    out = var_dir / "demo" / f"{patients}-{seed}"
    print(f"Empty database: generating {patients} synthetic people into {out} …")  # noqa: T201
    write_demo(out, patients, seed, "bundles", progress=True)
    with tqdm(unit=" resources", desc="loading demo", disable=None) as bar:
        report = load_paths(repo, [out], progress=bar.update)
    for err in report.errors:
        log.error("demo load: %s", err)
    add_duplicates(repo, patients, seed)
    return True


DEMO_DUPLICATE_RATE = 0.03
"""Share of demo people registered again elsewhere with typos: what the review queue shows."""


def add_duplicates(repo: GuardedRepository, patients: int, seed: int) -> None:
    """Register some demo people a second time, noisily (and some look-alikes), then let the
    master patient index link the certain ones and queue the rest for review."""
    from tqdm import tqdm

    from sokhoe.demo.duplicates import make_duplicates
    from sokhoe.mpi.linking import link_all
    from sokhoe.mpi.matching import Matcher

    data = make_duplicates(patients, seed, DEMO_DUPLICATE_RATE)
    entries = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in data.extras
    ]
    process_bundle(repo, {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    with tqdm(total=len(data.extras), desc="matching", unit=" records", disable=None) as bar:
        report = link_all(repo, Matcher(repo), [p["id"] for p in data.extras], bar.update)
    print(  # noqa: T201
        f"{len(report.merged)} duplicates linked automatically, {report.queued} pairs await "
        "review (GET /fhir/Patient/$review-queue)"
    )


def demo_password(var_dir: Path) -> str:
    """The demo staff accounts' password: random per installation, kept beside the demo
    database (readable by its owner only) so every start can print it."""
    path = var_dir / "demo-password.txt"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = "demo-" + secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return password


def demo_accounts(
    repo: GuardedRepository,
    engine: Engine,
    base_url: str,
    var_dir: Path,
    *,
    hasher: PasswordHasher = STRONG,
) -> str:
    """Create (once) a demo doctor at a facility with recent visits, a demo analyst, and link
    a demo citizen's phone to their record; return how to sign in as each."""
    from sokhoe.access.accounts import create_user
    from sokhoe.access.otp import link_citizen, normalise_phone
    from sokhoe.mpi.identifiers import FACILITY

    query = repo.parse_query("Encounter", [("_sort", "-date"), ("_count", "50")])
    chosen: tuple[dict[str, Any], dict[str, Any], str] | None = None
    for match in repo.search(query).matches:  # a recent visit of someone with a phone
        encounter = match.content or {}
        subject = encounter.get("subject", {}).get("reference", "")
        if "serviceProvider" not in encounter or not subject.startswith("Patient/"):
            continue
        patient = repo.read("Patient", subject.split("/")[1]).content or {}
        phones = [t["value"] for t in patient.get("telecom", []) if t.get("system") == "phone"]
        if phones:
            chosen = (encounter, patient, phones[0])
            break
    if chosen is None:
        return "No recent visit of a person with a phone: no demo accounts were made."
    encounter, patient, phone = chosen
    org = repo.read("Organization", encounter["serviceProvider"]["reference"].split("/")[1])
    facility = next(
        i["value"] for i in (org.content or {}).get("identifier", []) if i["system"] == FACILITY
    )
    patient_id = patient["id"]
    password = demo_password(var_dir)
    for username, role, name, fac in (
        ("bacsi", "doctor", "BS. Demo", facility),
        ("phantich", "analyst", "Phân tích viên Demo", None),
    ):
        try:
            create_user(engine, username, password, role, name, facility=fac, hasher=hasher)
        except ValueError:
            pass  # made on an earlier start
    link_citizen(engine, normalise_phone(phone), patient_id)
    name = (patient.get("name") or [{}])[0]
    who = " ".join([name.get("family", ""), *name.get("given", [])]).strip()
    return "\n".join(
        [
            "Sign in to the demo (every /fhir request needs 'Authorization: Bearer <token>'):",
            f"  doctor at facility {facility}: POST {base_url}/auth/staff/sign-in "
            f'{{"username": "bacsi", "password": "{password}"}}; one of their patients: '
            f"GET {base_url}/fhir/Patient/{patient_id}/$everything",
            f"  citizen {who} (phone {phone}): POST {base_url}/auth/citizen/code "
            f'{{"phone": "{phone}"}}, read the code in var/sms-outbox.jsonl, then POST '
            f'{base_url}/auth/citizen/verify {{"phone": "{phone}", "code": "…"}}',
            f"  analyst (aggregates only; records are refused): POST {base_url}/auth/staff/"
            f'sign-in {{"username": "phantich", "password": "{password}"}}',
            "  a connected system: sokhoe client create --name HIS --facility "
            f"{facility} --scope 'system/*.cruds', then POST {base_url}/auth/token",
        ]
    )


def demo_clinic(
    repo: GuardedRepository,
    engine: Engine,
    base_url: str,
    var_dir: Path,
    p12_dir: Path | None,
    *,
    hasher: PasswordHasher = STRONG,
) -> str:
    """Set up the clinic pages' demo facilities and today's lists (see
    :mod:`sokhoe.clinic.demo`), a development certificate for each demo doctor and nurse in
    ``p12_dir`` (under the demo password), and a pharmacy near the station with a few of today's
    prescriptions (:mod:`sokhoe.prescribing.demo`); return how to sign in at ``/clinic`` and
    ``/pharmacy``."""
    from sokhoe.clinic.certificates import make_development_certificate
    from sokhoe.clinic.demo import ensure_clinic_demo, signers

    password = demo_password(var_dir)
    try:
        made = ensure_clinic_demo(repo, engine, password, hasher=hasher)
    except LookupError as exc:  # a store of its own, served with --demo: no demo facilities
        return f"No clinic demo: {exc}"
    if p12_dir is not None:
        for username, display in signers(made):
            if not (p12_dir / f"{username}.p12").exists():
                make_development_certificate(display, p12_dir / f"{username}.p12", password)
    from sokhoe.clinic.demo import STATION
    from sokhoe.prescribing.demo import ensure_pharmacy_demo

    station = next(s for s in made.sites if s.site is STATION)
    pharmacy = ensure_pharmacy_demo(
        repo,
        engine,
        password,
        station.facility,
        STATION.staff[-1][0],
        repo.clock(),
        hasher=hasher,
    )
    return made.sign_in_text(base_url, password) + "\n" + pharmacy.sign_in_text(base_url, password)


def demo_portal(repo: GuardedRepository, engine: Engine, base_url: str, var_dir: Path) -> str:
    """After :func:`demo_clinic`: the demo station's ward QR and a parent signed in with their
    phone who sees their child's book too (:mod:`sokhoe.portal.demo`); return how to try it."""
    from sokhoe.portal.demo import ensure_portal_demo

    try:
        made = ensure_portal_demo(repo, engine)
    except LookupError as exc:
        return f"No portal demo: {exc}"
    return made.sign_in_text(base_url, str(var_dir / "sms-outbox.jsonl"))
