"""The ward's poster (*áp phích của phường*): the A4 page a ward committee prints and pins up,
with a QR code residents scan to open their health book (``/portal/w/{ward code}``).

One layout, three formats: the page is laid out once in millimetres (lines wrapped with the
widths of the DejaVu font that :mod:`sokhoe.pdf` embeds), then drawn as a PDF (fpdf2, the
font embedded: what a committee prints), an SVG (text and a vector QR, for a print shop or a
larger format) and a PNG (Pillow at 200 dpi, for a message or a website). The QR is drawn
module by module from segno's matrix in every format, so it stays sharp at any size.

The text is Vietnamese whatever language the server speaks (a printed notice for residents):
the three steps are the landing page's (``web/templates/portal/ward.html`` in the ``portal``
catalogue); a test keeps the two the same.
See: https://segno.readthedocs.io/ and https://py-pdf.github.io/fpdf2/
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import segno
from PIL import Image, ImageDraw, ImageFont

from sokhoe.pdf import FAMILY, document, font_files, to_bytes
from sokhoe.registry.places import Province, Ward, ward_by_code

Format = Literal["pdf", "svg", "png"]
FORMATS: Final[tuple[Format, ...]] = ("pdf", "svg", "png")

TITLE: Final = "Sổ sức khỏe điện tử"
LEAD: Final = (
    "Giữ hồ sơ sức khỏe trên điện thoại của bạn: khai báo một lần, trạm y tế xã, phường sẽ "
    "cùng bạn kiểm tra."
)
STEPS: Final = (
    "Đăng nhập bằng số điện thoại: chúng tôi gửi mã qua tin nhắn.",
    "Khai báo sức khỏe: dị ứng, bệnh, tiêm chủng, mỗi lần vài câu hỏi.",
    "Trạm y tế xác nhận những gì bạn khai ở lần khám tới.",
)
"""The landing page's three steps, in Vietnamese (the ``portal`` catalogue's translations)."""
SCAN: Final = "Quét mã bằng camera điện thoại để bắt đầu"
TYPE: Final = "Hoặc mở trình duyệt và gõ địa chỉ:"
FREE: Final = "Miễn phí. Không cần cài ứng dụng."

PAGE_W, PAGE_H = 210.0, 297.0
"""A4 portrait, millimetres."""
MARGIN: Final = 15.0
QR_SIZE: Final = 110.0
"""Width of the QR's modules (mm): 3 mm a module or more, readable from a metre or two."""
QUIET: Final = 4
"""The quiet zone the QR standard asks for, in modules (kept white around the code)."""
DPI: Final = 200
INK, BRAND, WHITE = "#1b1f23", "#0b5d4b", "#ffffff"
_PT: Final = 25.4 / 72  # one typographic point in millimetres


class UnknownWard(LookupError):
    """No ward or commune has this statistics-office code."""


@dataclass(frozen=True)
class Poster:
    """What the poster says: the ward, where its QR leads."""

    ward: Ward
    province: Province
    url: str


def landing_url(base_url: str, ward_code: str) -> str:
    """The ward's landing page, which the poster's QR opens."""
    return f"{base_url.rstrip('/')}/portal/w/{ward_code}"


def ward_poster(ward_code: str, base_url: str) -> Poster:
    """The poster of the ward with this 5-digit code, its QR leading to ``base_url``.

    Raises :class:`UnknownWard` for a code no ward has, ValueError for a base URL a phone
    could not open (not http or https, or no host).
    """
    found = ward_by_code(ward_code)
    if found is None:
        raise UnknownWard(f"No ward or commune has the code {ward_code!r}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(f"not a web address the poster can point to: {base_url!r}")
    ward, province = found
    return Poster(ward, province, landing_url(base_url, ward.code))


def format_of(path: Path) -> Format:
    """The format a file name asks for (``.pdf``, ``.svg`` or ``.png``)."""
    suffix = path.suffix.lower().lstrip(".")
    for known in FORMATS:
        if suffix == known:
            return known
    raise ValueError(f"{path.name}: the poster is made as .pdf, .svg or .png")


def render(poster: Poster, fmt: Format) -> bytes:
    """The poster as a file of format ``fmt``."""
    layout = _layout(poster)
    if fmt == "pdf":
        return _pdf(poster, layout)
    if fmt == "svg":
        return _svg(poster, layout).encode("utf-8")
    return _png(layout)


def write(poster: Poster, path: Path) -> Path:
    """Render the poster in the format ``path`` names and write it there (only once rendered:
    a failure leaves no half-written file)."""
    data = render(poster, format_of(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    """Baseline, mm from the top."""
    size: float
    """Points."""
    bold: bool
    text: str
    centred: bool = True
    colour: str = INK


@dataclass(frozen=True)
class _Disc:
    cx: float
    cy: float
    r: float
    colour: str = BRAND


@dataclass(frozen=True)
class _Qr:
    x: float
    y: float
    module: float
    """Side of one module, mm."""
    matrix: tuple[bytearray, ...]


@dataclass(frozen=True)
class _Layout:
    texts: tuple[_Text, ...]
    discs: tuple[_Disc, ...]
    qr: _Qr


@cache
def _font(bold: bool) -> ImageFont.FreeTypeFont:
    """The font at 1000 px an em: widths measured with it are em fractions × 1000."""
    regular, heavy = font_files()
    return ImageFont.truetype(str(heavy if bold else regular), 1000)


def text_width(text: str, size: float, bold: bool) -> float:
    """Width of ``text`` in millimetres at ``size`` points."""
    return _font(bold).getlength(text) / 1000 * size * _PT


def _wrap(text: str, size: float, bold: bool, width: float) -> list[str]:
    """``text`` cut into lines no wider than ``width`` mm, at spaces."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and text_width(candidate, size, bold) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def qr_matrix(url: str) -> tuple[bytearray, ...]:
    """The QR code's modules (1 dark) for ``url``: error correction M at least, raised as
    far as the same size allows (a poster gets dirty, torn, photographed at an angle)."""
    code = segno.make_qr(url, error="m", boost_error=True)
    return tuple(bytearray(row) for row in code.matrix)


def _layout(poster: Poster) -> _Layout:
    texts: list[_Text] = []
    width = PAGE_W - 2 * MARGIN
    centre = PAGE_W / 2
    y = MARGIN + 4

    def block(text: str, size: float, bold: bool, leading: float, colour: str = INK) -> None:
        nonlocal y
        for line in _wrap(text, size, bold, width):
            y += leading
            texts.append(_Text(centre, y, size, bold, line, colour=colour))

    block(f"{poster.ward.name} · {poster.province.name}", 17, True, 0, BRAND)
    block(TITLE, 36, True, 16)
    y += 5
    block(LEAD, 13, False, 6.5)
    y += 6
    discs = []
    text_x = MARGIN + 13
    for number, step in enumerate(STEPS, start=1):
        lines = _wrap(step, 14, False, PAGE_W - MARGIN - text_x)
        y += 11
        discs.append(_Disc(MARGIN + 4.5, y - 1.7, 4.5))
        texts.append(_Text(MARGIN + 4.5, y + 0.3, 13, True, str(number), colour=WHITE))
        for index, line in enumerate(lines):
            texts.append(_Text(text_x, y + index * 6.5, 14, False, line, centred=False))
        y += (len(lines) - 1) * 6.5
    y += 13
    block(SCAN, 15, True, 0)
    matrix = qr_matrix(poster.url)
    module = QR_SIZE / len(matrix)
    top = y + QUIET * module - 2
    qr = _Qr(centre - QR_SIZE / 2, top, module, matrix)
    y = top + QR_SIZE + QUIET * module - 1
    block(TYPE, 12, False, 0)
    size = 16.0
    while text_width(poster.url, size, True) > width and size > 9:
        size -= 0.5  # a long address: smaller, but on one line (it is typed letter by letter)
    block(poster.url, size, True, 8)
    texts.append(_Text(centre, PAGE_H - MARGIN + 4, 11, False, FREE, colour=BRAND))
    return _Layout(tuple(texts), tuple(discs), qr)


def _runs(matrix: tuple[bytearray, ...]) -> Iterator[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules."""
    for row, cells in enumerate(matrix):
        col = 0
        while col < len(cells):
            if cells[col]:
                start = col
                while col < len(cells) and cells[col]:
                    col += 1
                yield row, start, col - start
            else:
                col += 1


# -- the three formats --------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _pdf(poster: Poster, layout: _Layout) -> bytes:
    pdf = document(f"{TITLE} — {poster.ward.name}")
    pdf.set_auto_page_break(False)
    pdf.set_subject(poster.url)
    for disc in layout.discs:
        pdf.set_fill_color(*_rgb(disc.colour))
        pdf.ellipse(disc.cx - disc.r, disc.cy - disc.r, 2 * disc.r, 2 * disc.r, style="F")
    for t in layout.texts:
        pdf.set_font(FAMILY, "B" if t.bold else "", t.size)
        pdf.set_text_color(*_rgb(t.colour))
        x = t.x - pdf.get_string_width(t.text) / 2 if t.centred else t.x
        pdf.text(x, t.y, t.text)
    qr = layout.qr
    pdf.set_fill_color(0, 0, 0)
    for row, col, length in _runs(qr.matrix):
        x, y = qr.x + col * qr.module, qr.y + row * qr.module
        pdf.rect(x, y, length * qr.module, qr.module, style="F")
    pdf.link(qr.x, qr.y, QR_SIZE, QR_SIZE, poster.url)  # a PDF read on screen opens it too
    return to_bytes(pdf)


def _svg(poster: Poster, layout: _Layout) -> str:
    qr = layout.qr
    path = "".join(f"M{c},{r}h{n}v1h-{n}z" for r, c, n in _runs(qr.matrix))
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_W:g}mm" height="{PAGE_H:g}mm" '
        f'viewBox="0 0 {PAGE_W:g} {PAGE_H:g}" lang="vi">',
        f"<title>{escape(TITLE)} — {escape(poster.ward.name)}</title>",
        f'<rect width="{PAGE_W:g}" height="{PAGE_H:g}" fill="{WHITE}"/>',
        *(
            f'<circle cx="{d.cx:.2f}" cy="{d.cy:.2f}" r="{d.r:.2f}" fill="{d.colour}"/>'
            for d in layout.discs
        ),
        '<g font-family="DejaVu Sans, Verdana, Arial, sans-serif">',
        *(_svg_text(t) for t in layout.texts),
        "</g>",
        f"<a href={quoteattr(poster.url)}>",
        f'<path id="qr" transform="translate({qr.x:.3f} {qr.y:.3f}) scale({qr.module:.5f})" '
        f'fill="#000" shape-rendering="crispEdges" d="{path}"/>',
        "</a>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _svg_text(t: _Text) -> str:
    weight = ' font-weight="bold"' if t.bold else ""
    anchor = ' text-anchor="middle"' if t.centred else ""
    return (
        f'<text x="{t.x:.2f}" y="{t.y:.2f}" font-size="{t.size * _PT:.3f}" fill="{t.colour}"'
        f"{weight}{anchor}>{escape(t.text)}</text>"
    )


def _png(layout: _Layout) -> bytes:
    scale = DPI / 25.4  # pixels a millimetre

    def px(mm: float) -> int:
        return round(mm * scale)

    image = Image.new("RGB", (px(PAGE_W), px(PAGE_H)), WHITE)
    draw = ImageDraw.Draw(image)
    for d in layout.discs:
        draw.ellipse((px(d.cx - d.r), px(d.cy - d.r), px(d.cx + d.r), px(d.cy + d.r)), d.colour)
    regular, heavy = font_files()
    for t in layout.texts:
        font = ImageFont.truetype(str(heavy if t.bold else regular), t.size * _PT * scale)
        anchor = "ms" if t.centred else "ls"
        draw.text((t.x * scale, t.y * scale), t.text, fill=t.colour, font=font, anchor=anchor)
    qr = layout.qr
    for row, col, length in _runs(qr.matrix):
        x0, y0 = qr.x + col * qr.module, qr.y + row * qr.module
        x1, y1 = x0 + length * qr.module, y0 + qr.module
        draw.rectangle((px(x0), px(y0), px(x1) - 1, px(y1) - 1), fill="#000000")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()


__all__ = [
    "FORMATS",
    "STEPS",
    "TITLE",
    "Format",
    "Poster",
    "UnknownWard",
    "format_of",
    "landing_url",
    "qr_matrix",
    "render",
    "text_width",
    "ward_poster",
    "write",
]
