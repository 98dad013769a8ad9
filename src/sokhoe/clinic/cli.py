"""``sokhoe signature`` (verify, dev-cert) and ``sokhoe clinic`` (rooms, bank) commands,
registered by ``sokhoe.cli``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

signature_app = typer.Typer(
    help="Electronic signatures of visits (Circular 13/2025/TT-BYT).", no_args_is_help=True
)

clinic_app = typer.Typer(
    help="Setting a facility up for the clinic pages: its rooms and bank account.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@signature_app.command("verify")
def verify_command(
    provenance_id: Annotated[str, typer.Argument(help="The id of the signature Provenance")],
    db: DbOption = None,
) -> None:
    """Check a signature against the versions it signed; prints the result as JSON, exit
    code 1 when it is not valid."""
    from sokhoe.access.guard import platform_repository
    from sokhoe.clinic.verify import verify_signature
    from sokhoe.config import Settings
    from sokhoe.errors import FhirError

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    try:
        repo = platform_repository(store, settings.fhir_base, name="sokhoe-signature")
        result = verify_signature(repo, provenance_id)
    except FhirError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.close()
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    if not result.valid:
        raise typer.Exit(1)


@signature_app.command("dev-cert")
def dev_cert_command(
    name: Annotated[str, typer.Option(help="The practitioner's name (the certificate's CN)")],
    out: Annotated[Path, typer.Option(help="The PKCS#12 file to write, e.g. var/p12/an.p12")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SOKHOE_SIGNING_P12_PASSWORD",
            help="Its password (asked for, or SOKHOE_SIGNING_P12_PASSWORD)",
        ),
    ],
) -> None:
    """Make a self-signed development certificate and key (2 years) in a PKCS#12 file. It is
    marked as such and proves nothing about who signs: for demos and tests only."""
    from sokhoe.clinic.certificates import make_development_certificate

    try:
        written = make_development_certificate(name, out, password)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote the development certificate of {name} to {written}")


def _registry(db: str | None) -> tuple[Any, Any]:
    """The store and the platform's door to the registry (rooms and facilities are registry
    resources: only the platform or a registry administrator writes them)."""
    from sokhoe.access.guard import platform_repository
    from sokhoe.config import Settings

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    return store, platform_repository(store, settings.fhir_base, name="sokhoe-clinic-setup")


@clinic_app.command("rooms")
def rooms_command(
    facility: Annotated[str, typer.Argument(help="The facility code (mã CSKCB)")],
    names: Annotated[list[str], typer.Argument(help="Room names, e.g. 'Phòng khám 1'")],
    db: DbOption = None,
) -> None:
    """Add examination rooms to a facility (running it again changes nothing)."""
    from sokhoe.clinic.setup import add_rooms
    from sokhoe.errors import FhirError

    store, repo = _registry(db)
    try:
        ids = add_rooms(repo, facility, names)
    except FhirError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.close()
    typer.echo(f"{facility}: {len(ids)} rooms")


@clinic_app.command("bank")
def bank_command(
    facility: Annotated[str, typer.Argument(help="The facility code (mã CSKCB)")],
    bank_bin: Annotated[str, typer.Argument(help="The bank's 6-digit NAPAS BIN")],
    account: Annotated[str, typer.Argument(help="The account number VietQR codes pay into")],
    db: DbOption = None,
) -> None:
    """Record the facility's bank account for VietQR payments."""
    from sokhoe.clinic.setup import set_bank_account
    from sokhoe.clinic.vietqr import BankAccount, vietqr_payload
    from sokhoe.errors import FhirError

    store, repo = _registry(db)
    try:
        vietqr_payload(bank_bin, account, 1)  # the same checks a payment code will make
        set_bank_account(repo, facility, BankAccount(bank_bin, account))
    except FhirError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.close()
    typer.echo(f"{facility}: VietQR pays into {bank_bin} {account}")
