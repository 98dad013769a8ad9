"""Reading one HL7 v2 message in ER7 (pipe-and-hat) encoding: bytes, fields, data types.

Parsing is done by the maintained ``hl7`` package (python-hl7); this module adds what a
receiving system needs around it: strict UTF-8 decoding (MSH-18 ``UNICODE UTF-8``: a message
whose bytes are not UTF-8 is refused, never guessed), field access that names the exact
position of a fault for the ERR segment, and the TS/DT data types with the Vietnamese default
time zone (+07:00) when a sender leaves it out.
See: https://www.hl7.org/implement/standards/product_brief.cfm?product_id=185 (v2.5.1 ch. 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import hl7  # type: ignore[import-untyped]  # python-hl7 ships no type information

VIETNAM_TZ = timezone(timedelta(hours=7))
"""Asia/Ho_Chi_Minh has no daylight saving time: a fixed +07:00 is exact."""

SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1"})

# HL7 table 0357 (message error condition codes)
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
INTERNAL_ERROR = "207"
SEGMENT_SEQUENCE_ERROR = "100"

ERROR_NAMES = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True)
class Location:
    """Where a fault is: segment id, segment sequence (1 = first of its kind), field."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None


class Hl7Fault(Exception):
    """A message the platform will not apply, with what the NACK must say.

    ``ack_code`` is ``AE`` (application error: the data is wrong, fix and resend) or ``AR``
    (application reject: wrong message type, version, facility or framing).
    """

    def __init__(
        self,
        text: str,
        *,
        ack_code: str = "AE",
        error_code: str = DATA_TYPE_ERROR,
        location: Location | None = None,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.ack_code = ack_code
        self.error_code = error_code
        self.location = location


def decode(raw: bytes) -> str:
    """UTF-8 text of a message; undecodable bytes are a reject (never silently replaced,
    which would store corrupted Vietnamese names)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Hl7Fault(
            f"The message is not valid UTF-8 (byte {exc.start}); send MSH-18 'UNICODE UTF-8' "
            "and UTF-8 text",
            ack_code="AR",
            error_code=DATA_TYPE_ERROR,
            location=Location("MSH", 1, 18),
        ) from exc
    return text.removeprefix("\ufeff")


def parse(text: str) -> hl7.Message:
    """Parse ER7 text (segments separated by CR; LF and CRLF tolerated)."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Fault(
            "The message does not start with an MSH segment",
            ack_code="AR",
            error_code=SEGMENT_SEQUENCE_ERROR,
            location=Location("MSH"),
        )
    try:
        return hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError) as exc:
        raise Hl7Fault(
            f"Unparseable message: {exc}",
            ack_code="AR",
            error_code=SEGMENT_SEQUENCE_ERROR,
            location=Location("MSH"),
        ) from exc


class Segment:
    """One segment with safe, position-aware access (1-based, as the HL7 tables number)."""

    def __init__(self, message: hl7.Message, seg: hl7.Segment, sequence: int) -> None:
        self.message = message
        self.seg = seg
        self.id = str(seg[0])
        self.sequence = sequence

    def location(self, field: int | None = None, component: int | None = None) -> Location:
        return Location(self.id, self.sequence, field, component)

    def repetitions(self, field: int) -> int:
        """How many repetitions field ``field`` has (0 when empty or absent)."""
        index = field if self.id != "MSH" else field - 1
        if index >= len(self.seg) or not str(self.seg[index]):
            return 0
        value = self.seg[index]
        if isinstance(value, hl7.Field) and value and isinstance(value[0], hl7.Repetition):
            return len(value)
        return 1

    def get(self, field: int, component: int = 1, repetition: int = 1, sub: int = 1) -> str:
        """The unescaped value at a position, ``""`` when absent."""
        try:
            value = self.seg.extract_field(self.sequence, field, repetition, component, sub)
        except IndexError:
            return ""
        return str(value)

    def require(self, field: int, what: str, component: int = 1) -> str:
        value = self.get(field, component).strip()
        if not value:
            raise Hl7Fault(
                f"{self.id}-{field} ({what}) is required",
                error_code=REQUIRED_FIELD_MISSING,
                location=self.location(field),
            )
        return value


def segments(message: hl7.Message, segment_id: str) -> list[Segment]:
    """The segments of one kind, in order, each knowing its sequence number."""
    found = [s for s in message if str(s[0]) == segment_id]
    return [Segment(message, s, i) for i, s in enumerate(found, start=1)]


def first(message: hl7.Message, segment_id: str) -> Segment | None:
    found = segments(message, segment_id)
    return found[0] if found else None


def required_segment(message: hl7.Message, segment_id: str) -> Segment:
    found = first(message, segment_id)
    if found is None:
        raise Hl7Fault(
            f"The message has no {segment_id} segment",
            error_code=SEGMENT_SEQUENCE_ERROR,
            location=Location(segment_id, 1),
        )
    return found


_TS = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<tz>[+-]\d{4})?"
)


def parse_ts(value: str, where: Location, *, what: str = "time stamp") -> tuple[str, datetime]:
    """HL7 TS/DTM ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` as a FHIR dateTime.

    Returns the FHIR text (keeping the sender's precision; +07:00 when the time has no zone)
    and an aware datetime of its start (for comparisons). A malformed value is a data type
    error at ``where``.
    """
    text = value.strip()
    m = _TS.fullmatch(text)
    fault = Hl7Fault(
        f"{where.segment}-{where.field} ({what}) is not an HL7 date/time: {value!r}",
        error_code=DATA_TYPE_ERROR,
        location=where,
    )
    if m is None:
        raise fault
    g = m.groupdict()
    tz = VIETNAM_TZ
    if g["tz"]:
        sign = 1 if g["tz"][0] == "+" else -1
        hours, minutes = int(g["tz"][1:3]), int(g["tz"][3:5])
        if hours > 14 or minutes > 59:
            raise fault
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        moment = datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            int((g["f"] or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise fault from exc
    if g["h"] is not None and g["mi"] is None:
        raise fault  # an hour without minutes has no FHIR dateTime form
    if g["h"] is None:
        # date only: FHIR dateTime keeps the precision and carries no zone
        fhir = g["y"] + (f"-{g['mo']}" if g["mo"] else "") + (f"-{g['d']}" if g["d"] else "")
        return fhir, moment
    fhir = moment.isoformat(timespec="milliseconds" if g["f"] else "seconds")
    return fhir, moment


def parse_date(value: str, where: Location, *, what: str = "date") -> str:
    """HL7 DT (or a TS whose time is dropped, as senders do in PID-7) as a FHIR date."""
    fhir, moment = parse_ts(value, where, what=what)
    if moment.astimezone(VIETNAM_TZ) > datetime.now(UTC).astimezone(VIETNAM_TZ) + timedelta(days=1):
        raise Hl7Fault(
            f"{where.segment}-{where.field} ({what}) is in the future: {value!r}",
            error_code=DATA_TYPE_ERROR,
            location=where,
        )
    return fhir[:10]
