"""Search parameters whose index rows repeat those of other parameters of their type.

R4 defines several parameters as the union of two others: Observation's ``combo-code`` is
``Observation.code | Observation.component.code``, which are ``code`` and ``component-code``;
``combo-value-quantity`` likewise. Their index rows repeat, value for value, rows the resource
already has under the other names (about one row in eight of a clinical population). A store may
skip writing them and search the member parameters' rows instead: the matches are the same
resources, because a value is in the union exactly when it is in one of the members.

A parameter counts as a union only when every top-level ``|`` branch of its expression is a
whole branch of a member's expression and the members' branches together are exactly its own,
with the same parameter type, so extraction gives the same values under either name.

Likewise a *restriction*: 36 types define ``patient`` as ``subject.where(resolve() is
Patient)``, whose rows are the ``subject`` rows that point at a Patient (a tenth of all rows).
Only the rows whose target type the reference itself names (``Patient/123``) are found that
way; a reference whose type comes from a contained resource or ``Reference.type`` keeps its
own row, so a store searches ``(subject rows to a Patient) or (patient rows)``.

And an *alias*: a parameter with the very expression and type of another of its type, such as
Patient's ``phonetic`` and ``name`` (this platform indexes both alike), has the other's rows; it
is searched as a union of one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.searchparams import SearchParam, registry, split_union


@cache
def _branches(sp: SearchParam) -> frozenset[str]:
    return frozenset(" ".join(b.split()) for b in split_union(sp.expression or ""))


def _members(sp: SearchParam, params: list[SearchParam]) -> tuple[str, ...] | None:
    own = _branches(sp)
    if len(own) < 2:
        return None
    parts = [
        q
        for q in params
        if q.code != sp.code and q.type == sp.type and q.expression and _branches(q) < own
    ]
    covered = frozenset().union(*(_branches(q) for q in parts)) if parts else frozenset()
    return tuple(sorted(q.code for q in parts)) if covered == own else None


@cache
def aliases() -> dict[tuple[str, str], str]:
    """(resource type, parameter) -> the first parameter (by name) of its type with the same
    expression and type, for every later one."""
    out: dict[tuple[str, str], str] = {}
    reg = registry()
    for rtype in resource_types():
        first: dict[tuple[frozenset[str], str], str] = {}
        for sp in sorted(reg.supported(rtype), key=lambda p: p.code):
            if not sp.expression:
                continue
            key = (_branches(sp), sp.type)
            if key in first:
                out[(rtype, sp.code)] = first[key]
            else:
                first[key] = sp.code
    return out


@cache
def unions() -> dict[tuple[str, str], tuple[str, ...]]:
    """(resource type, parameter) -> the parameters whose rows together are its rows (an
    alias's are its original's)."""
    out: dict[tuple[str, str], tuple[str, ...]] = {k: (v,) for k, v in aliases().items()}
    reg = registry()
    for rtype in resource_types():
        params = reg.supported(rtype)
        for sp in params:
            members = _members(sp, params)
            if members is not None and (rtype, sp.code) not in out:
                out[(rtype, sp.code)] = members
    # a member that is itself a union would leave its own rows unwritten: search its members
    for key, members in list(out.items()):
        flat: list[str] = []
        for m in members:
            flat += out.get((key[0], m), (m,))
        out[key] = tuple(sorted(set(flat)))
    return out


def searched_as(resource_type: str | None, code: str) -> tuple[str, ...]:
    """The parameter names whose rows answer a search on ``code`` (itself when not a union)."""
    if resource_type is None:
        return (code,)
    return unions().get((resource_type, code), (code,))


@dataclass(frozen=True)
class Restriction:
    """A reference parameter whose rows are those of ``within`` that point at ``target``."""

    within: str
    target: str


_WHERE = re.compile(r"^(?P<path>.+)\.where\(resolve\(\) is (?P<target>[A-Za-z]+)\)$")


def _restriction(sp: SearchParam, by_branches: dict[frozenset[str], str]) -> Restriction | None:
    """``sp`` as the restriction of another parameter (found by its branches) to one type."""
    parts = [_WHERE.match(b) for b in _branches(sp)]
    if not parts or any(m is None for m in parts):
        return None
    targets = {m["target"] for m in parts if m is not None}
    within = by_branches.get(frozenset(m["path"] for m in parts if m is not None))
    if len(targets) != 1 or within is None or within == sp.code:
        return None
    return Restriction(within, targets.pop())


@cache
def restrictions() -> dict[tuple[str, str], Restriction]:
    """(resource type, parameter) -> what it restricts (``patient`` -> ``subject``, Patient)."""
    out: dict[tuple[str, str], Restriction] = {}
    reg = registry()
    for rtype in resource_types():
        refs = [sp for sp in reg.supported(rtype) if sp.type == "reference" and sp.expression]
        by_branches = {_branches(sp): sp.code for sp in refs}
        for sp in refs:
            found = _restriction(sp, by_branches)
            if found is not None:
                within = aliases().get((rtype, found.within), found.within)
                out[(rtype, sp.code)] = Restriction(within, found.target)
    return out


def restriction_of(resource_type: str | None, code: str) -> Restriction | None:
    """What ``code`` restricts on ``resource_type``, if anything."""
    return None if resource_type is None else restrictions().get((resource_type, code))
