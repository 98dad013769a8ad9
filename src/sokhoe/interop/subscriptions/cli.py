"""``sokhoe subscriptions`` commands (registered by ``sokhoe.cli``): run the dispatcher apart
from the web server, and list what is registered."""

from __future__ import annotations

import json
import logging
import signal
from typing import Annotated, Any

import typer

subscriptions_app = typer.Typer(
    help="FHIR Subscriptions (rest-hook notifications).", no_args_is_help=True
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@subscriptions_app.command("run")
def run_command(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit")] = False,
) -> None:
    """Deliver notifications: follow the record history, send to the subscribers' endpoints.

    One dispatcher sends at a time per database (a lease row); start this on one host, or on
    several for failover. Settings: SOKHOE_SUBSCRIPTION_* (poll, back-off, attempts, timeout).
    """
    from sokhoe.access.db import access_engine
    from sokhoe.config import Settings
    from sokhoe.interop.subscriptions.runtime import build_dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    dispatcher = build_dispatcher(settings, store, access_engine(store))
    try:
        if once:
            report = dispatcher.run_once()
            typer.echo(json.dumps(report.__dict__))
            return

        def _stop(_signum: int, _frame: Any) -> None:
            dispatcher.request_stop()

        signal.signal(signal.SIGTERM, _stop)
        typer.echo("Subscription dispatcher running (Ctrl-C to stop)", err=True)
        try:
            dispatcher.run_forever()
        except KeyboardInterrupt:
            pass
    finally:
        dispatcher.stop()
        store.close()


@subscriptions_app.command("list")
def list_command(db: DbOption = None) -> None:
    """Print the registered Subscriptions (owner, criteria, endpoint, status), one JSON a line.

    Header values are not printed (they are credentials).
    """
    from sokhoe.access.db import access_engine
    from sokhoe.config import Settings
    from sokhoe.interop.subscriptions import registry

    settings = Settings()
    store = settings.open_store(db)
    try:
        for reg in registry.listed(access_engine(store)):
            line = {
                "id": reg.id,
                "owner": reg.owner.subject,
                "facility": reg.owner.facility,
                "criteria": reg.criteria,
                "endpoint": reg.endpoint,
                "status": reg.status,
                "error": reg.error,
            }
            typer.echo(json.dumps(line, ensure_ascii=False))
    finally:
        store.close()


__all__ = ["subscriptions_app"]
