"""Vaccinations (``/portal/vaccinations``): the expanded programme's schedule for the book shown
(one's own or a child's), with the doses given, due, overdue and upcoming.

The schedule and the statuses are ``portal/immunisation.py``; the Immunizations are read through
the citizen's door, so a profile cookie naming someone else's record shows one's own book
(``base.page``) and the page can show nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.portal.facilities import display_name
from sokhoe.portal.immunisation import VERSION, book_of
from sokhoe.web.pages.portal.base import Citizen, gettext, message, page, render

router = APIRouter()


@router.get("/vaccinations")
async def vaccinations_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        patient_id = citizen.patient_id
        if patient_id is None:
            text = gettext(request, "Your phone is not linked to a health record yet.")
            return message(request, citizen, "Vaccinations", text, 404)
        book = await run_in_threadpool(book_of, citizen.repo, patient_id)
        return render(
            request,
            "portal/vaccinations.html",
            title="Vaccinations",
            book=book,
            name=display_name(book.patient),
            version=VERSION,
        )

    return await page(request, show)
