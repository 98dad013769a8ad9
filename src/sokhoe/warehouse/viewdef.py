"""SQL on FHIR v2 ViewDefinitions: parsed and validated once, then run over resources.

A ViewDefinition turns resources of one type into rows of named, typed columns with FHIRPath
(`select` nested, `column`, `forEach`, `forEachOrNull`, `repeat`, `unionAll`, `where`,
`constant`, `%rowIndex`). :meth:`ViewDefinition.parse` checks the whole structure before any
data is read (unknown elements, missing names or paths, duplicate column names, `unionAll`
branches whose columns differ, bad constants, FHIRPath syntax, undefined ``%constants``) and
raises :class:`~sokhoe.errors.InvalidRequest` naming the faulty element
(``ViewDefinition.select[1].column[0].path``). :func:`run_view` streams rows, one resource at a
time, so a view runs over a file of any size in constant memory.

Semantics follow the specification's functional model: a select's rows are the cross product of
its own columns, each nested ``select`` and its ``unionAll`` (the concatenation of its branches);
``forEach`` repeats that per item, ``forEachOrNull`` evaluates it once on an empty focus when
there is no item; ``repeat`` walks the given paths recursively, depth first. ``%rowIndex`` is the
0-based index of the focus in the nearest enclosing iteration (0 outside any).

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/StructureDefinition-ViewDefinition.html
See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/implementer_guidance.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import product
from types import MappingProxyType
from typing import Any

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.fhirpath_ext import (
    BUILTIN_VARIABLES,
    CONSTANT_TYPES,
    RESOURCE_TYPES,
    CompiledPath,
    FhirPathError,
    compile_path,
    constant_value,
    evaluate,
    evaluate_values,
    start_run,
)

#: The canonical URL of the ViewDefinition logical model (accepted as ``resourceType``).
VIEW_DEFINITION_URL = "https://sql-on-fhir.org/ig/StructureDefinition/ViewDefinition"

#: How deep ``repeat`` may descend (real questionnaires nest a handful of levels).
MAX_REPEAT_DEPTH = 64

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_COMMON_KEYS = frozenset({"id", "extension", "modifierExtension"})
_VIEW_KEYS = _COMMON_KEYS | {
    "resourceType", "meta", "implicitRules", "language", "text", "contained",
    "url", "identifier", "version", "versionAlgorithmString", "versionAlgorithmCoding", "name",
    "title", "status", "experimental", "date", "publisher", "contact", "description",
    "useContext", "jurisdiction", "purpose", "copyright", "copyrightLabel",
    "resource", "resourceProfile", "fhirVersion", "constant", "select", "where",
}  # fmt: skip
_SELECT_KEYS = _COMMON_KEYS | {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"}
_COLUMN_KEYS = _COMMON_KEYS | {"name", "path", "description", "collection", "type", "tag"}
_WHERE_KEYS = _COMMON_KEYS | {"path", "description"}


@dataclass(frozen=True)
class Column:
    """One output column: its name, FHIRPath, declared FHIR type and whether it holds a list."""

    name: str
    path: CompiledPath
    type: str | None
    collection: bool
    description: str | None
    location: str


@dataclass(frozen=True)
class Select:
    """One ``select`` structure (the view itself is the root one, with only nested selects)."""

    columns: tuple[Column, ...]
    selects: tuple[Select, ...]
    union_all: tuple[Select, ...]
    for_each: CompiledPath | None
    or_null: bool
    repeat: tuple[CompiledPath, ...]
    location: str

    def column_list(self) -> list[Column]:
        """This select's columns in output order: own, nested selects, then ``unionAll``."""
        out = list(self.columns)
        for child in self.selects:
            out.extend(child.column_list())
        if self.union_all:
            out.extend(self.union_all[0].column_list())
        return out


@dataclass(frozen=True)
class ViewDefinition:
    """A validated ViewDefinition, its expressions compiled once."""

    resource: str
    name: str | None
    root: Select
    where: tuple[tuple[CompiledPath, str], ...]
    constants: Mapping[str, Any]
    columns: tuple[Column, ...]

    @classmethod
    def parse(cls, data: Any) -> ViewDefinition:
        """Validate ``data`` (a ViewDefinition as JSON) and compile its expressions.

        Raises InvalidRequest naming the first faulty element; nothing is evaluated.
        """
        return _Parser().view(data)


def parse_view(data: Any) -> ViewDefinition:
    """Shorthand for :meth:`ViewDefinition.parse`."""
    return ViewDefinition.parse(data)


def columns(view: ViewDefinition | Mapping[str, Any]) -> tuple[Column, ...]:
    """The view's columns in output order (name, declared ``type``, ``collection``)."""
    return _as_view(view).columns


def run_view(
    view: ViewDefinition | Mapping[str, Any], resources: Iterable[Mapping[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Rows of ``view`` over ``resources``; resources of other types are skipped.

    Each row is a dict with every column, in column order (``None`` for no value, a list for a
    ``collection`` column). A resource the view cannot be applied to (a ``where`` that is not
    boolean, several values in a non-collection column, a FHIRPath runtime error) raises
    InvalidRequest naming the element and the resource.
    """
    parsed = _as_view(view)
    names = [c.name for c in parsed.columns]
    start_run()
    for resource in resources:
        if resource.get("resourceType") != parsed.resource:
            continue
        runner = _Run(parsed, resource)
        if not runner.included():
            continue
        for row in runner.rows(parsed.root, [resource], 0):
            yield {name: row.get(name) for name in names}


def _as_view(view: ViewDefinition | Mapping[str, Any]) -> ViewDefinition:
    return view if isinstance(view, ViewDefinition) else ViewDefinition.parse(view)


# --- running ---------------------------------------------------------------------------------


class _Run:
    """The evaluation of one view over one resource."""

    def __init__(self, view: ViewDefinition, resource: Mapping[str, Any]):
        self.view = view
        self.resource = resource
        self.variables: dict[str, Any] = {
            **view.constants,
            "resource": resource,
            "rootResource": resource,
            "context": resource,
            "ucum": "http://unitsofmeasure.org",
            "sct": "http://snomed.info/sct",
            "loinc": "http://loinc.org",
            "rowIndex": 0,
        }

    def _fail(self, location: str, message: str) -> InvalidRequest:
        ref = f"{self.resource.get('resourceType')}/{self.resource.get('id', '?')}"
        return InvalidRequest(f"{message} (resource {ref})", location, code="processing")

    def _eval(
        self, path: CompiledPath, focus: list[Any], row_index: int, where: str, *, nodes: bool
    ) -> list[Any]:
        """Evaluate to typed nodes (to iterate over) or to plain values (for cells)."""
        variables = self.variables
        if variables["rowIndex"] != row_index:
            variables = {**variables, "rowIndex": row_index}
        try:
            if nodes:
                return evaluate(path, focus, variables)
            return evaluate_values(path, focus, variables)
        except FhirPathError as e:
            raise self._fail(where, f"cannot evaluate {path.text!r}: {e}") from e

    def included(self) -> bool:
        """Whether every ``where`` of the view holds; a non-boolean result is an error."""
        for path, where in self.view.where:
            result = self._eval(path, [self.resource], 0, where, nodes=False)
            if not result:
                return False
            if len(result) > 1 or not isinstance(result[0], bool):
                raise self._fail(
                    where, f"where path {path.text!r} must evaluate to a boolean, got {result!r}"
                )
            if not result[0]:
                return False
        return True

    def rows(self, select: Select, focus: list[Any], row_index: int) -> list[dict[str, Any]]:
        """The rows ``select`` makes from ``focus`` (iterating if it has forEach/repeat)."""
        if select.for_each is not None:
            where = f"{select.location}.{'forEachOrNull' if select.or_null else 'forEach'}"
            items = self._eval(select.for_each, focus, row_index, where, nodes=True)
            if not items:
                return self._focus_rows(select, [], 0) if select.or_null else []
        elif select.repeat:
            items = list(self._descendants(select, focus, row_index))
        else:
            return self._focus_rows(select, focus, row_index)
        return [row for i, item in enumerate(items) for row in self._focus_rows(select, [item], i)]

    def _descendants(
        self, select: Select, focus: list[Any], row_index: int, depth: int = 0
    ) -> Iterator[Any]:
        """``repeat``: every node reachable through the paths, depth first, in document order.

        A path that does not descend (``repeat: ["$this"]``) would never end, so nesting deeper
        than :data:`MAX_REPEAT_DEPTH` is an error.
        """
        if depth > MAX_REPEAT_DEPTH:
            raise self._fail(
                f"{select.location}.repeat", f"repeat nests deeper than {MAX_REPEAT_DEPTH} levels"
            )
        for item in focus:
            children: list[Any] = []
            for path in select.repeat:
                children.extend(
                    self._eval(path, [item], row_index, f"{select.location}.repeat", nodes=True)
                )
            for child in children:
                yield child
                yield from self._descendants(select, [child], row_index, depth + 1)

    def _focus_rows(self, select: Select, focus: list[Any], row_index: int) -> list[dict[str, Any]]:
        own: dict[str, Any] = {}
        for column in select.columns:
            own[column.name] = self._column_value(column, focus, row_index)
        parts: list[list[dict[str, Any]]] = [[own]]
        for child in select.selects:
            child_rows = self.rows(child, focus, row_index)
            if not child_rows:
                return []
            parts.append(child_rows)
        if select.union_all:
            union_rows = [r for b in select.union_all for r in self.rows(b, focus, row_index)]
            if not union_rows:
                return []
            parts.append(union_rows)
        if len(parts) == 1:
            return [own]
        return [{k: v for part in combo for k, v in part.items()} for combo in product(*parts)]

    def _column_value(self, column: Column, focus: list[Any], row_index: int) -> Any:
        items = self._eval(column.path, focus, row_index, f"{column.location}.path", nodes=False)
        if column.collection:
            return items
        if len(items) > 1:
            raise self._fail(
                f"{column.location}.path",
                f"column {column.name!r} ({column.path.text!r}) gave {len(items)} values; "
                "declare it with collection: true or narrow the path (e.g. first())",
            )
        return items[0] if items else None


# --- parsing and validation ------------------------------------------------------------------


class _Parser:
    """Validates a ViewDefinition's JSON; raises InvalidRequest at the first fault."""

    def __init__(self) -> None:
        self.constant_names: set[str] = set()

    @staticmethod
    def _fail(message: str, location: str) -> InvalidRequest:
        return InvalidRequest(f"invalid ViewDefinition: {message}", location)

    def _object(self, data: Any, location: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self._fail(f"{location} must be a JSON object", location)
        for key in data:
            if key not in allowed and not (isinstance(key, str) and key.startswith("_")):
                raise self._fail(f"unknown element {key!r} in {location}", f"{location}.{key}")
        return data

    def _list(self, data: Mapping[str, Any], key: str, location: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self._fail(f"{location}.{key} must be an array", f"{location}.{key}")
        return value

    def _string(self, data: Mapping[str, Any], key: str, location: str) -> str | None:
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self._fail(f"{location}.{key} must be a non-empty string", f"{location}.{key}")
        return value

    def _path(self, text: Any, location: str) -> CompiledPath:
        if not isinstance(text, str):
            raise self._fail(f"{location} must be a FHIRPath string", location)
        try:
            path = compile_path(text)
        except FhirPathError as e:
            raise self._fail(f"{location} {text!r}: {e}", location) from e
        undefined = sorted(path.variables - self.constant_names - BUILTIN_VARIABLES)
        if undefined:
            raise self._fail(f"{location} uses undefined constant %{undefined[0]}", location)
        return path

    def view(self, data: Any) -> ViewDefinition:
        loc = "ViewDefinition"
        view = self._object(data, loc, _VIEW_KEYS)
        kind = view.get("resourceType")
        if kind is not None and kind not in ("ViewDefinition", VIEW_DEFINITION_URL):
            raise self._fail(
                f"resourceType must be ViewDefinition, not {kind!r}", f"{loc}.resourceType"
            )
        resource = self._string(view, "resource", loc)
        if resource is None:
            raise self._fail(
                "resource (the FHIR resource type it views) is required", f"{loc}.resource"
            )
        if resource not in RESOURCE_TYPES:
            raise self._fail(
                f"resource {resource!r} is not a FHIR R4 resource type", f"{loc}.resource"
            )
        name = self._string(view, "name", loc)
        if name is not None and not _NAME_RE.match(name):
            raise self._fail(f"name {name!r} must match {_NAME_RE.pattern}", f"{loc}.name")
        constants = self._constants(self._list(view, "constant", loc), loc)
        selects = self._list(view, "select", loc)
        if not selects:
            raise self._fail("select is required and must not be empty", f"{loc}.select")
        root = Select(
            columns=(),
            selects=tuple(self._select(s, f"{loc}.select[{i}]") for i, s in enumerate(selects)),
            union_all=(),
            for_each=None,
            or_null=False,
            repeat=(),
            location=loc,
        )
        wheres = []
        for i, item in enumerate(self._list(view, "where", loc)):
            where_loc = f"{loc}.where[{i}]"
            where = self._object(item, where_loc, _WHERE_KEYS)
            if "path" not in where:
                raise self._fail(f"{where_loc}.path is required", f"{where_loc}.path")
            wheres.append((self._path(where["path"], f"{where_loc}.path"), f"{where_loc}.path"))
        cols = root.column_list()
        seen: dict[str, str] = {}
        for col in cols:
            if col.name in seen:
                raise self._fail(
                    f"column name {col.name!r} is used twice ({seen[col.name]} and {col.location})",
                    col.location,
                )
            seen[col.name] = col.location
        return ViewDefinition(
            resource=resource,
            name=name,
            root=root,
            where=tuple(wheres),
            constants=MappingProxyType(constants),
            columns=tuple(cols),
        )

    def _constants(self, items: list[Any], loc: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, item in enumerate(items):
            c_loc = f"{loc}.constant[{i}]"
            value_keys = {f"value{t}" for t in CONSTANT_TYPES}
            constant = self._object(item, c_loc, _COMMON_KEYS | {"name"} | value_keys)
            name = constant.get("name")
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise self._fail(f"{c_loc}.name must match {_NAME_RE.pattern}", f"{c_loc}.name")
            if name in out or name in BUILTIN_VARIABLES:
                raise self._fail(f"constant %{name} is defined twice or reserved", f"{c_loc}.name")
            given = [k for k in constant if k.startswith("value")]
            if len(given) != 1:
                raise self._fail(
                    f"constant %{name} needs exactly one value[x] ({len(given)} given)", c_loc
                )
            try:
                out[name] = constant_value(given[0][5:], constant[given[0]])
            except ValueError as e:
                raise self._fail(f"{c_loc}.{given[0]} {e}", f"{c_loc}.{given[0]}") from e
        self.constant_names = set(out)
        return out

    def _select(self, data: Any, loc: str) -> Select:
        select = self._object(data, loc, _SELECT_KEYS)
        iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in select]
        if len(iterators) > 1:
            raise self._fail(f"{loc} may have only one of {', '.join(iterators)}", loc)
        for_each = None
        if "forEach" in select or "forEachOrNull" in select:
            key = "forEach" if "forEach" in select else "forEachOrNull"
            for_each = self._path(select[key], f"{loc}.{key}")
        repeat: tuple[CompiledPath, ...] = ()
        if "repeat" in select:
            paths = select["repeat"]
            if not isinstance(paths, list) or not paths:
                raise self._fail(
                    f"{loc}.repeat must be a non-empty array of FHIRPath", f"{loc}.repeat"
                )
            repeat = tuple(self._path(p, f"{loc}.repeat[{i}]") for i, p in enumerate(paths))
        cols = tuple(
            self._column(c, f"{loc}.column[{i}]")
            for i, c in enumerate(self._list(select, "column", loc))
        )
        selects = tuple(
            self._select(s, f"{loc}.select[{i}]")
            for i, s in enumerate(self._list(select, "select", loc))
        )
        union = tuple(
            self._select(s, f"{loc}.unionAll[{i}]")
            for i, s in enumerate(self._list(select, "unionAll", loc))
        )
        if not (cols or selects or union):
            raise self._fail(f"{loc} needs a column, select or unionAll", loc)
        if union:
            first = [c.name for c in union[0].column_list()]
            for i, branch in enumerate(union[1:], start=1):
                names = [c.name for c in branch.column_list()]
                if names != first:
                    raise self._fail(
                        f"{loc}.unionAll[{i}] has columns {names}, but unionAll[0] has {first} "
                        "(every branch needs the same names in the same order)",
                        f"{loc}.unionAll[{i}]",
                    )
        return Select(
            columns=cols,
            selects=selects,
            union_all=union,
            for_each=for_each,
            or_null="forEachOrNull" in select,
            repeat=repeat,
            location=loc,
        )

    def _column(self, data: Any, loc: str) -> Column:
        column = self._object(data, loc, _COLUMN_KEYS)
        name = column.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise self._fail(
                f"{loc}.name is required and must match {_NAME_RE.pattern}", f"{loc}.name"
            )
        if "path" not in column:
            raise self._fail(f"{loc}.path is required", f"{loc}.path")
        collection = column.get("collection", False)
        if not isinstance(collection, bool):
            raise self._fail(f"{loc}.collection must be true or false", f"{loc}.collection")
        kind = self._string(column, "type", loc)
        if kind is not None and not _NAME_RE.match(kind):
            raise self._fail(f"{loc}.type {kind!r} is not a FHIR type name", f"{loc}.type")
        return Column(
            name=name,
            path=self._path(column["path"], f"{loc}.path"),
            type=kind,
            collection=collection,
            description=self._string(column, "description", loc),
            location=loc,
        )
