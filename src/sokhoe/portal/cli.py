"""``sokhoe portal`` commands (the citizen portal's), registered by ``sokhoe.cli``: the posters
wards print, and the daily reminder job."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

portal_app = typer.Typer(
    help="The citizen portal (/portal): the posters wards print, the reminders it sends.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 (compared, not bound)


@portal_app.command("ward-qr")
def ward_qr(
    ward: Annotated[
        str, typer.Option(help="The ward's 5-digit statistics-office code, e.g. 26740")
    ],
    out: Annotated[Path, typer.Option(help="The poster to write: FILE.pdf, FILE.svg or FILE.png")],
    base_url: Annotated[
        str | None,
        typer.Option(help="The portal's public address (default: SOKHOE_BASE_URL)"),
    ] = None,
) -> None:
    """Make the A4 poster a ward committee prints: the ward's name, three steps, and a QR
    code residents scan to open their health book at {base-url}/portal/w/{ward}."""
    from sokhoe.config import Settings
    from sokhoe.portal.poster import UnknownWard, format_of, ward_poster, write

    address = base_url or Settings().base_url
    try:
        format_of(out)
        poster = ward_poster(ward, address)
    except UnknownWard as exc:
        typer.echo(
            f"error: no ward or commune has the code {ward!r}: give the 5-digit code of the "
            "statistics office (after the July 2025 reorganisation), e.g. 26740 for Phường "
            "Sài Gòn. No poster was written.",
            err=True,
        )
        raise typer.Exit(2) from exc
    except ValueError as exc:
        typer.echo(f"error: {exc}. No poster was written.", err=True)
        raise typer.Exit(2) from exc
    if (urlsplit(address).hostname or "") in _LOOPBACK:
        typer.echo(
            f"warning: the QR leads to {poster.url}, which only this computer can open; "
            "pass --base-url with the portal's public address before printing.",
            err=True,
        )
    write(poster, out)
    typer.echo(f"wrote the poster of {poster.ward.name}, {poster.province.name} to {out}")
    typer.echo(f"its QR opens {poster.url}")


@portal_app.command("remind")
def remind_command(
    db: DbOption = None,
    days: Annotated[int, typer.Option(help="Remind this many days before a dose falls due")] = 3,
    today: Annotated[
        str | None, typer.Option(help="The day to run for, YYYY-MM-DD (default: today in Vietnam)")
    ] = None,
) -> None:
    """Text parents (and people with their own linked phone) before a child's vaccination on
    the expanded programme falls due, once per dose; prints what it did as JSON. Run it daily
    from the deployment's scheduler (cron, a systemd timer)."""
    from sokhoe.access.db import access_engine
    from sokhoe.access.guard import platform_repository
    from sokhoe.access.sms import make_gateway
    from sokhoe.config import Settings
    from sokhoe.portal.reminders import remind

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    try:
        day = date.fromisoformat(today) if today else None
    except ValueError as exc:
        typer.echo(f"error: --today must be YYYY-MM-DD, not {today!r}", err=True)
        raise typer.Exit(2) from exc
    sms = make_gateway(
        settings.sms_gateway,
        settings.var_dir / "sms-outbox.jsonl",
        settings.sms_url,
        settings.sms_token,
        settings.sms_timeout,
    )
    store = settings.open_store()
    try:
        repo = platform_repository(store, settings.fhir_base, name="sokhoe-reminders")
        report = remind(
            repo, access_engine(store), sms, today=day, lead=timedelta(days=max(0, days))
        )
    finally:
        store.close()
    typer.echo(json.dumps(report.__dict__))
