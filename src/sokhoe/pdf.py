"""PDF documents in Vietnamese: the health book a citizen downloads, a visit summary, a ward's
poster.

fpdf2 writes PDF in pure Python (no browser, no system library), but its built-in fonts are
Latin-1 only: Vietnamese letters (ư, ơ, ệ…) need a TrueType font embedded. DejaVu Sans covers
them; Debian ships it (``fonts-dejavu-core``, which ``scripts/system-deps.sh`` installs), and
python-barcode, already a dependency, carries DejaVu Sans Mono as a last resort, so a PDF can
always be made.
See: https://py-pdf.github.io/fpdf2/Unicode.html
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from fpdf import FPDF

FAMILY: Final = "sokhoe"
_DEBIAN: Final = Path("/usr/share/fonts/truetype/dejavu")


def font_files() -> tuple[Path, Path]:
    """(regular, bold) TrueType files with Vietnamese letters (also what the ward's poster
    measures and draws its PNG with, so its three formats wrap lines alike)."""
    regular, bold = _DEBIAN / "DejaVuSans.ttf", _DEBIAN / "DejaVuSans-Bold.ttf"
    if regular.exists():
        return regular, bold if bold.exists() else regular
    mono = Path(str(resources.files("barcode") / "fonts" / "DejaVuSansMono.ttf"))
    return mono, mono


class _Document(FPDF):
    """An FPDF whose every page ends with the same small footer lines and its page number
    (a paper copy of an electronic record says so on each sheet)."""

    def __init__(self, footer: Sequence[str]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_lines = tuple(footer)

    def footer(self) -> None:
        if not self.footer_lines:
            return
        self.set_y(-8 - 4 * len(self.footer_lines))
        self.set_font(FAMILY, size=8)
        self.set_text_color(80, 80, 80)
        for line in self.footer_lines:
            self.cell(0, 4, line, new_x="LMARGIN", new_y="NEXT", align="L")
        self.cell(0, 4, f"{self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def document(title: str, *, author: str = "sokhoe", footer: Sequence[str] = ()) -> FPDF:
    """An A4 portrait document with the Vietnamese font set as :data:`FAMILY` (styles ``""``
    and ``"B"``), one page begun, its metadata titled; ``footer`` lines, when given, end
    every page with the page number."""
    pdf = _Document(footer)
    regular, bold = font_files()
    pdf.add_font(FAMILY, "", str(regular))
    pdf.add_font(FAMILY, "B", str(bold))
    pdf.set_font(FAMILY, size=11)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("sokhoe")
    pdf.set_auto_page_break(auto=True, margin=15 + 4 * len(footer))
    pdf.add_page()
    return pdf


def to_bytes(pdf: FPDF) -> bytes:
    return bytes(pdf.output())


__all__ = ["FAMILY", "document", "font_files", "to_bytes"]
