"""The portal's home (``/portal``): whose book is shown, and the way to each part of it.

A parent switches between their own book and a child's; the choice is a cookie the pages
check against the records the phone holds (``base.page``), so a forged cookie shows the
citizen's own book, never someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.errors import FhirError
from sokhoe.portal.facilities import display_name
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.base import PROFILE_COOKIE, Citizen, page, render

router = APIRouter()


@dataclass(frozen=True)
class Profile:
    patient_id: str
    name: str
    own: bool


def profiles(citizen: Citizen) -> list[Profile]:
    """The books this citizen may open: theirs first, then their children's."""
    found = []
    for pid in citizen.who.patient_ids:
        try:
            content = citizen.repo.read("Patient", pid).content or {}
        except FhirError:
            continue
        found.append(Profile(pid, display_name(content) or pid, pid == citizen.own))
    return sorted(found, key=lambda p: not p.own)


@router.get("")
async def home(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        people = await run_in_threadpool(profiles, citizen)
        shown = next((p for p in people if p.patient_id == citizen.patient_id), None)
        return render(
            request,
            "portal/home.html",
            title="Your electronic health book",
            profiles=people,
            shown=shown,
        )

    return await page(request, show)


@router.post("/profile")
async def switch(request: Request) -> Response:
    """Show another of the citizen's books (their own or a child's), then the portal's page
    ``next`` names (the home page otherwise)."""

    async def choose(citizen: Citizen) -> Response:
        form = await request.form()
        chosen = form_text(form, "patient")
        target = form_text(form, "next")
        ours = target.startswith("/portal/") and not target.startswith("//") and "\\" not in target
        response = common.redirect(request, target if ours else "/portal")
        if chosen in citizen.who.patient_ids:
            response.set_cookie(
                PROFILE_COOKIE,
                chosen,
                path="/portal",
                httponly=True,
                samesite="strict",
                secure=common.secure(request),
            )
        return response

    return await page(request, choose)
