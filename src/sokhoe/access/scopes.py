"""SMART on FHIR v2 scopes: ``context/ResourceType.permissions`` (``system/Patient.rs``).

``context`` is ``system`` (a connected system acting for its facility), ``user`` (a person at
a facility) or ``patient`` (a citizen's own record); the permissions are any of ``c r u d s``
(create, read, update, delete, search) in that order; ``*`` stands for every resource type.
v1 scopes (``.read``, ``.write``, ``.*``) are accepted and mapped to v2.
See: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sokhoe.fhir.definitions import resource_types

_SCOPE = re.compile(r"^(system|user|patient)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
INTERACTION_LETTER = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history": "r",
    "update": "u",
    "delete": "d",
    "search": "s",
}


@dataclass(frozen=True)
class Scope:
    context: str
    resource_type: str
    permissions: frozenset[str]

    def allows(self, resource_type: str, letter: str) -> bool:
        return self.resource_type in ("*", resource_type) and letter in self.permissions


def parse_scope(text: str) -> Scope:
    """One scope string; ValueError says what is wrong."""
    m = _SCOPE.match(text.strip())
    if m is None:
        raise ValueError(f"'{text}' is not a SMART scope like system/Patient.rs")
    context, rtype, perms = m.groups()
    if rtype != "*" and rtype not in resource_types():
        raise ValueError(f"'{text}': unknown resource type {rtype}")
    perms = _V1.get(perms, perms)
    if not re.fullmatch(r"c?r?u?d?s?", perms) or not perms:
        raise ValueError(f"'{text}': permissions must be some of c r u d s, in that order")
    return Scope(context, rtype, frozenset(perms))


def parse_scopes(texts: str | list[str] | frozenset[str]) -> list[Scope]:
    items = texts.split() if isinstance(texts, str) else list(texts)
    return [parse_scope(t) for t in items if t.strip()]


@lru_cache(maxsize=1024)
def _granted(scopes: frozenset[str]) -> tuple[Scope, ...]:
    """A token's scopes, parsed once (every write of a bundle asks again)."""
    return tuple(parse_scopes(scopes))


def scopes_allow(scopes: frozenset[str], resource_type: str, interaction: str) -> bool:
    """Whether any granted scope permits ``interaction`` on ``resource_type``."""
    letter = INTERACTION_LETTER.get(interaction)
    if letter is None:
        return False
    return any(s.allows(resource_type, letter) for s in _granted(frozenset(scopes)))


def covered(wanted: str, granted: frozenset[str]) -> bool:
    """Whether the scope ``wanted`` asks for no more than some granted scope gives (a client
    granted ``system/*.rs`` may ask for ``system/Patient.rs``). False for a malformed scope.
    See: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html"""
    try:
        asked = parse_scope(wanted)
    except ValueError:
        return False
    return any(
        g.context == asked.context
        and g.resource_type in ("*", asked.resource_type)
        and asked.permissions <= g.permissions
        for g in _granted(granted)
    )
