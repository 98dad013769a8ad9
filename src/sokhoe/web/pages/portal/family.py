"""My family (``/portal/family``): the children whose books the station confirmed, the requests
still waiting, and adding a child (one small group of questions, then "check your answers").

The services are ``portal/family.py``; what a request finds is never shown (see there).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.ratelimit import RateLimited
from sokhoe.errors import InvalidRequest
from sokhoe.portal import family
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.base import DOMAIN, Citizen, gettext, message, page, render
from sokhoe.web.pages.portal.home import profiles

router = APIRouter()


@router.get("/family")
async def family_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        def work() -> Response:
            children = [p for p in profiles(citizen) if not p.own]
            asked = family.requests(citizen.repo, citizen.phone) if citizen.phone else []
            return render(
                request,
                "portal/family.html",
                title="My family",
                children=children,
                asked=[r for r in asked if r.status != "confirmed"],
            )

        return await run_in_threadpool(work)

    return await page(request, show)


def _form(request: Request, status: int = 200, **context: Any) -> Response:
    values = {"kind": "cccd", "number": "", "relationship": "", "problem": None, "field": None}
    return render(
        request, "portal/family_add.html", status, title="Add a child", **{**values, **context}
    )


@router.get("/family/add")
async def add_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        if citizen.phone is None:
            return _no_phone(request, citizen)
        query = request.query_params  # "change your answers" comes back with them
        return _form(
            request,
            kind=query.get("kind", "cccd"),
            number=query.get("number", "")[:40],
            relationship=query.get("relationship", ""),
        )

    return await page(request, show)


def _no_phone(request: Request, citizen: Citizen) -> Response:
    text = gettext(
        request, "Sign in with your mobile number to add a child: the station confirms it."
    )
    return message(request, citizen, "Add a child", text, 403)


@router.post("/family/add")
async def add(request: Request) -> Response:
    """Check the answers, then (``send``) send the request."""

    async def submit(citizen: Citizen) -> Response:
        form = await request.form()
        typed = {k: form_text(form, k) for k in ("kind", "number", "relationship")}
        if citizen.phone is None:
            return _no_phone(request, citizen)
        try:
            asked = family.checked(typed["kind"], typed["number"], typed["relationship"])
        except InvalidRequest as exc:
            problem = common.explain(request, exc, DOMAIN)
            field = exc.issues[0].expression if exc.issues else None
            return _form(request, 400, problem=problem, field=field, **typed)
        if not form_text(form, "send"):
            return render(
                request, "portal/family_check.html", title="Check your answers", asked=asked
            )
        phone = citizen.phone
        try:
            await run_in_threadpool(
                family.request_child, citizen.repo, citizen.engine, phone, asked
            )
        except RateLimited:
            text = gettext(
                request,
                "You sent several requests today. Try again tomorrow, or ask at the health "
                "station.",
            )
            return message(request, citizen, "Add a child", text, 429)
        text = gettext(
            request,
            "Request sent. Bring the child's birth certificate and your personal ID to the "
            "health station: once it has checked them, the child's health book appears "
            "here. If the child is not registered yet, the station registers them then.",
        )
        return message(request, citizen, "Request sent", text)

    return await page(request, submit)
