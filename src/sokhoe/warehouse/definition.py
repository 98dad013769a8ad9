"""What an indicator is: the cells it publishes and how the dashboard shows them.

Kept apart from the catalogue (``warehouse/catalogue.py``) so that each family's indicators can
live in a module of their own (``warehouse/medication.py``) and still be one catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from sokhoe.warehouse.cells import Cube, Tier


def N_(message: str) -> str:
    """Mark an English text the dashboard shows translated: its ``dashboard`` catalogue
    (``web/catalogues.py``) collects the texts marked here. Downloads keep the English."""
    return message


@dataclass(frozen=True)
class Indicator:
    """One indicator: the cells it publishes and how to show them."""

    name: str
    family: str
    title: str
    cube: Cube
    by: Literal["area", "province", "commune", "facility"]
    """``area``: the rows are the chosen area's own cells (the nation, or the province of the
    filter); otherwise the rows are the cells of that tier within the chosen area."""
    columns: tuple[str, ...]
    order: tuple[str, ...] = ()
    """Sort keys of the published rows (``-`` for descending); hidden values sort last."""
    limit: int | None = None
    chart: str = "bar"
    x: str | None = None
    y: str | None = None
    color: str | None = None
    note: str = ""

    @property
    def people(self) -> tuple[str, ...]:
        """Columns holding protected counts."""
        return self.cube.counts

    @property
    def period(self) -> str | None:
        return self.cube.period


FACILITY: Final = Tier(
    "facility",
    ("province_code", "facility_code", "facility", "level"),
)
"""Facilities are leaves of their province but never added up (a person visits several)."""


__all__ = ["FACILITY", "N_", "Indicator"]
