"""The ward's poster (``sokhoe portal ward-qr``): its QR, read by a decoder of its own (jsQR,
the copy the pages serve, run by node), opens the ward's landing page; the PDF carries the
ward's name in Vietnamese; the SVG is well-formed with the address; an unknown ward writes
nothing."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image
from pypdf import PdfReader
from typer.testing import CliRunner

from sokhoe.cli import app
from sokhoe.portal.poster import STEPS, TITLE
from sokhoe.web.i18n import gettext

ROOT = Path(__file__).resolve().parents[2]
JSQR = ROOT / "src" / "sokhoe" / "web" / "static" / "vendor" / "jsQR.js"
DECODER = Path(__file__).with_name("decode_qr.js")
BASE = "https://sokhoe.example.vn"
URL = f"{BASE}/portal/w/26740"
SVG = "{http://www.w3.org/2000/svg}"


def decoded(image: Image.Image, tmp_path: Path) -> str | None:
    """What jsQR reads in ``image`` (None when it finds no QR code)."""
    rgba = image.convert("RGBA")
    raw = tmp_path / "image.rgba"
    raw.write_bytes(rgba.tobytes())
    command = ["node", str(DECODER), str(JSQR), str(raw), str(rgba.width), str(rgba.height)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    found: str | None = json.loads(done.stdout)
    return found


def poster(tmp_path: Path, name: str, *extra: str) -> tuple[Path, str]:
    out = tmp_path / name
    args = ["portal", "ward-qr", "--ward", "26740", "--out", str(out), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_png_poster_s_qr_opens_the_ward_s_landing_page(tmp_path: Path) -> None:
    out, said = poster(tmp_path, "poster.png", "--base-url", BASE + "/")
    assert URL in said and "Phường Sài Gòn" in said
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (1654, 2339)  # A4 at 200 dpi
    assert decoded(image, tmp_path) == URL
    blank = Image.new("RGB", (400, 400), "white")  # the decoder does not invent a code
    assert decoded(blank, tmp_path) is None


def test_the_svg_poster_is_well_formed_with_the_address_and_a_readable_qr(
    tmp_path: Path,
) -> None:
    out, _ = poster(tmp_path, "poster.svg", "--base-url", BASE)
    root = ElementTree.parse(out).getroot()  # noqa: S314 (the file this test just made)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 210 297"
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert URL in texts and TITLE in texts
    assert "Phường Sài Gòn · Thành phố Hồ Chí Minh" in texts
    link = root.find(f"{SVG}a")
    assert link is not None and link.get("href") == URL
    # the QR path, drawn back module by module and read by jsQR
    path = root.find(f".//{SVG}path[@id='qr']")
    assert path is not None
    runs = re.findall(r"M(\d+),(\d+)h(\d+)v1h-\3z", path.get("d", ""))
    assert runs and "".join(f"M{c},{r}h{n}v1h-{n}z" for c, r, n in runs) == path.get("d")
    size = max(int(c) + int(n) for c, _, n in runs)
    scale, quiet = 8, 4
    image = Image.new("L", ((size + 2 * quiet) * scale,) * 2, 255)
    for c, r, n in runs:
        x, y = (int(c) + quiet) * scale, (int(r) + quiet) * scale
        image.paste(0, (x, y, x + int(n) * scale, y + scale))
    assert decoded(image, tmp_path) == URL


def test_the_pdf_poster_is_an_a4_page_in_vietnamese_with_the_ward_s_name(tmp_path: Path) -> None:
    out, _ = poster(tmp_path, "poster.pdf", "--base-url", BASE)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    text = " ".join(page.extract_text().split())
    for expected in ("Phường Sài Gòn", "Thành phố Hồ Chí Minh", TITLE, URL, *STEPS):
        assert expected in text, expected
    assert reader.metadata is not None and reader.metadata.title == f"{TITLE} — Phường Sài Gòn"


def test_the_poster_s_steps_are_the_landing_page_s() -> None:
    """The three steps printed are the Vietnamese of the landing page's three steps."""
    template = ROOT / "src" / "sokhoe" / "web" / "templates" / "portal" / "ward.html"
    steps = re.search(r'<ol class="steps">(.*?)</ol>', template.read_text(), re.S)
    assert steps is not None
    msgids = re.findall(r'_\("([^"]+)"\)', steps.group(1))
    assert [gettext("vi", "portal", m) for m in msgids] == list(STEPS)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--ward", "99999", "--out", "poster.pdf"], "no ward or commune has the code '99999'"),
        (["--ward", "Sài Gòn", "--out", "poster.png"], "no ward or commune has the code"),
        (["--ward", "26740", "--out", "poster.jpg"], "made as .pdf, .svg or .png"),
        (["--ward", "26740", "--out", "poster.svg", "--base-url", "javascript:x"], "web address"),
    ],
)
def test_a_wrong_ward_format_or_address_is_refused_and_writes_nothing(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    args = [a if not a.startswith("poster.") else str(tmp_path / a) for a in args]
    result = CliRunner().invoke(app, ["portal", "ward-qr", *args])
    assert result.exit_code == 2
    assert complaint in result.stderr and "No poster was written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_poster_pointing_at_this_computer_is_made_with_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "poster.pdf"
    result = CliRunner().invoke(
        app,
        ["portal", "ward-qr", "--ward", "00070", "--out", str(out)],
        env={"SOKHOE_BASE_URL": "http://127.0.0.1:8000"},
    )
    assert result.exit_code == 0 and out.exists()
    assert "only this computer can open" in result.stderr and "--base-url" in result.stderr
