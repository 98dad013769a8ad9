"""``sokhoe portal`` commands (the citizen portal's), registered by ``sokhoe.cli``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

portal_app = typer.Typer(
    help="The citizen portal (/portal): the posters wards print.", no_args_is_help=True
)

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
