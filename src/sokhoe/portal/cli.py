"""``sokhoe portal`` commands, registered by ``sokhoe.cli``: the citizen portal's jobs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated

import typer

portal_app = typer.Typer(help="The citizen portal's jobs.", no_args_is_help=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


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
    from sokhoe.store.sql import open_store

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
    store = open_store(settings.database_url)
    try:
        repo = platform_repository(store, settings.fhir_base, name="sokhoe-reminders")
        report = remind(
            repo, access_engine(store), sms, today=day, lead=timedelta(days=max(0, days))
        )
    finally:
        store.close()
    typer.echo(json.dumps(report.__dict__))
