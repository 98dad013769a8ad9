"""``sokhoe sync --upstream URL``: synchronise this station's database with its province.

Registered in ``sokhoe.cli`` as ``app.add_typer(sync_app, name="sync")``; the callback runs
the sync, so no sub-command is needed. Exit codes: 0 done (conflicts, if any, are listed and
wait in the review queue), 1 upstream refused some items, 2 bad arguments or credentials,
3 upstream unreachable or the connection lost mid-way (run again: nothing is lost).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sokhoe.config import Settings

sync_app = typer.Typer(
    help="Synchronise a station's database with an upstream server.",
    invoke_without_command=True,
)


@sync_app.callback()
def sync(
    upstream: Annotated[str, typer.Option(help="Upstream base URL, e.g. https://so-yte.vn")],
    client_id: Annotated[str, typer.Option(help="The station's client id upstream")],
    facility: Annotated[str, typer.Option(help="The station's facility code")],
    client_secret: Annotated[
        str,
        typer.Option(envvar="SOKHOE_SYNC_CLIENT_SECRET", help="Client secret", show_default=False),
    ],
    db: Annotated[
        str | None, typer.Option("--db", help="Local database URL (default: SOKHOE_DATABASE_URL)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per upstream request")] = 30.0,
) -> None:
    """Push local changes upstream, then pull the catchment's changes; print a summary."""
    from sokhoe.interop.sync.client import UpstreamRefused, UpstreamUnreachable
    from sokhoe.interop.sync.report import SyncInterrupted
    from sokhoe.interop.sync.run import SyncTarget, synchronise
    from sokhoe.mpi.identifiers import validate_facility_code

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    try:
        code = validate_facility_code(facility)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    target = SyncTarget(upstream, client_id, client_secret, code, timeout)
    store = settings.open_store()
    try:
        report = synchronise(store, settings.fhir_base, target, progress=True)
    except SyncInterrupted as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    except UpstreamUnreachable as exc:
        typer.echo(f"error: {exc}; nothing was changed", err=True)
        raise typer.Exit(3) from exc
    except UpstreamRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.close()
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)


__all__ = ["sync_app"]
