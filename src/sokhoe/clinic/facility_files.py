"""Each facility's own price list and logo, from a folder the deployment keeps.

One deployment serves many facilities, and each registered its own price list with the
insurance portal (*danh mục dùng tại cơ sở*) and prints its own logo. Neither is part of the
clinical record, so they are files, not resources: ``SOKHOE_FACILITY_DIR/<code>/prices.csv``
(the CSV of :func:`~sokhoe.interop.claims.catalogue.load_catalogue`) and
``SOKHOE_FACILITY_DIR/<code>/logo.png`` (or ``logo.svg``). A facility without a list of its own
uses the built-in demo list; one without a logo prints its name only. Lists are read again when
their file changes, so a facility updating its prices needs no restart.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Final

from sokhoe.interop.claims.catalogue import Catalogue, demo_catalogue, load_catalogue
from sokhoe.mpi.identifiers import validate_facility_code

LOGOS: Final = {"logo.png": "image/png", "logo.svg": "image/svg+xml"}
MAX_LOGO: Final = 512 * 1024
"""A logo larger than this is not printed (a mistake, not a logo)."""

_lock = threading.Lock()
_cache: dict[Path, tuple[float, Catalogue]] = {}
_demo = demo_catalogue()


def _folder(root: Path | None, code: str) -> Path | None:
    if root is None:
        return None
    return root / validate_facility_code(code)  # a code, never a path from outside


def price_list(root: Path | None, code: str) -> Catalogue:
    """The facility's price list (its CSV when it has one, else the demo list)."""
    folder = _folder(root, code)
    path = folder / "prices.csv" if folder is not None else None
    if path is None or not path.is_file():
        return _demo
    stamp = path.stat().st_mtime
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    catalogue = load_catalogue(path)  # ValueError names the bad line
    with _lock:
        _cache[path] = (stamp, catalogue)
    return catalogue


def logo_data_uri(root: Path | None, code: str) -> str | None:
    """The facility's logo as a data URI for its printouts, or None."""
    folder = _folder(root, code)
    if folder is None:
        return None
    for name, media in LOGOS.items():
        path = folder / name
        if path.is_file() and path.stat().st_size <= MAX_LOGO:
            return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    return None


__all__ = ["logo_data_uri", "price_list"]
