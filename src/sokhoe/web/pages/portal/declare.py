"""``/portal/declare``: the self-declaration, one short screen at a time (the rules are in
``portal/declaration.py``, the questions in ``portal/sections.py``).

The task list shows each section done or not; a section asks its yes/no question, then its
details on a second screen; every screen is saved on the server as it is sent, so the resident
can stop and go on another day or phone; a "check your answers" page comes before sending.

Every form names the person it is about (``patient``): the one on the screen when it was
shown, so a parent with their own and their child's book open in two tabs writes where they
meant to. The name is only accepted if it is one of the records the phone holds now (their
own, or a child's confirmed by the station); anything else is refused and writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta, timezone
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from sokhoe.errors import FhirError, Forbidden
from sokhoe.messages import Message
from sokhoe.portal import declaration
from sokhoe.portal.declaration import Draft
from sokhoe.portal.facilities import display_name
from sokhoe.portal.patient import id_number, prefill
from sokhoe.portal.photo import MAX_UPLOAD
from sokhoe.portal.questionnaire import Item, Section
from sokhoe.portal.screens import MAX_ENTRIES, Screen, prune, read
from sokhoe.portal.sections import BY_LINK
from sokhoe.web.i18n import catalogue
from sokhoe.web.pages import common
from sokhoe.web.pages.portal.base import Citizen, page, render
from sokhoe.web.pages.portal.shown import answer_rows, today_in_vietnam

router = APIRouter()
VIETNAM: Final = timezone(timedelta(hours=7))


def _vietnamese(text: str) -> str:
    """Records are written in Vietnamese whatever the page's language."""
    return catalogue("vi", "portal").gettext(text)


class _Person:
    """The person declared for, as the pages show them."""

    def __init__(self, patient_id: str, content: dict[str, Any]) -> None:
        self.id = patient_id
        self.content = content
        self.name = display_name(content) or patient_id


def _person(citizen: Citizen, patient_id: str) -> _Person:
    return _Person(patient_id, citizen.repo.read("Patient", patient_id).content or {})


async def declaring(
    request: Request, work: Callable[[Citizen, str], Awaitable[Response]]
) -> Response:
    """Run ``work`` for the signed-in citizen and the person declared for: the shown profile
    on a GET, the form's ``patient`` on a POST (checked against the records the phone holds)."""

    async def run(citizen: Citizen) -> Response:
        if request.method == "POST":
            form = await request.form()
            named = form.get("patient")
            patient_id = named if isinstance(named, str) else ""
            if patient_id not in citizen.who.patient_ids:
                await run_in_threadpool(
                    citizen.repo.record_refusal,
                    "operation",
                    [patient_id] if patient_id else [],
                    "$declare: a form named a record the phone does not hold",
                )
                raise Forbidden(
                    Message("You can declare only for yourself or a child you are the guardian of")
                )
        else:
            if citizen.patient_id is None:
                return common.redirect(request, "/portal/claim")
            patient_id = citizen.patient_id
        return await work(citizen, patient_id)

    return await page(request, run)


def _sections(person: _Person, now: Any) -> tuple[Section, ...]:
    return declaration.sections_for(person.content, today_in_vietnam(now))


def _next(sections: tuple[Section, ...], draft: Draft, after: str) -> str:
    """Where to go when a section is finished: the next one not done yet, else the check."""
    links = [s.link for s in sections]
    start = links.index(after) + 1 if after in links else 0
    for link in links[start:] + links[:start]:
        if link not in draft.done:
            return f"/portal/declare/{link}"
    return "/portal/declare/check"


@router.get("/declare")
async def task_list(request: Request) -> Response:
    async def show(citizen: Citizen, patient_id: str) -> Response:
        person = await run_in_threadpool(_person, citizen, patient_id)
        draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
        sections = _sections(person, citizen.repo.clock())
        done = [s for s in sections if s.link in draft.done]
        return render(
            request,
            "portal/declare.html",
            title="Declare your health",
            person=person,
            draft=draft,
            sections=sections,
            finished=len(done),
        )

    return await declaring(request, show)


def _screen(
    request: Request,
    citizen: Citizen,
    person: _Person,
    section: Section,
    items: tuple[Item, ...],
    answers: dict[str, Any],
    *,
    details: bool,
    screen: Screen | None = None,
    counts: dict[str, int] | None = None,
    status: int = 200,
) -> Response:
    sections = _sections(person, citizen.repo.clock())
    links = [s.link for s in sections]
    record = {
        "name": person.name,
        "birth": person.content.get("birthDate"),
        "sex": person.content.get("gender"),
        "cccd": id_number(person.content),
        "phone": citizen.phone,
    }
    groups = {i.link: max(1, len(answers.get(i.link) or [])) for i in items if i.kind == "group"}
    groups.update(counts or {})
    return render(
        request,
        "portal/declare_step.html",
        status,
        title=section.title,
        person=person,
        section=section,
        items=items,
        answers=answers,
        details=details,
        problems=[(p.anchor, p.message) for p in (screen.problems if screen else [])],
        errors=screen.errors() if screen else {},
        counts=groups,
        position=links.index(section.link) + 1 if section.link in links else 0,
        total=len(links),
        record=record,
        action=f"/portal/declare/{section.link}{'/details' if details else ''}",
        max_entries=MAX_ENTRIES,
        max_upload=MAX_UPLOAD,
    )


def _section(link: str) -> Section:
    found = BY_LINK.get(link)
    if found is None:
        raise Forbidden(Message("There is no such question"))
    return found


@router.get("/declare/check")
async def check(request: Request) -> Response:
    async def show(citizen: Citizen, patient_id: str) -> Response:
        return await _check_page(request, citizen, patient_id)

    return await declaring(request, show)


async def _check_page(
    request: Request,
    citizen: Citizen,
    patient_id: str,
    status: int = 200,
    problems: list[tuple[str, Message]] | None = None,
) -> Response:
    person = await run_in_threadpool(_person, citizen, patient_id)
    draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
    sections = _sections(person, citizen.repo.clock())
    rows = [(s, answer_rows(s, draft.answers.get(s.link, {}), request)) for s in sections]
    missing = [s for s in sections if s.link not in draft.done]
    return render(
        request,
        "portal/declare_check.html",
        status,
        title="Check your answers before sending them",
        person=person,
        draft=draft,
        rows=rows,
        missing=missing,
        problems=problems or [],
    )


@router.post("/declare/submit")
async def submit(request: Request) -> Response:
    async def send(citizen: Citizen, patient_id: str) -> Response:
        today = today_in_vietnam(citizen.repo.clock())
        try:
            await run_in_threadpool(_submit, citizen, patient_id, today)
        except FhirError as refused:
            said = [
                ("send", issue.message or Message(issue.diagnostics)) for issue in refused.issues
            ]
            return await _check_page(request, citizen, patient_id, refused.status, said)
        return common.redirect(request, "/portal/declare/sent")

    return await declaring(request, send)


def _submit(citizen: Citizen, patient_id: str, today: date) -> declaration.Submission:
    return declaration.submit(citizen.repo, patient_id, translate=_vietnamese, today=today)


@router.get("/declare/sent")
async def sent(request: Request) -> Response:
    async def show(citizen: Citizen, patient_id: str) -> Response:
        person = await run_in_threadpool(_person, citizen, patient_id)
        return render(
            request, "portal/declare_sent.html", title="Your answers were sent", person=person
        )

    return await declaring(request, show)


@router.get("/declare/{link}")
async def first_screen(request: Request, link: str) -> Response:
    async def show(citizen: Citizen, patient_id: str) -> Response:
        section = _section(link)
        person = await run_in_threadpool(_person, citizen, patient_id)
        draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
        answers = draft.answers.get(section.link)
        if answers is None and section.link == "about":
            answers = prefill(person.content)
        return _screen(
            request, citizen, person, section, section.first(), answers or {}, details=False
        )

    return await declaring(request, show)


@router.get("/declare/{link}/details")
async def details_screen(request: Request, link: str) -> Response:
    async def show(citizen: Citizen, patient_id: str) -> Response:
        section = _section(link)
        person = await run_in_threadpool(_person, citizen, patient_id)
        draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
        answers = draft.answers.get(section.link, {})
        items = section.details(answers)
        if not items:
            return common.redirect(request, f"/portal/declare/{section.link}")
        return _screen(request, citizen, person, section, items, answers, details=True)

    return await declaring(request, show)


def _posted(form: FormData) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


async def _uploads(form: FormData) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile) and value.filename:
            found[key] = await value.read(MAX_UPLOAD + 1)
    return found


@router.post("/declare/{link}")
async def save_first(request: Request, link: str) -> Response:
    async def save(citizen: Citizen, patient_id: str) -> Response:
        section = _section(link)
        form = await request.form()
        person = await run_in_threadpool(_person, citizen, patient_id)
        draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
        before = draft.answers.get(section.link, {})
        items = section.first()
        screen = read(section, items, _posted(form), citizen.repo.clock())
        if screen.problems:
            answers = {**before, **screen.answers}
            return _screen(
                request,
                citizen,
                person,
                section,
                items,
                answers,
                details=False,
                screen=screen,
                status=400,
            )
        kept = {k: v for k, v in before.items() if k not in {i.link for i in items}}
        answers = prune(section, {**kept, **screen.answers})
        more = section.details(answers)
        saved = await run_in_threadpool(_save, citizen, patient_id, section, answers, not more)
        if more:
            return common.redirect(request, f"/portal/declare/{section.link}/details")
        return common.redirect(
            request, _next(_sections(person, citizen.repo.clock()), saved, section.link)
        )

    return await declaring(request, save)


def _save(
    citizen: Citizen, patient_id: str, section: Section, answers: dict[str, Any], done: bool
) -> Draft:
    return declaration.save(
        citizen.repo, patient_id, section, answers, done=done, translate=_vietnamese
    )


@router.post("/declare/{link}/details")
async def save_details(request: Request, link: str) -> Response:
    async def save(citizen: Citizen, patient_id: str) -> Response:
        section = _section(link)
        form = await request.form()
        person = await run_in_threadpool(_person, citizen, patient_id)
        draft = await run_in_threadpool(declaration.load, citizen.repo, patient_id)
        before = draft.answers.get(section.link, {})
        items = section.details(before)
        if not items:
            return common.redirect(request, f"/portal/declare/{section.link}")
        posted = _posted(form)
        action = (posted.get("action") or ["save"])[0]
        if action.startswith("remove-"):
            posted = _without_entry(items, posted, action.removeprefix("remove-"))
        screen = read(section, items, posted, citizen.repo.clock(), await _uploads(form), before)
        first = {k: v for k, v in before.items() if k in {i.link for i in section.first()}}
        answers = {**first, **screen.answers}
        if screen.problems:
            return _screen(
                request,
                citizen,
                person,
                section,
                items,
                answers,
                details=True,
                screen=screen,
                status=400,
            )
        counts = {}
        if action == "add":
            counts = {
                i.link: min(len(answers.get(i.link) or []) + 1, MAX_ENTRIES)
                for i in items
                if i.kind == "group"
            }
        if action != "save":
            await run_in_threadpool(_save, citizen, patient_id, section, answers, False)
            return _screen(
                request, citizen, person, section, items, answers, details=True, counts=counts
            )
        saved = await run_in_threadpool(_save, citizen, patient_id, section, answers, True)
        return common.redirect(
            request, _next(_sections(person, citizen.repo.clock()), saved, section.link)
        )

    return await declaring(request, save)


def _without_entry(
    items: tuple[Item, ...], posted: dict[str, list[str]], which: str
) -> dict[str, list[str]]:
    """The form as if entry ``which`` of the repeated group had not been there: the entries
    after it move up one."""
    if not which.isdigit():
        return posted
    gone = int(which)
    out = dict(posted)
    for item in items:
        if item.kind != "group":
            continue
        try:
            count = min(int((posted.get(f"{item.link}-count") or ["1"])[0]), MAX_ENTRIES)
        except ValueError:
            count = 1
        for i in range(gone, count):
            for child in item.items:
                for name, following in zip(_names(child, i), _names(child, i + 1), strict=True):
                    out[name] = posted.get(following, [])
        out[f"{item.link}-count"] = [str(max(count - 1, 1))]
    return out


def _names(item: Item, i: int) -> list[str]:
    base = f"{item.link}-{i}"
    return [f"{base}-day", f"{base}-month", f"{base}-year"] if item.kind == "date" else [base]
