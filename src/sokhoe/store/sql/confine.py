"""A caller's :class:`~sokhoe.store.ports.Confinement` as one SQL condition on a row.

The condition is added to the ``WHERE`` of every query that answers a caller (searches and
their chains, ``_has`` and includes, history, ``$everything``, counts), so the database only
ever finds what the caller may see: totals are exact and a page is never emptied after the
fact. ``store/memory_confine.py`` states the same rule in Python; the store contract tests hold
the two to the same answers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, literal, not_, or_, select, true

from sokhoe.store.ports import Confinement
from sokhoe.store.sql.schema import (
    care_relationship,
    care_restriction,
    resource,
    resource_history,
)


def _current(access: Confinement) -> ColumnElement[bool]:
    c = care_relationship.c
    return and_(c.since <= access.now, or_(c.until.is_(None), c.until > access.now))


def granted(access: Confinement, patient: Any) -> ColumnElement[bool]:
    """A current ``record`` row of the care index names one of the caller's grantees."""
    c = care_relationship.c
    rows = select(c.patient_id).where(
        c.grantee.in_(access.grantees), c.level == "record", _current(access)
    )
    return patient.in_(rows)  # type: ignore[no-any-return]


def _hidden(access: Confinement, cols: Any) -> ColumnElement[bool]:
    """The row carries a label its patient restricted, from this caller."""
    x, y = care_restriction.alias("x"), care_restriction.alias("y")
    labelled = (literal(",") + cols.labels + literal(",")).like(
        literal("%,") + x.c.label + literal(",%")
    )
    restricted = select(x.c.label).where(
        x.c.patient_id == cols.patient_id, x.c.facility == "", labelled
    )
    if access.facility:
        permitted = (
            select(y.c.label)
            .where(
                y.c.patient_id == x.c.patient_id,
                y.c.label == x.c.label,
                y.c.facility == access.facility,
            )
            .exists()
        )
        restricted = restricted.where(not_(permitted))
    hidden: ColumnElement[bool] = and_(cols.labels.is_not(None), restricted.exists())
    if access.grantees:
        c = care_relationship.c
        glass = exists().where(
            c.patient_id == cols.patient_id,
            c.grantee.in_(access.grantees),
            c.all_labels == true(),
            _current(access),
        )
        hidden = and_(hidden, not_(glass))
    return hidden


def confine(access: Confinement, cols: Any) -> ColumnElement[bool]:
    """Whether ``access`` shows the row whose columns are ``cols`` (``resource.c`` or
    ``resource_history.c``: both carry ``resource_type``, ``patient_id``, ``owner`` and
    ``labels``).

    Building the condition costs more than running it (some 40 SQLAlchemy operator calls,
    a few milliseconds: the largest part of a facility's read), so the conditions on the two
    tables are kept for the caller's next requests (:func:`_kept`). ``now`` is rounded up to
    the next whole second for that: a care relationship that began earlier in this second is
    current, as it must be; one that ends within this second counts as ended already, the
    safe side.
    """
    if cols is resource.c or cols is resource_history.c:
        return _kept(_to_the_second(access), cols is resource.c)
    return _condition(access, cols)


def _to_the_second(access: Confinement) -> Confinement:
    now = access.now
    if now.microsecond == 0:
        return access
    return replace(access, now=now.replace(microsecond=0) + timedelta(seconds=1))


@lru_cache(maxsize=4096)
def _kept(access: Confinement, current: bool) -> ColumnElement[bool]:
    """:func:`_condition` on ``resource`` (``current``) or ``resource_history``, kept: a
    caller at work sends many requests a second, each with an equal ``Confinement``."""
    return _condition(access, resource.c if current else resource_history.c)


def _condition(access: Confinement, cols: Any) -> ColumnElement[bool]:
    patient = cols.patient_id
    reasons: list[ColumnElement[bool]] = []
    if access.all_patients:
        reasons.append(true())
    if access.patients:
        reasons.append(patient.in_(list(access.patients)))
    if access.grantees:
        reasons.append(granted(access, patient))
    seen: ColumnElement[bool] = or_(*reasons) if reasons else false()
    if access.types is not None:
        seen = and_(cols.resource_type.in_(sorted(access.types)), seen)
    if access.restrictions:
        hidden = _hidden(access, cols)
        if access.patients:
            hidden = and_(hidden, not_(patient.in_(list(access.patients))))
        seen = and_(seen, not_(hidden))
    if access.owner:
        seen = or_(cols.owner == access.owner, seen)
    in_compartment = and_(patient.is_not(None), seen)
    shown = or_(patient.is_(None), in_compartment) if access.shared else in_compartment
    if access.readable is not None:
        shown = and_(cols.resource_type.in_(sorted(access.readable)), shown)
    return shown
