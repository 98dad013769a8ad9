"""What an app asks for, in plain words: the lines of the consent screen of SMART App Launch.

Each scope the person may grant (``access/launch.py`` drops the rest first) becomes one line a
grandmother can read ("Đọc hồ sơ sức khỏe của bạn"), not ``patient/*.rs``; scopes naming a few
resource types say which parts of the record, in the access log's words. The same words serve
the citizen (``patient/`` scopes) and the clinician (``user/`` scopes: "the records you may
open at work"), and the portal's list of connected apps.
See: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

from typing import Final

from sokhoe.access.scopes import parse_scope
from sokhoe.messages import Message
from sokhoe.portal.access_log import NOUNS

FIXED: Final = {
    "launch/patient": Message("Know whose record it uses (shown below)"),
    "openid": Message("Know who you are: your name in the health book"),
    "offline_access": Message(
        "Stay connected until you disconnect it: it may read again without asking you"
    ),
    "online_access": Message("Stay connected for up to 12 hours"),
}
"""The scopes that are not about the record's content (``fhirUser`` goes with ``openid``)."""


def _parts(resource_type: str) -> Message | str:
    return NOUNS.get(resource_type) or resource_type


def describe(scope: str) -> Message | None:
    """One scope in plain words (None for ``fhirUser``: said with ``openid``)."""
    if scope in FIXED:
        return FIXED[scope]
    try:
        parsed = parse_scope(scope)
    except ValueError:
        return None
    writes = bool(parsed.permissions & {"c", "u", "d"})
    every = parsed.resource_type == "*"
    if parsed.context == "patient":
        if every:
            return Message("Read your health record")
        return Message("Read from your health record: %(what)s", what=_parts(parsed.resource_type))
    if every:
        if writes:
            return Message("Read and write the records you may open at work")
        return Message("Read the records you may open at work")
    if writes:
        return Message(
            "Read and write, in the records you may open at work: %(what)s",
            what=_parts(parsed.resource_type),
        )
    return Message(
        "Read, in the records you may open at work: %(what)s", what=_parts(parsed.resource_type)
    )


def describe_all(scopes: tuple[str, ...] | list[str]) -> list[Message]:
    """The lines of the consent screen, each once: what it may read first, then the rest, each
    in the order asked."""
    out: list[Message] = []
    for scope in sorted(scopes, key=lambda s: s in FIXED or s == "fhirUser"):
        line = describe(scope)
        if line is not None and line not in out:
            out.append(line)
    return out


__all__ = ["FIXED", "describe", "describe_all"]
