"""``sokhoe signature verify`` (exit 0 valid, 1 not) and ``sokhoe signature dev-cert``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sokhoe.access.accounts import create_user, practitioner_of
from sokhoe.access.guard import platform_repository
from sokhoe.cli import app
from sokhoe.clinic.bank import bank_account
from sokhoe.clinic.certificates import common_name, is_development, load_pkcs12
from sokhoe.clinic.signing import sign_visit
from sokhoe.clinic.vietqr import BankAccount
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store.sql import SqlStore
from tests.clinic.world import P12_PASSWORD, make_clinic, tamper
from tests.conftest import FAST_HASHER


def test_verify_exits_0_for_a_valid_signature_and_1_once_the_content_changed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url)
    p12 = tmp_path / "bs.an.p12"
    result = CliRunner().invoke(
        app,
        ["signature", "dev-cert", "--name", "BS. Nguyễn Văn An", "--out", str(p12)],
        env={"SOKHOE_SIGNING_P12_PASSWORD": P12_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    clinic = make_clinic(store, p12)
    provenance = sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.pkcs12())
    command = ["signature", "verify", provenance["id"], "--db", url]
    ok = CliRunner().invoke(app, command)
    assert ok.exit_code == 0, ok.output
    answer = json.loads(ok.stdout)
    assert answer["valid"] is True and answer["method"] == "pkcs12-rsa-sha256"
    assert answer["sha256"] == answer["recomputed"]
    tamper(store, "Condition", clinic.ids["condition"], 1, {"code": {"text": "khác"}})
    bad = CliRunner().invoke(app, command)
    assert bad.exit_code == 1, bad.output
    answer = json.loads(bad.stdout)
    assert answer["valid"] is False
    assert any("signed content changed" in r for r in answer["reasons"])
    missing = CliRunner().invoke(app, ["signature", "verify", "no-such-id", "--db", url])
    assert missing.exit_code == 2
    store.close()


def test_dev_cert_writes_a_marked_two_year_certificate_under_its_password(tmp_path: Path) -> None:
    out = tmp_path / "certs" / "bs.p12"
    result = CliRunner().invoke(
        app,
        ["signature", "dev-cert", "--name", "BS. Lê Thị Hoa", "--out", str(out)],
        input="bí-mật-123\nbí-mật-123\n",
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o077 == 0  # readable by its owner only
    credential = load_pkcs12(out, "bí-mật-123")
    cert = credential.certificate
    assert common_name(cert) == "BS. Lê Thị Hoa" and is_development(cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=730)
    with pytest.raises(ValueError, match="wrong password"):
        load_pkcs12(out, "sai")


def test_clinic_setup_commands_add_rooms_a_bank_account_and_a_second_facility(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'setup.db'}"
    store = SqlStore(url)
    for code, name in (("01001", "Trạm Y tế A"), ("01002", "Bệnh viện B")):
        org = {
            "resourceType": "Organization",
            "id": f"org-{code}",
            "identifier": [{"system": FACILITY, "value": code}],
            "name": name,
        }
        platform_repository(store, "http://x/fhir", name="t").update(org, "Organization", org["id"])
    runner = CliRunner()
    rooms = ["clinic", "rooms", "01001", "Phòng khám 1", "Phòng tiêm", "--db", url]
    assert runner.invoke(app, rooms).exit_code == 0
    assert runner.invoke(app, rooms).exit_code == 0  # again: nothing new
    repo = platform_repository(store, "http://x/fhir", name="t")
    found = repo.search(repo.parse_query("Location", [("organization", "Organization/org-01001")]))
    assert sorted(m.content["name"] for m in found.matches if m.content) == [
        "Phòng khám 1",
        "Phòng tiêm",
    ]
    bad = runner.invoke(app, ["clinic", "bank", "01001", "97041", "123", "--db", url])
    assert bad.exit_code == 2 and "BIN" in bad.output
    ok = runner.invoke(app, ["clinic", "bank", "01001", "970415", "113366668888", "--db", url])
    assert ok.exit_code == 0, ok.output
    org = repo.read("Organization", "org-01001").content
    assert bank_account(org) == BankAccount("970415", "113366668888")
    create_user(
        store.writer,
        "bs.hai",
        "clinic-test-pass-1",
        "doctor",
        "BS. Hai",
        "01001",
        hasher=FAST_HASHER,
    )
    both = runner.invoke(app, ["user", "add-facility", "bs.hai", "01002", "--db", url])
    assert both.exit_code == 0 and "01001, 01002" in both.output
    assert (
        runner.invoke(app, ["user", "add-facility", "nobody", "01002", "--db", url]).exit_code == 2
    )
    store.close()


def test_user_practitioner_registers_the_clinician_with_their_certificate(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    store = SqlStore(url)
    registry = platform_repository(store, "http://testserver/fhir")
    org = {
        "resourceType": "Organization",
        "id": "org-a",
        "name": "Trạm Y tế Phường A",
        "identifier": [{"system": FACILITY, "value": "01001"}],
    }
    registry.update(org, "Organization", "org-a")
    create_user(
        store.writer,
        "bs.an",
        "mật-khẩu-dài-2026",
        "doctor",
        "BS. Nguyễn Văn An",
        "01001",
        hasher=FAST_HASHER,
    )
    command = ["user", "practitioner", "bs.an", "--cchn", "001234/HN-CCHN", "--db", url]
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 0, done.output
    pid = practitioner_of(store.writer, "bs.an")
    assert pid is not None and f"Practitioner/{pid}" in done.stdout
    practitioner = registry.read("Practitioner", pid).content or {}
    assert practitioner["identifier"][0]["value"] == "001234/HN-CCHN"
    assert practitioner["name"][0]["text"] == "BS. Nguyễn Văn An"
    roles = registry.search(registry.parse_query("PractitionerRole", [("practitioner", pid)]))
    assert [m.content["organization"]["reference"] for m in roles.matches] == [  # type: ignore[index]
        "Organization/org-a"
    ]
    again = CliRunner().invoke(app, [*command[:4], "009999/HN-CCHN", *command[5:]])
    assert again.exit_code == 0 and practitioner_of(store.writer, "bs.an") == pid  # kept
    unknown = CliRunner().invoke(
        app, ["user", "practitioner", "nobody", "--cchn", "1", "--db", url]
    )
    assert unknown.exit_code == 2 and "no active facility staff account" in unknown.output
