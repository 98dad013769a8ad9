"""My health book (``/portal/book``): the summary and lists of the profile shown, each visit
(``/portal/book/visits/{id}``) with its results in plain words, and the signed visit summary
as a PDF (``…/summary.pdf``).

The pages only carry ``portal/book.py`` and ``portal/visit.py``: every read goes through the
citizen's door, which keeps it to the records the phone holds, whatever id a link names.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

import segno
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.errors import NotFound
from sokhoe.messages import Message
from sokhoe.portal import printed, words
from sokhoe.portal.book import read_book
from sokhoe.portal.visit import read_visit
from sokhoe.web import i18n
from sokhoe.web.pages.portal.base import Citizen, gettext, message, page, render

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def qr_svg(text: str) -> str:
    """``text`` as a QR code in inline SVG, sized by the page's CSS (no image to fetch)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(
        buffer, kind="svg", scale=1, border=2, xmldecl=False, svgns=True, omitsize=True
    )
    return buffer.getvalue().decode("utf-8")


def vietnamese() -> printed.Wording:
    """How paper writes words, numbers and dates: in Vietnamese, whatever the page's language."""

    def number(value: Decimal, decimals: int) -> str:
        return i18n.format_number(float(value), "vi", decimals)

    return printed.Wording(
        say=lambda text: i18n.translate("vi", "portal", Message(text)) if text else "",
        number=number,
        date=i18n.format_date,
        datetime=i18n.format_datetime,
    )


def not_linked(request: Request) -> Response:
    """The book of a phone not linked to a record yet: empty, saying how to get one."""
    return render(request, "portal/book.html", title="My health book", book=None, words=words)


@router.get("/book")
async def book_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        if citizen.patient_id is None:
            return not_linked(request)
        lang = i18n.choose(request)
        book = await run_in_threadpool(read_book, citizen.repo, citizen.patient_id, lang)
        qrs = {p.code: qr_svg(p.code) for p in book.prescriptions if p.dispensable}
        return render(
            request,
            "portal/book.html",
            title="My health book",
            book=book,
            qrs=qrs,
            words=words,
            own=citizen.patient_id == citizen.own,
        )

    return await page(request, show)


def _no_visit(request: Request, citizen: Citizen) -> Response:
    text = gettext(request, "This visit is not in this health book")
    return message(request, citizen, "Visit not found", text, 404)


@router.get("/book/visits/{encounter_id}")
async def visit_page(request: Request, encounter_id: str) -> Response:
    async def show(citizen: Citizen) -> Response:
        if citizen.patient_id is None:
            return _no_visit(request, citizen)
        lang = i18n.choose(request)
        try:
            visit = await run_in_threadpool(
                read_visit, citizen.repo, citizen.patient_id, encounter_id, lang
            )
        except NotFound:
            return _no_visit(request, citizen)
        return render(request, "portal/visit.html", title="Visit", visit=visit, words=words)

    return await page(request, show)


@router.get("/book/visits/{encounter_id}/summary.pdf")
async def visit_summary(request: Request, encounter_id: str) -> Response:
    """The signed visit summary as the clinic prints it, for the citizen to keep or show."""

    async def download(citizen: Citizen) -> Response:
        pid = citizen.patient_id
        if pid is None:
            return _no_visit(request, citizen)

        def work() -> Response:
            try:
                visit = read_visit(citizen.repo, pid, encounter_id, "vi")
            except NotFound:
                return _no_visit(request, citizen)
            if visit.signature is None:
                text = gettext(
                    request,
                    "The doctor has not signed this visit yet: a signed summary can be "
                    "downloaded once they have",
                )
                return message(request, citizen, "Not signed yet", text, 409)
            repo = citizen.repo
            repo.record_access("print", [pid], visit.shown, reason="print: summary (citizen)")
            base = str(request.app.state.settings.base_url).rstrip("/")
            code = visit.signature.lookup_code
            url = f"{base}/clinic/visits/{encounter_id}/signature?code={code}"
            now: datetime = repo.clock()
            by = f"{citizen.who.display} (tải từ sổ sức khỏe điện tử)"
            body = printed.visit_summary_pdf(visit, vietnamese(), by, now, url)
            name = f"tom-tat-kham-{i18n.format_date(visit.row.start).replace('/', '-')}.pdf"
            return Response(
                body,
                media_type="application/pdf",
                headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
            )

        return await run_in_threadpool(work)

    return await page(request, download)


__all__ = ["NO_STORE", "not_linked", "qr_svg", "router", "vietnamese"]
