"""The photo of a vaccination card a citizen may add to their declaration.

A phone's photo is several megabytes and carries where it was taken (EXIF GPS). Only real
JPEG, PNG or WebP images are accepted (their first bytes, then Pillow decoding them, not the
file name or the type the browser claims); each is turned upright, shrunk to at most
:data:`LONGEST` pixels and saved again as a JPEG without its metadata, so what is kept is a
small, readable picture of the card and nothing else. It is stored in the
``QuestionnaireResponse`` as the answer's ``Attachment``.
See: https://hl7.org/fhir/R4/datatypes.html#Attachment
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from datetime import datetime
from typing import Any, Final

from PIL import Image, ImageOps, UnidentifiedImageError

from sokhoe.fhir.resources import format_instant
from sokhoe.messages import Message

MAX_UPLOAD: Final = 10 * 1024 * 1024
"""Bytes accepted from the phone (a recent phone's photo is 2–6 MB)."""
LONGEST: Final = 1280
"""Pixels of the longer side kept: the card's handwriting stays readable."""
MAX_KEPT: Final = 350 * 1024
"""Bytes of the JPEG kept at most (the quality is lowered until it fits)."""
MAX_PIXELS: Final = 50_000_000
"""Larger images are refused before decoding (a "decompression bomb")."""
_SIGNATURES: Final = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)


class PhotoRefused(ValueError):
    """The upload is not a photo we keep; ``message`` says why (translated by the page)."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


def _kind(data: bytes) -> str | None:
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def card_photo(data: bytes, now: datetime) -> dict[str, Any]:
    """The ``Attachment`` of a vaccination card photo; :class:`PhotoRefused` otherwise."""
    if len(data) > MAX_UPLOAD:
        raise PhotoRefused(Message("The photo must be smaller than 10 MB"))
    kind = _kind(data)
    if kind is None:
        raise PhotoRefused(Message("The file must be a photo (JPEG, PNG or WebP)"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            if image.width * image.height > MAX_PIXELS:
                raise PhotoRefused(Message("The photo is too large; take it again"))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PhotoRefused(Message("The photo could not be read; take it again")) from exc
    except Image.DecompressionBombWarning as exc:
        raise PhotoRefused(Message("The photo is too large; take it again")) from exc
    upright = ImageOps.exif_transpose(image).convert("RGB")
    upright.thumbnail((LONGEST, LONGEST))
    kept = b""
    for quality in (80, 65, 50, 35):
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=quality, optimize=True)
        kept = out.getvalue()
        if len(kept) <= MAX_KEPT:
            break
    return {
        "contentType": "image/jpeg",
        "data": base64.b64encode(kept).decode("ascii"),
        "size": len(kept),
        "hash": base64.b64encode(hashlib.sha1(kept).digest()).decode("ascii"),  # noqa: S324 - R4 Attachment.hash is SHA-1
        "title": "Phiếu tiêm chủng",
        "creation": format_instant(now),
    }


__all__ = ["MAX_UPLOAD", "PhotoRefused", "card_photo"]
