"""Reading one screen of the self-declaration from the posted form: answers, or the problems
to show in the error summary and beside each field (GOV.UK's error pattern).

Field names follow the questions' ``linkId``: a repeated group's entries are numbered
(``allergy-substance-0``), a date is three boxes (``vaccine-date-0-day``), a box's error links
to its first input. Nothing here writes: the page saves the answers through
``portal/declaration`` only when the screen has no problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from sokhoe.messages import Message
from sokhoe.mpi.identifiers import validate_bhyt
from sokhoe.portal.photo import PhotoRefused, card_photo
from sokhoe.portal.questionnaire import Item, Section, enabled

VIETNAM: Final = timezone(timedelta(hours=7))
MAX_ENTRIES: Final = 20
"""Entries of a repeated group (allergies, operations…) one screen keeps at most."""

Form = Mapping[str, list[str]]
"""The posted form: every value of each name (checkboxes repeat their name)."""


@dataclass(frozen=True)
class Problem:
    anchor: str
    """The id of the input the error summary links to."""
    message: Message


@dataclass
class Screen:
    """What a posted screen said: the answers it holds and the problems found."""

    answers: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, anchor: str, message: Message) -> None:
        self.problems.append(Problem(anchor, message))

    def errors(self) -> dict[str, Message]:
        """Each input's first problem, for the message beside it."""
        out: dict[str, Message] = {}
        for p in self.problems:
            out.setdefault(p.anchor, p.message)
        return out


def _one(form: Form, name: str) -> str:
    values = form.get(name) or []
    return values[0].strip() if values else ""


def _required(item: Item) -> Message:
    if item.error:
        return Message(item.error)
    return (
        Message("Select an answer")
        if item.kind in ("boolean", "choice")
        else Message("Answer this question")
    )


def anchor(item: Item, suffix: str = "") -> str:
    """The id of the item's first input (dates: the day box)."""
    name = f"{item.link}{suffix}"
    return f"{name}-day" if item.kind == "date" else name


def _value(item: Item, form: Form, suffix: str, screen: Screen, today: date) -> Any:
    """The answer to one (non-group) item, or None; problems noted on ``screen``."""
    name = f"{item.link}{suffix}"
    if item.kind == "boolean":
        text = _one(form, name)
        return {"yes": True, "no": False}.get(text)
    if item.kind == "choice" and item.repeats:
        chosen = [v for v in form.get(name) or [] if item.option(v) is not None]
        return list(dict.fromkeys(chosen)) or None
    if item.kind == "choice":
        text = _one(form, name)
        if text and item.option(text) is None:
            screen.problem(name, Message("Select one of the answers shown"))
            return None
        return text or None
    if item.kind == "integer":
        return _integer(item, _one(form, name), name, screen, today)
    if item.kind == "date":
        return _date(form, name, screen, today)
    text = " ".join(_one(form, name).split()) if item.kind == "string" else _one(form, name)
    if len(text) > item.max_length:
        screen.problem(name, Message("Use at most %(most)s characters", most=item.max_length))
        return None
    if text and item.link == "bhyt":
        try:
            return validate_bhyt(text.replace(" ", ""))
        except ValueError:
            screen.problem(
                name,
                Message("Enter the 15 characters of the card, for example DN4010123456789"),
            )
            return None
    return text or None


def _integer(item: Item, text: str, name: str, screen: Screen, today: date) -> int | None:
    if not text:
        return None
    low = item.low if item.low is not None else 0
    high = item.high if item.high is not None else 10**6
    is_year = low >= 1900
    if is_year:
        high = min(high, today.year)
    if not re.fullmatch(r"\d{1,7}", text.replace(".", "").replace(",", "")):
        screen.problem(name, Message("Enter a whole number, such as 3"))
        return None
    number = int(text.replace(".", "").replace(",", ""))
    if not low <= number <= high:
        if is_year:
            screen.problem(
                name, Message("Enter a year from %(low)s to %(high)s", low=str(low), high=str(high))
            )
        else:
            screen.problem(
                name, Message("Enter a number from %(low)s to %(high)s", low=low, high=high)
            )
        return None
    return number


def _date(form: Form, name: str, screen: Screen, today: date) -> str | None:
    """A partial date: the year, or month and year, or the whole date."""
    day, month, year = (_one(form, f"{name}-{part}") for part in ("day", "month", "year"))
    if not (day or month or year):
        return None
    anchor_id = f"{name}-day"
    if not re.fullmatch(r"\d{4}", year):
        screen.problem(anchor_id, Message("Enter the year with 4 digits, such as 2021"))
        return None
    if day and not month:
        screen.problem(anchor_id, Message("Enter the month too, or leave the day empty"))
        return None
    try:
        parts = [int(year), int(month or 1), int(day or 1)]
        when = date(*parts)
    except ValueError:
        screen.problem(anchor_id, Message("Enter a real date, for example 15 3 2021"))
        return None
    if when > today or int(year) < 1900:
        screen.problem(anchor_id, Message("The date must be in the past"))
        return None
    if day:
        return when.isoformat()
    return f"{when:%Y-%m}" if month else f"{when:%Y}"


def _entries(item: Item, form: Form, screen: Screen, today: date) -> list[dict[str, Any]]:
    """The filled entries of a repeated group; an entry left wholly empty is dropped."""
    try:
        count = min(int(_one(form, f"{item.link}-count") or "1"), MAX_ENTRIES)
    except ValueError:
        count = 1
    entries = []
    for i in range(count):
        suffix = f"-{i}"
        entry: dict[str, Any] = {}
        found = Screen()
        for child in item.items:
            value = _value(child, form, suffix, found, today)
            if value is not None:
                entry[child.link] = value
        if not entry and not found.problems:
            continue
        for child in item.items:
            if (
                child.required
                and child.link not in entry
                and not any(p.anchor == anchor(child, suffix) for p in found.problems)
            ):
                found.problem(anchor(child, suffix), _required(child))
            if child.other and entry.get(child.link) == "other" and child.other not in entry:
                found.problem(f"{child.other}{suffix}", Message("Write which one"))
        screen.problems += found.problems
        entries.append(entry)
    return entries


def read(
    section: Section,
    items: tuple[Item, ...],
    form: Form,
    now: datetime,
    uploads: Mapping[str, bytes] | None = None,
    kept: Mapping[str, Any] | None = None,
) -> Screen:
    """The answers ``form`` gives to ``items`` (one screen of ``section``).

    ``uploads`` are the files posted (by field name); ``kept`` the section's answers saved
    before, so an attachment not sent again (or asked to be removed) is kept or dropped."""
    screen = Screen()
    today = now.astimezone(VIETNAM).date()
    for item in items:
        if item.kind == "group" and item.repeats:
            entries = _entries(item, form, screen, today)
            if entries:
                screen.answers[item.link] = entries
            elif item.required:
                screen.problem(anchor(item.items[0], "-0"), _required(item))
            continue
        if item.kind == "attachment":
            _attachment(item, form, screen, now, uploads or {}, kept or {})
            continue
        value = _value(item, form, "", screen, today)
        if value is not None:
            screen.answers[item.link] = value
        elif item.required and not any(p.anchor == anchor(item) for p in screen.problems):
            screen.problem(anchor(item), _required(item))
    if section.one_of is not None and items and all(i.when is not None for i in items):
        links, error = section.one_of
        if not any(link in screen.answers for link in links):
            screen.problem(links[0], Message(error))
    return screen


def _attachment(
    item: Item,
    form: Form,
    screen: Screen,
    now: datetime,
    uploads: Mapping[str, bytes],
    kept: Mapping[str, Any],
) -> None:
    data = uploads.get(item.link) or b""
    if data:
        try:
            screen.answers[item.link] = card_photo(data, now)
        except PhotoRefused as refused:
            screen.problem(item.link, refused.message)
        return
    if item.link in kept and not _one(form, f"{item.link}-remove"):
        screen.answers[item.link] = kept[item.link]


def wanted(section: Section, answers: dict[str, Any]) -> tuple[Item, ...]:
    """The details screen's questions for these first-screen answers (may be none)."""
    return section.details(answers)


def prune(section: Section, answers: dict[str, Any]) -> dict[str, Any]:
    """``answers`` without those to questions that no longer apply (a "no" after a "yes"
    drops the allergies listed under the "yes")."""
    return {
        link: value
        for link, value in answers.items()
        if (item := section.item(link)) is not None and enabled(item, answers)
    }


__all__ = ["MAX_ENTRIES", "Form", "Problem", "Screen", "anchor", "prune", "read", "wanted"]
