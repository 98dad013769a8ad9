"""``sokhoe signature`` commands (registered by ``sokhoe.cli``): verify, dev-cert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

signature_app = typer.Typer(
    help="Electronic signatures of visits (Circular 13/2025/TT-BYT).", no_args_is_help=True
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
    from sokhoe.store.sql import open_store

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = open_store(settings.database_url)
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
