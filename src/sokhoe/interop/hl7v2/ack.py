"""Acknowledgements: the ACK (``AA``) and NACK (``AE``/``AR``) a receiver answers with.

Original-mode acknowledgement (HL7 v2.5.1 §2.9.2): the ACK's MSH swaps sender and receiver,
MSA-2 echoes the message control ID. A NACK names the fault with an ERR segment: in 2.5 and
later ERR-2 (location ``PID^1^7``), ERR-3 (table 0357 code), ERR-4 (severity) and ERR-8 (the
text for a person); in 2.3/2.4 ERR-1 (``PID^1^7^102&Data type error&HL70357``). MSA-3 carries
the same text for receivers that read only MSA (deprecated from 2.4 but widely read).
See: https://hl7-definition.caristix.com/v2/HL7v2.5.1/Segments/ERR
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sokhoe.interop.hl7v2.er7 import ERROR_NAMES, VIETNAM_TZ, Hl7Fault, first, parse

SEPARATORS = "|^~\\&"


@dataclass(frozen=True)
class Header:
    """What an ACK needs from the message it answers (whatever could be read of it)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""
    processing_id: str = "P"
    version: str = "2.5"


def read_header(raw: bytes) -> Header:
    """The MSH fields an acknowledgement needs, read leniently from a message that will not
    be processed (a refused sender): MSA-2 must still echo MSH-10 so the sender can match the
    reject to what it sent. Empty fields where MSH cannot be read."""
    try:
        message = parse(raw.decode("utf-8", errors="replace"))
    except Hl7Fault:
        return Header()
    msh = first(message, "MSH")
    if msh is None:  # pragma: no cover - parse() requires the message to start with MSH
        return Header()
    return Header(
        sending_application=msh.get(3),
        sending_facility=msh.get(4),
        receiving_application=msh.get(5),
        receiving_facility=msh.get(6),
        control_id=msh.get(10).strip(),
        trigger=msh.get(9, 2).strip().upper(),
        processing_id=msh.get(11).strip() or "P",
        version=msh.get(12).strip() or "2.5",
    )


def escape(text: str) -> str:
    """Escape the ER7 delimiters in free text (§2.7.4), and keep it on one line."""
    out = text.replace("\\", "\\E\\")
    for char, code in (("|", "F"), ("^", "S"), ("~", "R"), ("&", "T")):
        out = out.replace(char, f"\\{code}\\")
    return " ".join(out.split())


def _new_version(version: str) -> bool:
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= (2, 5)
    except (IndexError, ValueError):
        return True


def build_ack(
    header: Header,
    code: str = "AA",
    fault: Hl7Fault | None = None,
    now: datetime | None = None,
    text: str = "",
) -> str:
    """The acknowledgement of one message, as ER7 text (segments joined by CR)."""
    moment = (now or datetime.now(VIETNAM_TZ)).astimezone(VIETNAM_TZ)
    stamp = moment.strftime("%Y%m%d%H%M%S%z")
    version = header.version or "2.5"
    trigger = escape(header.trigger)
    msh = [
        "MSH",
        SEPARATORS[1:],
        escape(header.receiving_application or "SOKHOE"),
        escape(header.receiving_facility or "SOKHOE"),
        escape(header.sending_application),
        escape(header.sending_facility),
        stamp,
        "",
        f"ACK^{trigger}^ACK" if trigger and _new_version(version) else f"ACK^{trigger}",
        f"ACK{escape(header.control_id)[:17]}" if header.control_id else f"ACK{stamp}",
        header.processing_id or "P",
        version,
        "",
        "",
        "",
        "",
        "",
        "UNICODE UTF-8",
    ]
    message = fault.text if fault is not None else text
    msa = ["MSA", code, escape(header.control_id), escape(message)[:80]]
    segments = ["|".join(msh), "|".join(msa)]
    if fault is not None:
        segments.append(_err(fault, version))
    return "\r".join(segments) + "\r"


def _err(fault: Hl7Fault, version: str) -> str:
    loc = fault.location
    where = ""
    if loc is not None:
        where = "^".join(
            [loc.segment, str(loc.sequence)]
            + ([str(loc.field)] if loc.field is not None else [])
            + ([] if loc.component is None or loc.field is None else ["1", str(loc.component)])
        )
    code = f"{fault.error_code}^{ERROR_NAMES.get(fault.error_code, '')}^HL70357"
    if _new_version(version):
        # ERR-1 (2.3 form) not sent; ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 text
        fields = ["ERR", "", where, code, "E", "", "", "", escape(fault.text)]
        return "|".join(fields)
    sub = code.replace("^", "&")
    parts = loc and [loc.segment, str(loc.sequence), str(loc.field or "")]
    eld = "^".join([*(parts or ["", "", ""]), sub])
    return f"ERR|{eld}"
