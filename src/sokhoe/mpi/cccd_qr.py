"""The QR code printed on the chip citizen identity card (*căn cước công dân*, CCCD).

Reception desks scan it instead of typing the patient's details. The text is pipe-separated:
``ID12|CMND9|FULL NAME|ddMMyyyy|Nam or Nữ|address|issue date ddMMyyyy``; cards issued to people
who never had the old 9-digit ID omit that field, so six fields are accepted as well. Only the
text is kept: the platform never stores an image of the card.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sokhoe.errors import InvalidRequest
from sokhoe.messages import Message, message_of
from sokhoe.mpi.identifiers import cccd_sex_and_year, validate_cccd

_SEX = {"nam": "male", "nữ": "female", "nu": "female"}
_CMND = re.compile(r"\d{9}")
_SEX_WORDS = {"male": Message("male"), "female": Message("female")}
_VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class CccdCard:
    """What the QR says about its holder."""

    number: str
    """The 12-digit personal ID (since Decree 102/2025 also the health ID)."""
    old_number: str | None
    """The 9-digit CMND the card replaced, if the card carries it."""
    full_name: str
    birth_date: date
    sex: str
    """FHIR administrative gender: ``male`` or ``female``."""
    address: str
    issued: date | None


def _date(text: str, what: Message) -> date:
    if not re.fullmatch(r"\d{8}", text):
        raise InvalidRequest(
            Message("CCCD QR: %(what)s must be ddMMyyyy, got '%(text)s'", what=what, text=text),
            "qr",
        )
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError as exc:
        raise InvalidRequest(
            Message("CCCD QR: %(what)s '%(text)s' is not a real date", what=what, text=text), "qr"
        ) from exc


def _name(text: str) -> str:
    """Collapse spaces; cards printed in capitals become ``Nguyễn Văn An``."""
    name = " ".join(text.split())
    return name.title() if name.isupper() else name


def parse_cccd_qr(text: str) -> CccdCard:
    """Parse the QR text (six or seven fields; stray whitespace tolerated).

    Raises :class:`~sokhoe.errors.InvalidRequest` saying which field is wrong.
    """
    fields = [f.strip() for f in unicodedata.normalize("NFC", text.strip()).split("|")]
    if len(fields) == 6:
        fields.insert(1, "")
    if len(fields) != 7:
        raise InvalidRequest(
            Message(
                "CCCD QR must have 6 or 7 fields separated by '|', got %(count)s",
                count=str(len(fields)),
            ),
            "qr",
        )
    number, old, name, born, sex, address, issued = fields
    try:
        number = validate_cccd(number)
    except ValueError as exc:
        raise InvalidRequest(Message("CCCD QR: %(why)s", why=message_of(exc)), "qr") from exc
    if old and not _CMND.fullmatch(old):
        raise InvalidRequest(
            Message("CCCD QR: the old ID must be 9 digits, got '%(old)s'", old=old), "qr"
        )
    if not name:
        raise InvalidRequest(Message("CCCD QR: the full name is empty"), "qr")
    gender = _SEX.get(sex.lower())
    if gender is None:
        raise InvalidRequest(
            Message("CCCD QR: sex must be 'Nam' or 'Nữ', got '%(sex)s'", sex=sex), "qr"
        )
    birth_date = _date(born, Message("the birth date"))
    if birth_date > datetime.now(_VIETNAM).date():
        raise InvalidRequest(
            Message(
                "CCCD QR: the birth date %(date)s is in the future; the scan is probably misread",
                date=birth_date.strftime("%d/%m/%Y"),
            ),
            "qr",
        )
    coded_sex, coded_year = cccd_sex_and_year(number)
    if (coded_sex, coded_year % 100) != (gender, birth_date.year % 100) or (
        coded_year // 100 != birth_date.year // 100
    ):
        raise InvalidRequest(
            Message(
                "CCCD QR: ID %(number)s encodes a %(coded_sex)s born in %(coded_year)s, but the "
                "card says %(sex)s born %(born)s; the scan is probably misread",
                number=number,
                coded_sex=_SEX_WORDS[coded_sex],
                coded_year=str(coded_year),
                sex=_SEX_WORDS[gender],
                born=birth_date.isoformat(),
            ),
            "qr",
        )
    return CccdCard(
        number=number,
        old_number=old or None,
        full_name=_name(name),
        birth_date=birth_date,
        sex=gender,
        address=" ".join(address.split()),
        issued=_date(issued, Message("the issue date")) if issued else None,
    )
