"""``/portal/sharing``: share codes with their QR, every consent the citizen gave and its
withdrawal, and the sensitive categories kept for the treating facilities. The work is
``portal/sharing.py``'s (over ``access/consent.py``), through the citizen's door."""

from __future__ import annotations

import io
from typing import Final

import segno
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.consent import Share
from sokhoe.access.sms import SmsGateway
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.messages import Message
from sokhoe.portal import sharing
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.base import DOMAIN, Citizen, gettext, message, page, render

router = APIRouter()

TITLE: Final = "Sharing and privacy"
DONE: Final = {
    "withdrawn": Message("Withdrawn: nobody can use that permission any more. We sent you an SMS."),
    "kept": Message("Saved. We sent you an SMS to confirm."),
    "opened": Message("Saved: those records are no longer kept private. We sent you an SMS."),
}
"""What the page says after a change (the ``done`` of the redirect; anything else: nothing)."""


def _qr(code: str) -> str:
    """The share code as an inline SVG QR (the desk's scanner types it in). Never a Micro QR
    (segno picks one for short text): phone cameras and many desk scanners do not read them.
    No width or height: the page's CSS sizes it to the screen."""
    buffer = io.BytesIO()
    qr = segno.make(code, error="m", micro=False)
    qr.save(buffer, kind="svg", border=4, xmldecl=False, svgns=True, title=code, omitsize=True)
    return buffer.getvalue().decode("utf-8")


async def _overview(
    request: Request, citizen: Citizen, problem: str | None = None, status: int = 200
) -> Response:
    if citizen.patient_id is None:
        text = gettext(request, "Your phone is not linked to a health record yet.")
        return message(request, citizen, TITLE, text)
    found = await run_in_threadpool(sharing.overview, citizen.repo, citizen.patient_id)
    done = DONE.get(request.query_params.get("done", ""))
    return render(
        request,
        "portal/sharing.html",
        status,
        title=TITLE,
        view=found,
        own=citizen.patient_id == citizen.own,
        days=sharing.DAYS,
        done=done,
        problem=problem,
    )


@router.get("/sharing")
async def sharing_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        return await _overview(request, citizen)

    return await page(request, show)


@router.post("/sharing/code")
async def make_code(request: Request) -> Response:
    """A new share code: shown once, with its QR (only its hash is kept)."""

    async def make(citizen: Citizen) -> Response:
        form = await request.form()
        raw = form_text(form, "days")
        if citizen.patient_id is None:
            return await _overview(request, citizen)
        if not raw.isdigit() or int(raw) not in sharing.DAYS:
            problem = gettext(request, "Choose how many days the facility may see the record.")
            return await _overview(request, citizen, problem, 400)
        found = await run_in_threadpool(sharing.overview, citizen.repo, citizen.patient_id)
        made: Share = await run_in_threadpool(
            lambda: sharing.make_code(
                citizen.repo,
                request.app.state.sms,
                citizen.phone,
                str(citizen.patient_id),
                int(raw),
                name=found.name,
                own=citizen.patient_id == citizen.own,
            )
        )
        return render(
            request,
            "portal/share_code.html",
            title="Your share code",
            code=made.code,
            qr=_qr(made.code),
            expires=made.expires,
            days=int(raw),
            name=found.name,
            own=citizen.patient_id == citizen.own,
        )

    return await page(request, make)


async def _change(request: Request, citizen: Citizen, done: str, work: str) -> Response:
    """Run one change of the form; the page again with the problem if it was refused."""
    form = await request.form()
    pid = citizen.patient_id
    if pid is None:
        return await _overview(request, citizen)
    own = pid == citizen.own
    gateway: SmsGateway = request.app.state.sms
    try:
        view = await run_in_threadpool(sharing.overview, citizen.repo, pid)
        if work == "withdraw":
            chosen = form_text(form, "consent")
            if chosen not in {g.consent_id for g in view.shares}:
                raise _not_listed()
            await run_in_threadpool(
                lambda: sharing.withdraw(
                    citizen.repo, gateway, citizen.phone, pid, chosen, name=view.name, own=own
                )
            )
        else:
            category = form_text(form, "category")
            kept = next((k for k in view.kept if k.code == category), None)
            if kept is None:
                raise _not_listed()
            if work == "keep":
                picked = [str(v) for v in form.getlist("facility") if isinstance(v, str)]
                await run_in_threadpool(
                    lambda: sharing.keep(
                        citizen.repo,
                        gateway,
                        citizen.phone,
                        pid,
                        category,
                        picked,
                        allowed=[f.code for f in view.treating],
                        replaces=kept.consent_ids,
                        name=view.name,
                        own=own,
                    )
                )
            elif kept.restricted:
                await run_in_threadpool(
                    lambda: sharing.open_up(
                        citizen.repo,
                        gateway,
                        citizen.phone,
                        pid,
                        kept.consent_ids,
                        name=view.name,
                        own=own,
                    )
                )
    except FhirError as exc:
        return await _overview(request, citizen, common.explain(request, exc, DOMAIN), exc.status)
    return common.redirect(request, f"/portal/sharing?done={done}")


def _not_listed() -> FhirError:
    return InvalidRequest(Message("That is not among the choices on this page; reload it."))


@router.post("/sharing/withdraw")
async def withdraw(request: Request) -> Response:
    """Withdraw a share code, waiting or entered: the facility loses access at once."""

    async def work(citizen: Citizen) -> Response:
        return await _change(request, citizen, "withdrawn", "withdraw")

    return await page(request, work)


@router.post("/sharing/keep")
async def keep(request: Request) -> Response:
    """Keep a sensitive category for the facilities that wrote it and those ticked."""

    async def work(citizen: Citizen) -> Response:
        return await _change(request, citizen, "kept", "keep")

    return await page(request, work)


@router.post("/sharing/open")
async def open_up(request: Request) -> Response:
    """Stop keeping a sensitive category private."""

    async def work(citizen: Citizen) -> Response:
        return await _change(request, citizen, "opened", "open")

    return await page(request, work)
