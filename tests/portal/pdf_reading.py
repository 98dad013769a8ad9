"""Reading a PDF the portal made back, with a reader that is not its writer: poppler's
``pdfinfo`` and ``pdftotext`` (Debian's poppler-utils, installed by ``scripts/system-deps.sh``).
A PDF that poppler cannot open, or whose text does not come out, fails the test."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path


def _run(tool: str, body: bytes, *args: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.pdf"
        path.write_bytes(body)
        done = subprocess.run(
            [tool, *args, str(path), *(["-"] if tool.endswith("pdftotext") else [])],
            capture_output=True,
            check=True,
            timeout=30,
        )
    return done.stdout.decode("utf-8")


def pdf_text(body: bytes) -> str:
    """The text of every page, in reading order, whitespace collapsed."""
    assert body.startswith(b"%PDF-"), body[:20]
    return " ".join(_run("/usr/bin/pdftotext", body, "-layout").split())


def pdf_pages(body: bytes) -> int:
    """The page count poppler reads, checked against the page objects in the file."""
    info = _run("/usr/bin/pdfinfo", body)
    found = re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE)
    assert found is not None, info
    pages = int(found.group(1))
    assert pages == len(re.findall(rb"/Type\s*/Page\b(?!s)", body))
    return pages


__all__ = ["pdf_pages", "pdf_text"]
