"""Small-cell suppression that subtraction cannot undo: primary and complementary suppression.

Hiding each cell under 5 people on its own protects nothing once a total is published beside
it: a reader takes the province, subtracts every commune but the hidden one, and has it. The
same works with a year and eleven of its months, or an area with and without a sub-area. So
this module decides which cells to hide **over everything that is published at once**, given
the additive relations between the cells:

- a *cell* holds one or more counts of people (and counts bounded below by people, such as
  repeated tests); what a reader knows of a hidden count before any arithmetic is its *floor*
  (1 for the count whose rows are only listed when it is positive, else 0);
- a *group* says that a parent cell is the sum of its children, for every count (a province
  and its communes plus the people whose commune is unknown; a nation and its provinces; a
  year and its months). A cell may sit in several groups (area × time);
- a *tie* lists cells that repeat one total (each vaccine's row repeats its cohort's number of
  children), so they are hidden together: the groups they sit in then hide the same cells,
  and the repeated total tells a reader nothing one of them does not.

**Primary suppression.** Every cell with a count from 1 to ``threshold - 1`` is hidden, and so
is every cell that is never published (a residual such as "commune unknown": a reader does not
see it, so it is unknown to them by construction).

**Complementary suppression**, repeated until no group needs more (across every hierarchy and
their cross, since hiding a cell for one group can break another):

1. A group whose parent is published and which hides exactly one child gives that child away
   (parent minus the published children), so the smallest published child is hidden too.
2. A group whose parent is hidden and which hides no child gives the parent away (the sum of
   the children), so its smallest child is hidden.
3. With two or more hidden children under a published parent, their *hidden total* is still
   known (parent minus the published children). For every count it must be 0, or both at least
   ``threshold`` (no small group of people can be worked out) and larger than what the hidden
   cells are known to hold at least (their floors; for a hidden total, its published children
   plus its hidden children's floors): otherwise every hidden cell sits at its floor, e.g. five
   hidden communes of one person each under a published five. Otherwise the next smallest
   published child is hidden; when no child is left, the parent.

**Why it holds.** Where a group shares no cell with another group (what the dashboard
publishes: a nation and its provinces for each month and category, a province and its
communes), the rules are exact. Under a published parent the hidden children hold a known
total ``H`` and nothing else ties them, so each can be anything from its floor to ``H`` minus
the others' floors: rule 1 makes that a choice between at least two cells, rule 3 makes the
range at least two values wide and the total itself not small. A hidden parent with a hidden
child (rule 2) is bound to nothing but its own group, so neither is determined. Where groups
share cells (three levels of areas, or areas crossed with a year and its months) the argument
does not carry over: a hidden cell can be the only link between two blocks of hidden cells and
be pinned by their difference. So every connected set of cells spanning more than one group is
also **audited**: a hidden count that the equations alone fix is pinned; one that can move
along them without touching a floor is free; for the rest a linear program finds the least and
the largest value it can take given every published number and every floor. A count pinned to
one positive value gets a published neighbour hidden, and the rules run again; each round hides
one more cell, so it ends.

What counts as "published" is fixed by ``warehouse/cells.py``: every cell of an indicator, for
every area and period, is suppressed in one pass, and a request only selects among them, so any
combination of requests is a subset of one suppressed publication.

Zero is not protected (as before: counts "between 1 and 4" are small): a hidden count that the
published numbers show to be 0 is not pinned for the audit. Bounds that come from outside the
groups (one indicator counting a subset of another's people) are not part of the model.

See: https://research.cbs.nl/casc/Software/TauManualV4.1.pdf (τ-ARGUS: secondary suppression
and the audit of a suppression pattern)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
from scipy.optimize import linprog  # type: ignore[import-untyped]

Key = Hashable
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Cell:
    """The counts of one published (or residual) cell and what a reader knows of each."""

    counts: tuple[int, ...]
    floors: tuple[int, ...]
    """The least each count can be to a reader who sees the cell is hidden."""
    published: bool = True
    """False for a residual nobody sees (hidden from the start)."""

    def small(self, threshold: int) -> bool:
        return any(0 < n < threshold for n in self.counts)


@dataclass(frozen=True)
class Group:
    """``parent`` equals the sum of ``children``, for every count."""

    parent: Key
    children: tuple[Key, ...]


def suppress(
    cells: Mapping[K, Cell],
    groups: Sequence[Group],
    threshold: int,
    ties: Iterable[Sequence[K]] = (),
) -> frozenset[K]:
    """The cells to hide (see the module docstring); ``threshold <= 1`` hides nothing but the
    residuals."""
    unpublished = {k for k, c in cells.items() if not c.published}
    if threshold <= 1:
        return frozenset(unpublished)
    state = _State(cast(Mapping[Key, Cell], cells), groups, threshold, ties)
    for key in cells:
        if key in unpublished or cells[key].small(threshold):
            state.hide(key)
    while True:
        state.repair()
        pinned = state.audit()
        if not pinned:
            return cast(frozenset[K], frozenset(state.hidden))
        first, count = pinned[0]  # one at a time: the fix may free the others
        state.hide(state.partner(first, count))


class _State:
    def __init__(
        self,
        cells: Mapping[Key, Cell],
        groups: Sequence[Group],
        threshold: int,
        ties: Iterable[Sequence[Key]],
    ) -> None:
        self.cells = cells
        self.groups = [g for g in groups if g.parent in cells]
        self.threshold = threshold
        self.hidden: set[Key] = set()
        self.pending: deque[int] = deque(range(len(self.groups)))
        self.queued = set(self.pending)
        self.member_of: dict[Key, list[int]] = {}
        for i, g in enumerate(self.groups):
            for key in (g.parent, *g.children):
                self.member_of.setdefault(key, []).append(i)
        self.tie_of: dict[Key, tuple[Key, ...]] = {}
        for tie in ties:
            members = tuple(k for k in tie if k in cells)
            for key in members:
                self.tie_of[key] = members

    def hide(self, key: Key) -> None:
        stack = [key]
        while stack:
            item = stack.pop()
            if item in self.hidden:
                continue
            self.hidden.add(item)
            for g in self.member_of.get(item, ()):
                if g not in self.queued:
                    self.queued.add(g)
                    self.pending.append(g)
            stack.extend(self.tie_of.get(item, ()))

    # -- rules 1-3 ------------------------------------------------------------------------
    def repair(self) -> None:
        while self.pending:
            index = self.pending.popleft()
            self.queued.discard(index)
            more = self._next(self.groups[index])
            if more is not None:
                self.hide(more)
                if index not in self.queued:
                    self.queued.add(index)
                    self.pending.append(index)

    def _next(self, group: Group) -> Key | None:
        """The cell this group still needs hidden, or None when it is safe."""
        children = [c for c in group.children if c in self.cells]
        hidden = [c for c in children if c in self.hidden]
        shown = [c for c in children if c not in self.hidden]
        if group.parent in self.hidden:  # rule 2
            return self._smallest(shown, None) if shown and not hidden else None
        if not hidden:
            return None
        failing = None
        if len(hidden) >= 2:  # rule 3
            failing = self._failing_count(hidden)
            if failing is None:
                return None
        candidates = [c for c in shown if failing is None or self.cells[c].counts[failing] > 0]
        return self._smallest(candidates, failing) if candidates else group.parent

    def _failing_count(self, hidden: list[Key]) -> int | None:
        width = len(self.cells[hidden[0]].counts)
        for i in range(width):
            total = sum(self.cells[k].counts[i] for k in hidden)
            floors = sum(self.floor(k, i) for k in hidden)
            if total and not (total >= self.threshold and total > floors):
                return i
        return None

    def floor(self, key: Key, count: int, seen: frozenset[Key] = frozenset()) -> int:
        """The least a reader can tell a hidden count is: its own floor, or, for a hidden total,
        its published children plus the least of its hidden ones."""
        least = self.cells[key].floors[count]
        for g in (self.groups[i] for i in self.member_of.get(key, ())):
            if g.parent != key or key in seen:
                continue
            kids = [c for c in g.children if c in self.cells]
            shown = sum(self.cells[c].counts[count] for c in kids if c not in self.hidden)
            below = sum(self.floor(c, count, seen | {key}) for c in kids if c in self.hidden)
            least = max(least, shown + below)
        return least

    def _smallest(self, keys: Iterable[Key], count: int | None) -> Key:
        """The published cell whose hiding costs least: positive counts first, smallest first
        (by the failing count when there is one), then by key for a stable choice."""

        def cost(key: Key) -> tuple[Any, ...]:
            counts = self.cells[key].counts
            first = counts[count] if count is not None else counts[0]
            return (sum(counts) == 0, first, counts, repr(key))

        return min(keys, key=cost)

    # -- the audit of overlapping groups ------------------------------------------------
    def components(self) -> list[list[int]]:
        """Groups connected through shared cells, for the sets with more than one group."""
        parent = list(range(len(self.groups)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for indices in self.member_of.values():
            for other in indices[1:]:
                a, b = find(indices[0]), find(other)
                if a != b:
                    parent[a] = b
        found: dict[int, list[int]] = {}
        for i in range(len(self.groups)):
            found.setdefault(find(i), []).append(i)
        return [c for c in found.values() if len(c) > 1]

    def audit(self) -> list[tuple[Key, int]]:
        """Hidden counts that the published numbers pin to one positive value."""
        pinned: list[tuple[Key, int]] = []
        for component in self.components():
            groups = [self.groups[i] for i in component]
            members = {k for g in groups for k in (g.parent, *g.children) if k in self.cells}
            unknown = sorted((k for k in members if k in self.hidden), key=repr)
            if not unknown:
                continue
            width = len(self.cells[unknown[0]].counts)
            for count in range(width):
                pinned += [
                    (key, count) for key in pinned_counts(self.cells, groups, set(unknown), count)
                ]
        return pinned

    def partner(self, key: Key, count: int) -> Key:
        """A published cell to hide beside a pinned one: the smallest published sibling under
        a published parent, else the smallest published cell of any of its groups."""
        mine = [self.groups[i] for i in self.member_of.get(key, ())]
        siblings = [
            c
            for g in mine
            if key in g.children and g.parent not in self.hidden
            for c in g.children
            if c in self.cells and c not in self.hidden and self.cells[c].counts[count] > 0
        ]
        if siblings:
            return self._smallest(siblings, count)
        around = mine
        while True:  # widen until a published cell turns up (one exists, or nothing is pinned)
            options = [
                m
                for g in around
                for m in (g.parent, *g.children)
                if m in self.cells and m not in self.hidden
            ]
            if options:
                useful = [k for k in options if self.cells[k].counts[count] > 0] or options
                return self._smallest(useful, count)
            reached = {m for g in around for m in (g.parent, *g.children)}
            wider = [g for g in self.groups if reached & {g.parent, *g.children}]
            if len(wider) == len(around):
                raise RuntimeError(f"suppression: {key!r} pinned with nothing published near it")
            around = wider


def pinned_counts(
    cells: Mapping[Key, Cell], groups: Sequence[Group], hidden: set[Key], count: int
) -> list[Key]:
    """The hidden cells whose ``count`` the published cells of ``groups`` pin to one positive
    value: the least and the largest value it can take (a linear program over every group
    equation, each hidden count at least its floor) leave room for a single integer. The true
    values answer most cells without a program (see the module docstring)."""
    unknown = sorted(hidden, key=repr)
    column = {k: i for i, k in enumerate(unknown)}
    rows, rhs = [], []
    for g in groups:
        row = np.zeros(len(unknown))
        known = 0.0
        for key, sign in ((g.parent, -1.0), *((c, 1.0) for c in g.children)):
            if key not in cells:
                continue
            if key in column:
                row[column[key]] += sign
            else:
                known -= sign * cells[key].counts[count]
        if row.any():
            rows.append(row)
            rhs.append(known)
    if not rows:
        return []
    a_eq, b_eq = np.array(rows), np.array(rhs)
    bounds = [(cells[k].floors[count], None) for k in unknown]
    # Cheap answers first, from the true values: a count the equations alone fix is pinned; a
    # count that moves along the equations without touching a floor that binds is free.
    true = np.array([cells[k].counts[count] for k in unknown], dtype=float)
    at_floor = [i for i, k in enumerate(unknown) if true[i] <= cells[k].floors[count]]
    moves = _null_space(a_eq)
    free = _null_space(np.vstack([a_eq, np.eye(len(unknown))[at_floor]]))
    found = []
    for key, i in column.items():
        if not np.abs(moves[i]).max(initial=0.0) > 1e-9:
            if true[i] > 0:
                found.append(key)
            continue
        if np.abs(free[i]).max(initial=0.0) > 1e-9:
            continue
        objective = np.zeros(len(unknown))
        objective[i] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if low.status != 0 or high.status != 0:  # unbounded above (or no equation binds)
            continue
        least, most = math.ceil(low.fun - 1e-6), math.floor(-high.fun + 1e-6)
        if least == most and least > 0:
            found.append(key)
    return found


def _null_space(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the moves that change no equation, one row per unknown."""
    _, singular, rows = np.linalg.svd(matrix)
    rank = int((singular > 1e-9 * max(1.0, float(singular.max(initial=0.0)))).sum())
    return np.asarray(rows[rank:].T)


__all__ = ["Cell", "Group", "Key", "pinned_counts", "suppress"]
