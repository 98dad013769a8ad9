"""Languages of the pages: Vietnamese first, English on request.

Every page is Vietnamese whatever the browser's ``Accept-Language`` says (the people the pages
are for read Vietnamese; a browser installed in English must not switch a station's screens),
and English is chosen by ``?lang=en`` or the switch on every page, remembered in a cookie.
Printed legal forms render with ``lang="vi"`` always.

Messages are written in English in the templates and the code (``{% trans %}``, ``_()``), and
translated by Babel message catalogues, one domain per area (``clinic``, ``dashboard``…) so
that each area's catalogue can be kept on its own: ``web/locales/vi/LC_MESSAGES/{domain}.po``.
The ``.po`` files are the source; they are compiled in memory when first used, so no build
output is kept in the repository.
See: https://babel.pocoo.org/en/latest/messages.html and
https://jinja.palletsprojects.com/en/stable/extensions/#i18n-extension
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import Response

from sokhoe.messages import Message, Text

Lang = Literal["vi", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("vi", "en")
DEFAULT: Final[Lang] = "vi"
COOKIE: Final = "sokhoe_lang"
DOMAINS: Final = ("clinic", "dashboard", "portal")
LOCAL_TIME: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_ONE_YEAR: Final = 365 * 24 * 3600


def choose(request: Request) -> Lang:
    """``?lang=`` when it names a language we have, else the cookie, else Vietnamese."""
    for value in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if value in LANGUAGES:
            return value
    return DEFAULT


def remember(request: Request, response: Response, lang: Lang) -> None:
    """Keep a language chosen by ``?lang=`` in the cookie (not a secret: readable by scripts,
    so the switch works without a round trip)."""
    if request.query_params.get("lang") == lang and request.cookies.get(COOKIE) != lang:
        response.set_cookie(COOKIE, lang, max_age=_ONE_YEAR, path="/", samesite="lax")


def po_path(domain: str, lang: str = "vi") -> Path:
    """The ``.po`` file of ``domain`` in ``lang``: the catalogue's source."""
    return (
        Path(str(resources.files("sokhoe.web"))) / "locales" / lang / "LC_MESSAGES" / f"{domain}.po"
    )


@cache
def catalogue(lang: str, domain: str) -> NullTranslations:
    """The compiled translations of ``domain`` into ``lang`` (English is the source)."""
    if lang == "en":
        return NullTranslations()
    with po_path(domain, lang).open("rb") as po:
        messages = read_po(po, locale=lang, domain=domain)
    buffer = BytesIO()
    write_mo(buffer, messages)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def gettext(lang: str, domain: str, message: str, **variables: Any) -> str:
    """``message`` in ``lang``, with ``%(name)s`` placeholders filled from ``variables``."""
    text = catalogue(lang, domain).gettext(message)
    return text % variables if variables else text


def translate(lang: str, domain: str, text: Text) -> str:
    """What a service said (``sokhoe.messages``) in ``lang``: a Message through the catalogue,
    with numbers grouped the way ``lang`` writes them; plain English text as it is."""
    if not isinstance(text, Message):
        return text
    found = catalogue(lang, domain)
    if lang == "vi":
        return text.render(found.gettext, lambda n: f"{n:,}".translate(_VIETNAMESE_DIGITS))
    return text.render(found.gettext)


def ngettext(lang: str, domain: str, singular: str, plural: str, n: int, **variables: Any) -> str:
    text = catalogue(lang, domain).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


@pass_context
def _gettext(context: Context, message: str) -> str:
    """The template's ``_()``: Jinja's new-style wrapper fills the ``%(name)s`` variables."""
    return catalogue(context.get("lang", DEFAULT), context.get("domain", "clinic")).gettext(message)


@pass_context
def _say(context: Context, text: Text) -> str:
    """The template's ``say`` filter: what the code said (a label, a problem; ``str`` or a
    :class:`~sokhoe.messages.Message`) in the rendering's language."""
    lang, domain = context.get("lang", DEFAULT), context.get("domain", "clinic")
    return translate(lang, domain, text if isinstance(text, Message) else Message(text))


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    found = catalogue(context.get("lang", DEFAULT), context.get("domain", "clinic"))
    return found.ngettext(singular, plural, n)


def local(value: datetime | str | None) -> datetime | None:
    """An instant in Vietnam's time (records keep UTC offsets; people read local time)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(LOCAL_TIME)


def format_date(value: date | datetime | str | None) -> str:
    """``dd/mm/yyyy``, as Vietnamese forms write dates; partial FHIR dates keep their part.
    Nothing (also a template's undefined field: the desk's view of someone typed by ID number
    has no birth date) gives an empty string."""
    if not value:
        return ""
    if isinstance(value, str):
        if len(value) == 4:
            return value
        if len(value) == 7:
            return f"{value[5:7]}/{value[:4]}"
        if len(value) == 10:
            return f"{value[8:10]}/{value[5:7]}/{value[:4]}"
        moment = local(value)
        return moment.strftime("%d/%m/%Y") if moment else ""
    if isinstance(value, datetime):
        value = local(value) or value
    return value.strftime("%d/%m/%Y")


def format_time(value: datetime | str | None) -> str:
    """``HH:MM`` in Vietnam's time."""
    moment = local(value)
    return moment.strftime("%H:%M") if moment else ""


def format_datetime(value: datetime | str | None) -> str:
    moment = local(value)
    return moment.strftime("%H:%M %d/%m/%Y") if moment else ""


_VIETNAMESE_DIGITS: Final = str.maketrans({",": ".", ".": ","})


def format_number(value: float | None, lang: str = DEFAULT, decimals: int | None = None) -> str:
    """Thousands and decimals as ``lang`` writes them: ``1.234,5`` in Vietnamese, ``1,234.5``
    in English; a whole number (an ``int``) with no decimals, others with one unless told."""
    if value is None:
        return ""
    if decimals is None:
        decimals = 0 if isinstance(value, int) else 1
    text = f"{value:,.{decimals}f}"
    return text.translate(_VIETNAMESE_DIGITS) if lang == "vi" else text


@pass_context
def _number(context: Context, value: float | None, decimals: int | None = None) -> str:
    """The template's ``number`` filter, in the rendering's language."""
    return format_number(value, context.get("lang", DEFAULT), decimals)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue where it is written (``N_`` is a name extraction looks
    for) and leave it in English: it is translated where it is shown (a label in a table, a
    title passed to a template)."""
    return message


def format_money(value: float | int | None) -> str:
    """Vietnamese đồng with dots between thousands: ``1.234.000 ₫``."""
    if value is None:
        return ""
    return f"{round(value):,}".replace(",", ".") + " ₫"


def environment() -> Environment:
    """The pages' template environment, with ``{% trans %}`` and ``_()`` that translate into
    the ``lang`` of the rendering context (each render passes its own: one environment serves
    requests in both languages at once)."""
    env = Environment(
        loader=FileSystemLoader(str(resources.files("sokhoe.web") / "templates")),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
    env.filters.update(
        date=format_date,
        time=format_time,
        datetime=format_datetime,
        money=format_money,
        number=_number,
        say=_say,
    )
    return env


__all__ = [
    "COOKIE",
    "DEFAULT",
    "LANGUAGES",
    "N_",
    "Lang",
    "catalogue",
    "choose",
    "environment",
    "format_date",
    "format_datetime",
    "format_money",
    "format_number",
    "format_time",
    "gettext",
    "ngettext",
    "po_path",
    "remember",
    "translate",
]
