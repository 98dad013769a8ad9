"""Take my record with me (``/portal/download``): the whole record of the profile shown as a FHIR
JSON file (``record.json``) and as a printable Vietnamese health book (``book.pdf``).

Both are reads through the citizen's door (audited), then recorded as an export or a print;
neither may be kept by a browser or proxy cache (``Cache-Control: no-store``).
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.portal import printed
from sokhoe.portal.book import read_book
from sokhoe.portal.download import record_bundle, record_printed
from sokhoe.web import i18n
from sokhoe.web.pages.portal.base import Citizen, gettext, message, page, render
from sokhoe.web.pages.portal.book import NO_STORE, vietnamese

router = APIRouter()


def _attachment(body: bytes, media_type: str, name: str) -> Response:
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=media_type, headers=headers)


def _file_name(citizen: Citizen, now: datetime, extension: str) -> str:
    day = i18n.local(now)
    stamp = day.strftime("%Y-%m-%d") if day else ""
    return f"so-suc-khoe-{citizen.patient_id}-{stamp}.{extension}"


def _nothing(request: Request, citizen: Citizen) -> Response:
    text = gettext(request, "Your phone is not linked to a health record yet.")
    return message(request, citizen, "Nothing to download yet", text, 404)


@router.get("/download")
async def download_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        return render(request, "portal/download.html", title="Take my record with me")

    return await page(request, show)


@router.get("/download/record.json")
async def record_json(request: Request) -> Response:
    """Every resource of the record as one FHIR ``searchset`` Bundle (``Patient/$everything``)."""

    async def send(citizen: Citizen) -> Response:
        pid = citizen.patient_id
        if pid is None:
            return _nothing(request, citizen)
        now: datetime = citizen.repo.clock()
        bundle = await run_in_threadpool(record_bundle, citizen.repo, pid, now)
        body = json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8")
        return _attachment(body, "application/fhir+json", _file_name(citizen, now, "json"))

    return await page(request, send)


@router.get("/download/book.pdf")
async def book_pdf(request: Request) -> Response:
    """The printable health book, in Vietnamese (QĐ 31/QĐ-BYT's content, in its order)."""

    async def send(citizen: Citizen) -> Response:
        pid = citizen.patient_id
        if pid is None:
            return _nothing(request, citizen)

        def work() -> bytes:
            book = read_book(citizen.repo, pid, "vi")
            record_printed(citizen.repo, pid, len(book.record.resources))
            return printed.health_book_pdf(book, vietnamese(), citizen.repo.clock())

        body = await run_in_threadpool(work)
        now: datetime = citizen.repo.clock()
        return _attachment(body, "application/pdf", _file_name(citizen, now, "pdf"))

    return await page(request, send)


__all__ = ["router"]
