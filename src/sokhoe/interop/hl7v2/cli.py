"""``sokhoe hl7`` commands (registered by ``sokhoe.cli``): listen, send, load-conceptmap."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

hl7_app = typer.Typer(help="HL7 v2 over MLLP.", no_args_is_help=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@hl7_app.command("listen")
def listen_command(
    port: Annotated[int, typer.Option(help="TCP port to listen on (2575 is customary)")],
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    db: DbOption = None,
) -> None:
    """Receive HL7 v2 messages over MLLP and answer each with an ACK or NACK.

    Who may send for which facility: SOKHOE_HL7_ALLOWED_SOURCES, e.g.
    '{"79001": ["10.20.0.0/24"]}' (list 127.0.0.1/32 for an engine on this machine). Loopback
    speaks for every facility only with SOKHOE_HL7_ALLOW_LOOPBACK=true (development).
    """
    from sokhoe.config import Settings
    from sokhoe.interop.hl7v2.mllp import AllowList, ListenerLimits, MllpServer
    from sokhoe.interop.hl7v2.processor import Hl7Processor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    try:
        allow = AllowList.from_settings(settings.hl7_allowed_sources, settings.hl7_allow_loopback)
    except ValueError as exc:
        raise typer.BadParameter(f"SOKHOE_HL7_ALLOWED_SOURCES: {exc}") from exc
    if not allow.networks and not allow.loopback:
        typer.echo(
            "warning: no facility may send: set SOKHOE_HL7_ALLOWED_SOURCES (or, for "
            "development, SOKHOE_HL7_ALLOW_LOOPBACK=true)",
            err=True,
        )
    limits = ListenerLimits(
        settings.hl7_max_message_bytes, settings.hl7_idle_timeout, settings.hl7_read_timeout
    )
    store = settings.open_store()
    server = MllpServer(Hl7Processor(store, settings.fhir_base), allow, limits)

    async def run() -> None:
        bound = await server.start(host, port)
        typer.echo(f"HL7 v2 MLLP listener on {host}:{bound}", err=True)
        await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@hl7_app.command("send")
def send_command(
    files: Annotated[list[Path], typer.Argument(help="ER7 files, one message each")],
    host: Annotated[str, typer.Option(help="Listener address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listener port")] = 2575,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each ACK")] = 30.0,
) -> None:
    """Send messages over MLLP and print each ACK; exit 1 if any was not accepted (AA)."""
    from sokhoe.interop.hl7v2.mllp import as_bytes, send

    messages = [as_bytes(f.read_text(encoding="utf-8")) for f in files]
    acks = send(messages, host, port, timeout=timeout)
    failed = False
    for path, ack in zip(files, acks, strict=True):
        typer.echo(f"# {path}")
        typer.echo(ack.replace("\r", "\n").rstrip())
        msa = next((line for line in ack.split("\r") if line.startswith("MSA|")), "")
        failed |= msa.split("|")[1:2] != ["AA"]
    sys.exit(1 if failed else 0)


@hl7_app.command("load-conceptmap")
def load_conceptmap_command(
    file: Annotated[Path, typer.Argument(help="A ConceptMap JSON file (local codes → LOINC)")],
    db: DbOption = None,
) -> None:
    """Store (create or replace by id) a facility's ConceptMap of local codes.

    The same as ``PUT /fhir/ConceptMap/{id}`` by a platform client.
    """
    from sokhoe.access.guard import platform_repository
    from sokhoe.config import Settings

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    resource = json.loads(file.read_text(encoding="utf-8"))
    if resource.get("resourceType") != "ConceptMap" or not resource.get("id"):
        raise typer.BadParameter("the file must hold a ConceptMap with an id")
    store = settings.open_store()
    try:
        repo = platform_repository(store, settings.fhir_base, name="sokhoe-hl7")
        outcome = repo.update(resource, "ConceptMap", resource["id"])
    finally:
        store.close()
    typer.echo(f"ConceptMap/{outcome.resource.id} version {outcome.resource.version_id}")
