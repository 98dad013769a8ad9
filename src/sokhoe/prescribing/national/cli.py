"""``sokhoe prescriptions`` commands (registered by ``sokhoe.cli``): deliver the outbox to the
national prescription system apart from the web server, and show what waits."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated

import typer

prescriptions_app = typer.Typer(
    help="E-prescriptions and the national prescription system.", no_args_is_help=True
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@prescriptions_app.command("deliver")
def deliver_command(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit")] = False,
) -> None:
    """Send queued prescriptions and dispensing reports to the national system.

    Several may run at once (on several hosts): each row is claimed by one. Settings:
    SOKHOE_NATIONAL_RX_* (URL, app name and key, facility and doctor sign-ins, back-off).
    """
    from sokhoe.config import Settings
    from sokhoe.prescribing.national.runtime import build_deliverer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    deliverer = build_deliverer(settings, store)
    try:
        while True:
            report = deliverer.run_once()
            if once:
                typer.echo(json.dumps(report.__dict__))
                return
            if report.claimed < deliverer.batch:
                time.sleep(settings.national_rx_poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        deliverer.client.close()
        store.close()


@prescriptions_app.command("outbox")
def outbox_command(db: DbOption = None) -> None:
    """List the rows still waiting (one JSON object a line)."""
    from sokhoe.access.db import access_engine
    from sokhoe.config import Settings
    from sokhoe.prescribing.national.outbox import pending

    settings = Settings()
    store = settings.open_store(db)
    try:
        for row in pending(access_engine(store)):
            typer.echo(
                json.dumps(
                    {
                        "key": row.key,
                        "attempts": row.attempts,
                        "next_attempt": row.next_attempt.isoformat(),
                        "last_error": row.last_error,
                    },
                    ensure_ascii=False,
                )
            )
    finally:
        store.close()
