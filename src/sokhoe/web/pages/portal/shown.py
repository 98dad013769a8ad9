"""The self-declaration's answers as a person reads them back on the "check your answers"
page (GOV.UK's summary list): one row per question, each with a link to change it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from starlette.requests import Request

from sokhoe.portal.questionnaire import Item, Section
from sokhoe.web.i18n import format_date
from sokhoe.web.pages.portal.base import gettext

VIETNAM: Final = timezone(timedelta(hours=7))


def today_in_vietnam(now: datetime) -> date:
    return now.astimezone(VIETNAM).date()


@dataclass(frozen=True)
class Row:
    question: str
    lines: list[str]
    href: str


def _one(item: Item, value: Any, request: Request) -> str:
    if item.kind == "boolean":
        return gettext(request, "Yes") if value else gettext(request, "No")
    if item.kind == "choice":
        option = item.option(str(value))
        return gettext(request, option.display) if option else str(value)
    if item.kind == "integer":
        unit = f" {gettext(request, item.unit)}" if item.unit else ""
        return f"{value}{unit}"
    if item.kind == "date":
        return format_date(str(value))
    if item.kind == "attachment":
        return gettext(request, "A photo was added")
    return str(value)


def _text(item: Item, value: Any, request: Request) -> list[str]:
    if item.kind == "group":
        lines = []
        for entry in value:
            parts = [
                _one(child, entry[child.link], request)
                for child in item.items
                if child.link in entry
            ]
            lines.append(" — ".join(parts))
        return lines
    if isinstance(value, list):
        return [", ".join(_one(item, v, request) for v in value)]
    return [line for line in _one(item, value, request).splitlines() if line.strip()]


def answer_rows(section: Section, answers: dict[str, Any], request: Request) -> list[Row]:
    """The section's answered questions, in order, with where to change each."""
    first = {i.link for i in section.first()}
    rows = []
    for item in section.items:
        if item.link not in answers:
            continue
        where = f"/portal/declare/{section.link}"
        href = where if item.link in first else f"{where}/details"
        question = gettext(request, item.text)
        rows.append(Row(question, _text(item, answers[item.link], request), href))
    return rows


__all__ = ["Row", "answer_rows", "today_in_vietnam"]
