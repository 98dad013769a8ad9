"""Complementary suppression on random small tables: an area tree (nation, provinces, communes
and the people whose commune is unknown) crossed with a time tree (a year and its months), or
with each month on its own. After :func:`suppress`, every group that hides a cell hides at least
two (or its parent), their total is not small, and no linear combination of the published
numbers pins a hidden count (checked here with a linear program of the test's own)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog  # type: ignore[import-untyped]

from sokhoe.warehouse.suppression import Cell, Group, Key, suppress


@dataclass
class Table:
    cells: dict[Key, Cell]
    groups: list[Group]
    threshold: int
    primary: set[Key]


@st.composite
def tables(draw: st.DrawFn) -> Table:
    """Leaf counts per (commune or unknown-commune remainder, month): people, and a part of
    them (say, those measured) as a second count; every upper cell is the sum of its leaves.
    Cells holding nobody are left out, as the dashboard lists no empty row."""
    threshold = draw(st.sampled_from([3, 5]))
    small = st.one_of(st.integers(0, 4), st.integers(0, 12))
    provinces = draw(st.integers(1, 3))
    months = [f"m{i}" for i in range(draw(st.integers(1, 3)))]
    crossed = draw(st.booleans())
    areas: dict[str, list[str]] = {"nation": []}  # area -> its children
    for p in range(provinces):
        province = f"p{p}"
        areas["nation"].append(province)
        areas[province] = [f"{province}c{c}" for c in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            areas[province].append(f"{province}?")  # people whose commune is unknown
    leaves = [leaf for province in areas["nation"] for leaf in areas[province]]
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for leaf in leaves:
        for month in months:
            people = draw(small)
            counts[(leaf, month)] = (people, draw(st.integers(0, people)))

    def total(area: str, month: str) -> tuple[int, int]:
        if (area, month) in counts:
            return counts[(area, month)]
        parts = [total(child, month) for child in areas[area]]
        return (sum(p[0] for p in parts), sum(p[1] for p in parts))

    times = (["year"] if crossed else []) + months
    values: dict[tuple[str, str], tuple[int, int]] = {}
    for area in areas.keys() | set(leaves):
        for t in times:
            ts = months if t == "year" else [t]
            summed = [total(area, m) for m in ts]
            people, part = sum(s[0] for s in summed), sum(s[1] for s in summed)
            if people:
                values[(area, t)] = (people, part)
    cells: dict[Key, Cell] = {
        key: Cell(
            counts=(people, part),
            floors=(0, 0) if key[0].endswith("?") else (1, 0),
            published=not key[0].endswith("?"),
        )
        for key, (people, part) in values.items()
    }
    groups = []
    for area, children in areas.items():
        for t in times:
            kids = tuple((c, t) for c in children if (c, t) in cells)
            if (area, t) in cells and kids:
                groups.append(Group((area, t), kids))
    if crossed:
        for area in areas.keys() | set(leaves):
            kids = tuple((area, m) for m in months if (area, m) in cells)
            if (area, "year") in cells and kids:
                groups.append(Group((area, "year"), kids))
    primary = {
        k for k, c in cells.items() if not c.published or any(0 < n < threshold for n in c.counts)
    }
    return Table(cells, groups, threshold, primary)


def equations(table: Table, hidden: set[Key], count: int) -> tuple[list[Key], Any, Any]:
    """What a reader knows about the hidden values of ``count``: one equation per group (its
    published members moved to the right-hand side), unknowns in the order returned."""
    unknown = sorted(hidden, key=repr)
    index = {k: i for i, k in enumerate(unknown)}
    a_eq, b_eq = [], []
    for group in table.groups:
        row = np.zeros(len(unknown))
        rhs = 0.0
        for member, sign in [(group.parent, -1.0)] + [(c, 1.0) for c in group.children]:
            if member in index:
                row[index[member]] += sign
            else:
                rhs -= sign * table.cells[member].counts[count]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    return unknown, np.array(a_eq).reshape(len(a_eq), len(unknown)), np.array(b_eq)


def determined(a_eq: Any, i: int) -> bool:
    """Whether the equations alone fix unknown ``i`` (its unit vector is a combination of
    them: adding it as an equation does not raise the rank)."""
    if not len(a_eq):
        return False
    unit = np.zeros((1, a_eq.shape[1]))
    unit[0, i] = 1.0
    return bool(np.linalg.matrix_rank(np.vstack([a_eq, unit])) == np.linalg.matrix_rank(a_eq))


def attacker_range(
    table: Table, unknown: list[Key], a_eq: Any, b_eq: Any, key: Key, count: int
) -> tuple[float, float]:
    """The least and largest value of a hidden count given the equations and what a reader
    knows of a hidden row (it exists: at least its floor)."""
    bounds = [(table.cells[k].floors[count], None) for k in unknown]
    if not len(a_eq):
        return (bounds[unknown.index(key)][0], math.inf)
    goal = np.zeros(len(unknown))
    goal[unknown.index(key)] = 1.0
    low = linprog(goal, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    high = linprog(-goal, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert low.status == 0, "the true table must be feasible"
    return (low.fun, math.inf if high.status == 3 else -high.fun)


def pinned(least: float, most: float) -> bool:
    return most < math.inf and math.floor(most + 1e-6) == math.ceil(least - 1e-6)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tables())
def test_every_hidden_cell_survives_subtraction(table: Table) -> None:
    hidden = suppress(table.cells, table.groups, table.threshold)
    t = table.threshold
    assert table.primary <= hidden
    for key, cell in table.cells.items():
        if key not in hidden:
            assert not any(0 < n < t for n in cell.counts), key
    for group in table.groups:
        children = [c for c in group.children if c in hidden]
        if group.parent in hidden:
            assert children, f"{group.parent} is the sum of its published children"
            continue
        if not children:
            continue
        assert len(children) >= 2, f"{children[0]} = {group.parent} minus the published cells"
        for count in (0, 1):
            hidden_total = sum(table.cells[c].counts[count] for c in children)
            floors = sum(table.cells[c].floors[count] for c in children)
            assert hidden_total == 0 or (hidden_total >= t and hidden_total > floors), (
                group,
                count,
            )
    for count in (0, 1):
        unknown, a_eq, b_eq = equations(table, set(hidden), count)
        for i, key in enumerate(unknown):
            value = table.cells[key].counts[count]
            # no combination of the equations gives a hidden count (unless it is 0)
            assert value == 0 or not determined(a_eq, i), (key, count)
            if key in table.primary and value:
                # nor do they with the floors: a small count keeps some room
                least, most = attacker_range(table, unknown, a_eq, b_eq, key, count)
                assert not pinned(least, most), (key, count, least, most)


def test_the_textbook_cases() -> None:
    """A province of three communes (2, 9, 20): the 2 alone would be province minus the
    others, so the 9 goes too; five communes of one person each under a published five would
    each be pinned at one, so the province goes."""
    cells = {
        "p": Cell((31,), (1,)),
        "a": Cell((2,), (1,)),
        "b": Cell((9,), (1,)),
        "c": Cell((20,), (1,)),
    }
    assert suppress(cells, [Group("p", ("a", "b", "c"))], 5) == {"a", "b"}
    ones = {f"c{i}": Cell((1,), (1,)) for i in range(5)}
    assert suppress({"p": Cell((5,), (1,)), **ones}, [Group("p", tuple(ones))], 5) == {
        "p",
        *ones,
    }
    assert suppress(cells, [Group("p", ("a", "b", "c"))], 1) == frozenset()


def test_a_cell_linking_two_hidden_blocks_is_not_given_away() -> None:
    """A 2-D table (rows r1..r4 add up to published row totals, columns c1..c4 to column
    totals) where every row and column hides two cells, but one hidden cell is the only link
    between two hidden blocks: the row totals of one block minus its column totals give it.
    Rules 1-3 are satisfied; the audit must catch it."""
    values = {
        ("r1", "c1"): 3,
        ("r1", "c2"): 9,
        ("r2", "c1"): 8,
        ("r2", "c2"): 2,
        ("r2", "c3"): 7,  # the bridge
        ("r3", "c3"): 1,
        ("r3", "c4"): 11,
        ("r4", "c3"): 12,
        ("r4", "c4"): 4,
        ("r1", "c3"): 30,
        ("r1", "c4"): 40,
        ("r2", "c4"): 50,
        ("r3", "c1"): 60,
        ("r3", "c2"): 70,
        ("r4", "c1"): 80,
        ("r4", "c2"): 90,
    }
    rows, cols = ["r1", "r2", "r3", "r4"], ["c1", "c2", "c3", "c4"]
    cells: dict[Key, Cell] = {k: Cell((v,), (1,)) for k, v in values.items()}
    for r in rows:
        cells[(r, "all")] = Cell((sum(values[(r, c)] for c in cols),), (1,))
    for c in cols:
        cells[("all", c)] = Cell((sum(values[(r, c)] for r in rows),), (1,))
    cells[("all", "all")] = Cell((sum(values.values()),), (1,))
    groups = [Group((r, "all"), tuple((r, c) for c in cols)) for r in [*rows, "all"]]
    groups += [Group(("all", c), tuple((r, c) for r in rows)) for c in [*cols, "all"]]
    table = Table(cells, groups, 5, {k for k, c in cells.items() if c.counts[0] < 5})
    hidden = suppress(cells, groups, 5)
    assert ("r2", "c3") in hidden
    unknown, a_eq, b_eq = equations(table, set(hidden), 0)
    for i, key in enumerate(unknown):
        assert not determined(a_eq, i), key
        assert not pinned(*attacker_range(table, unknown, a_eq, b_eq, key, 0)), key


@pytest.mark.parametrize("threshold", [2, 5, 10])
def test_nothing_published_is_small(threshold: int) -> None:
    cells = {"p": Cell((40,), (1,)), **{f"c{i}": Cell((i + 1,), (1,)) for i in range(8)}}
    group = Group("p", tuple(k for k in cells if k != "p"))
    hidden = suppress(cells, [group], threshold)
    assert all(cells[k].counts[0] >= threshold for k in cells if k not in hidden)
