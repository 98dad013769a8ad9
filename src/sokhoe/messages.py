"""Messages read by people in their own language, with the English text kept for the API.

Services explain a refusal in English: the FHIR API answers integrators with an
OperationOutcome whose ``diagnostics`` are English, and that answer does not change. The clinic
pages show the same refusal to a nurse in Vietnamese. A :class:`Message` keeps the English text
as a gettext message id with ``%(name)s`` placeholders, and the values apart, so a page looks the
id up in its catalogue and fills the placeholders in afterwards (``web/i18n.py``).

``Message(...)`` is an extraction keyword (``web/catalogues.py``): its id must be a literal
string, never an f-string, or the catalogue cannot find it. Values are written as they are,
except numbers (``int``, ``Decimal``, ``float``), which get the reader's thousands separators
(``150,000`` in English, ``150.000`` in Vietnamese; pass ``str(n)`` to keep digits as they
are, e.g. a year or a row number), and other messages, which are translated in turn.
See: https://docs.python.org/3/library/gettext.html
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import TypeAlias

Param: TypeAlias = "str | int | float | Decimal | Message"
Translate = Callable[[str], str]
Number = Callable[[int | float | Decimal], str]


def _same(text: str) -> str:
    return text


def english_number(value: int | float | Decimal) -> str:
    """``150,000``: the English grouping (what the English diagnostics always wrote)."""
    return f"{value:,}"


class Message:
    """An English message id and its values: ``str()`` is the English text."""

    __slots__ = ("msgid", "params")
    msgid: str
    params: Mapping[str, Param]

    def __init__(self, msgid: str, /, **params: Param) -> None:
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "params", MappingProxyType(dict(params)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Message does not change")

    def render(self, translate: Translate = _same, number: Number = english_number) -> str:
        """The text with ``translate`` applied to the id (and to messages among the values)."""
        text = translate(self.msgid) if self.msgid else ""  # gettext("") is the header
        if not self.params:
            return text
        return text % {k: _value(v, translate, number) for k, v in self.params.items()}

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self) -> tuple[Callable[..., Message], tuple[str, dict[str, Param]]]:
        """Pickled as its id and values (a bulk load validates in worker processes)."""
        return _restore, (self.msgid, dict(self.params))

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, {dict(self.params)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.msgid, dict(self.params)) == (
            other.msgid,
            dict(other.params),
        )

    def __hash__(self) -> int:
        return hash(self.msgid)


def _restore(msgid: str, params: dict[str, Param]) -> Message:
    return Message(msgid, **params)


def _value(value: Param, translate: Translate, number: Number) -> str:
    if isinstance(value, Message):
        return value.render(translate, number)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return number(value)
    return str(value)


Text = str | Message
"""What an error or issue is given to say: plain English (shown as it is) or a Message."""


def joined(items: Sequence[Text], separator: str = "; ") -> Message:
    """Several texts as one, each translated in turn (the joining itself has no words)."""
    names = [f"p{i}" for i in range(len(items))]
    msgid = separator.replace("%", "%%").join(f"%({n})s" for n in names)
    return Message(msgid, **dict(zip(names, items, strict=True)))


class InvalidValue(ValueError):
    """A ``ValueError`` that says why in a :class:`Message` (identifier checks raise it, and
    the operation that turns it into an error keeps the message)."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


def message_of(exc: BaseException) -> Text:
    """What ``exc`` says, as a Message when it carries one (one issue), else its English text."""
    if isinstance(exc, InvalidValue):
        return exc.message
    issues = getattr(exc, "issues", None)
    if isinstance(issues, list) and len(issues) == 1:
        found = getattr(issues[0], "message", None)
        if isinstance(found, Message):
            return found
    return str(exc)


__all__ = ["InvalidValue", "Message", "Param", "Text", "english_number", "joined", "message_of"]
