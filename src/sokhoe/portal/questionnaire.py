"""The self-declaration form as data: sections of a few questions, and the FHIR
``Questionnaire`` the server publishes from them.

One definition serves three readers: the portal's pages (each :class:`Section` is a task of the
task list, asked one short screen at a time), the extraction of the answers into the record
(``portal/extraction.py``), and any FHIR client, which reads the published ``Questionnaire``
(``Questionnaire/self-declaration``, written at every start like the NamingSystems) and the
``QuestionnaireResponse`` a citizen leaves in their record.

A section starts with its yes/no (or never/now/before) question; the questions that depend on
it carry ``enableWhen`` and are asked on a second screen only when they apply, as the GOV.UK
pattern asks "Do you have any allergies?" before "Which ones?". Texts are written in English
as message ids (``N_``): the pages translate them with the portal's catalogue, and the
published Questionnaire is in Vietnamese with the English in the FHIR translation extension.
See: https://hl7.org/fhir/R4/questionnaire.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

URL: Final = "https://fhir.sokhoe.vn/Questionnaire/self-declaration"
VERSION: Final = "2026.1"
ID: Final = "self-declaration"
CANONICAL: Final = f"{URL}|{VERSION}"
VERSIONS: Final = (VERSION,)
"""Every version a stored response may name (the store matches a canonical as written)."""
DECLARATION: Final = "https://fhir.sokhoe.vn/CodeSystem/declaration"
"""Our own codes for answers and observation parts that LOINC/SNOMED do not name (or where
we could not confirm their code); each answer's meaning is its display in the Questionnaire."""
TRANSLATION: Final = "http://hl7.org/fhir/StructureDefinition/translation"
HIDDEN: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
ITEM_CONTROL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
WOMEN_ONLY: Final = "%patient.gender = 'female'"
ENABLE_EXPRESSION: Final = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"
)

Kind = Literal["boolean", "choice", "string", "text", "integer", "date", "attachment", "group"]
Answer = bool | str | int | dict[str, Any]
"""One answer: a boolean, an option's code, text, a number, a date (``yyyy[-mm[-dd]]``) or
an attachment."""


def N_(message: str) -> str:
    """Mark ``message`` for the portal catalogue; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Option:
    code: str
    display: str
    """English message id."""
    system: str = DECLARATION

    def coding(self, translate: Callable[[str], str]) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": translate(self.display)}


@dataclass(frozen=True)
class Item:
    """One question (or a repeating group of them: an allergy is a kind, a what and a
    reaction)."""

    link: str
    text: str
    kind: Kind
    required: bool = False
    repeats: bool = False
    options: tuple[Option, ...] = ()
    hint: str | None = None
    error: str | None = None
    """What to say when a required answer is missing (GOV.UK: name the question)."""
    when: tuple[str, bool | str] | None = None
    """Asked only when the question ``when[0]`` has the answer ``when[1]``."""
    items: tuple[Item, ...] = ()
    low: int | None = None
    high: int | None = None
    max_length: int = 200
    unit: str | None = None
    """What a number counts (shown after its box)."""
    other: str | None = None
    """The text question that must be answered when this choice is ``other``."""
    more: str | None = None
    """A repeated group's "add another" button ("Add another allergy")."""

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    @property
    def select(self) -> bool:
        """A long single choice is a drop-down list, a short one radio buttons."""
        return self.kind == "choice" and not self.repeats and len(self.options) > 8


@dataclass(frozen=True)
class Section:
    """One task of the task list."""

    link: str
    title: str
    items: tuple[Item, ...]
    intro: str | None = None
    women_only: bool = False
    from_age: int = 0
    """Asked of people this old or older (tobacco is not asked of a toddler's parent)."""
    record: tuple[tuple[str, str], ...] = field(default=())
    """Read-only lines from the record shown on the first screen (name, birth date…)."""
    one_of: tuple[tuple[str, ...], str] | None = None
    """On the details screen at least one of these questions is answered, else the error."""

    def first(self) -> tuple[Item, ...]:
        """The first screen: the questions that depend on nothing."""
        return tuple(i for i in self.items if i.when is None)

    def details(self, answers: dict[str, Any]) -> tuple[Item, ...]:
        """The second screen: the questions the first screen's answers call for."""
        return tuple(i for i in self.items if i.when is not None and enabled(i, answers))

    def item(self, link: str) -> Item | None:
        return next((i for i in walk(self.items) if i.link == link), None)


def enabled(item: Item, answers: dict[str, Any]) -> bool:
    """Whether ``item`` applies given the section's ``answers`` (its ``enableWhen``)."""
    if item.when is None:
        return True
    question, wanted = item.when
    given = answers.get(question)
    values = given if isinstance(given, list) else [given]
    return wanted in values


def walk(items: tuple[Item, ...]) -> Iterator[Item]:
    for item in items:
        yield item
        yield from walk(item.items)


def applies(section: Section, gender: str | None, age: int | None) -> bool:
    """Whether the section is asked of this person (sex and age from the record)."""
    if section.women_only and gender != "female":
        return False
    return not (age is not None and age < section.from_age)


# -- the FHIR Questionnaire -------------------------------------------------------------------


def _text(text: str, translate: Callable[[str], str]) -> tuple[str, dict[str, Any]]:
    """Vietnamese text and its English translation extension (``_text``)."""
    english = {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": text},
                ],
            }
        ]
    }
    return translate(text), english


def _item(item: Item, translate: Callable[[str], str]) -> dict[str, Any]:
    text, english = _text(item.text, translate)
    out: dict[str, Any] = {"linkId": item.link, "text": text, "_text": english}
    out["type"] = "text" if item.kind == "text" else item.kind
    if item.required:
        out["required"] = True
    if item.repeats:
        out["repeats"] = True
    if item.kind == "string" or item.kind == "text":
        out["maxLength"] = item.max_length
    if item.when is not None:
        question, wanted = item.when
        answer = (
            {"answerBoolean": wanted}
            if isinstance(wanted, bool)
            else {"answerCoding": {"system": DECLARATION, "code": wanted}}
        )
        out["enableWhen"] = [{"question": question, "operator": "=", **answer}]
    if item.options:
        out["answerOption"] = [{"valueCoding": o.coding(translate)} for o in item.options]
        if item.repeats:
            out["extension"] = [_control("check-box")]
        elif item.select:
            out["extension"] = [_control("drop-down")]
    if item.low is not None or item.high is not None:
        bounds = [
            {"url": f"http://hl7.org/fhir/StructureDefinition/{name}", "valueInteger": value}
            for name, value in (("minValue", item.low), ("maxValue", item.high))
            if value is not None
        ]
        out["extension"] = [*out.get("extension", []), *bounds]
    if item.items:
        out["item"] = [_item(child, translate) for child in item.items]
    return out


def _control(code: str) -> dict[str, Any]:
    return {
        "url": ITEM_CONTROL,
        "valueCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": code}]
        },
    }


def resource(sections: tuple[Section, ...], translate: Callable[[str], str]) -> dict[str, Any]:
    """The published ``Questionnaire`` (Vietnamese, English in translation extensions)."""
    items = []
    for section in sections:
        text, english = _text(section.title, translate)
        group: dict[str, Any] = {
            "linkId": section.link,
            "text": text,
            "_text": english,
            "type": "group",
            "item": [_item(i, translate) for i in section.items],
        }
        if section.women_only:
            group["extension"] = [
                {
                    "url": ENABLE_EXPRESSION,
                    "valueExpression": {"language": "text/fhirpath", "expression": WOMEN_ONLY},
                }
            ]
        items.append(group)
    return {
        "resourceType": "Questionnaire",
        "id": ID,
        "url": URL,
        "version": VERSION,
        "name": "SelfDeclaration",
        "title": translate(N_("Declare your health")),
        "status": "active",
        "subjectType": ["Patient"],
        "language": "vi",
        "date": "2026-01-01",
        "publisher": "sokhoe",
        "description": (
            "Tự khai báo sức khỏe của người dân theo mẫu hồ sơ sức khỏe cá nhân "
            "(QĐ 831/QĐ-BYT) và nội dung sổ sức khỏe điện tử (QĐ 31/QĐ-BYT). "
            "Citizen self-declaration after the personal health-record form (QĐ 831/QĐ-BYT) "
            "and the electronic health book's content (QĐ 31/QĐ-BYT)."
        ),
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "VN"}]}],
        "item": items,
    }


__all__ = [
    "CANONICAL",
    "DECLARATION",
    "ID",
    "URL",
    "VERSION",
    "Answer",
    "Item",
    "Option",
    "Section",
    "applies",
    "enabled",
    "resource",
    "walk",
]
