"""A fast FHIRPath evaluator for the expressions warehouse views use, over plain JSON.

fhirpathpy walks its parse tree node by node, wrapping every value in a ``ResourceNode``; a view
column such as ``code.coding.where(system = 'http://loinc.org').code.first()`` costs it tens of
microseconds per resource. :func:`compile_fast` turns the subset of FHIRPath that views use into
nested Python closures, once per view, that work on the resource's JSON directly:

- member chains (``period.start``), choice elements (``deceased.exists()``) and
  ``<member>.ofType(<Type>)`` on a choice element, read as the JSON property FHIR gives it
  (``value.ofType(Quantity)`` → ``valueQuantity``, ``effective.ofType(dateTime)`` →
  ``effectiveDateTime``);
- ``where(<criteria>)`` whose criteria are ``<path> = '<string>'`` / ``!= <boolean>``,
  ``exists()``, ``empty()``, ``and``, ``or`` and parentheses, with FHIRPath's three-valued logic;
- ``first()``, ``exists()``, ``empty()``, ``extension('<url>')``, ``toString()`` and
  ``substring(<int>[, <int>])`` on strings, ``join([sep])``, ``getResourceKey()``,
  ``getReferenceKey([Type])``.

The closures follow what fhirpathpy does, not only what the specification says, so a view gives
the same rows either way (fhirpathpy's ``=`` is ``false``, not an error, when the left side has
several items; ``'a' = {}`` is empty). Whatever the JSON does not settle on its own raises
:class:`Fallback` while running, and the caller evaluates the expression with fhirpathpy
instead: a primitive with extensions (``_birthDate``), a value-less element, a choice element
with an unexpected or ambiguous type, an equality on a complex value (fhirpathpy compares
Quantities by unit), ``toString()`` of a non-string. Anything outside the subset is not compiled
at all (``compile_fast`` returns None). A test compares both ways on every path of the warehouse
views over the demo population and on every member path of the Synthea sample.

See: https://hl7.org/fhirpath/N1/
See: https://hl7.org/fhir/R4/json.html#primitive (``_element`` holds a primitive's extensions)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhirpathpy.engine.evaluators import string_literal

from sokhoe.warehouse.fhirpath_functions import (
    MODEL,
    get_resource_key,
    join,
    reference_keys,
)

__all__ = ["Fallback", "FastPath", "compile_fast"]

#: A compiled expression: a collection of plain JSON values in, a collection out.
FastPath = Callable[[list[Any]], list[Any]]


class Fallback(Exception):
    """The JSON alone cannot settle this evaluation exactly; evaluate it with fhirpathpy."""


class _Unsupported(Exception):
    """The expression is outside the fast subset (raised while compiling only)."""


def _choice_types() -> dict[str, frozenset[str]]:
    """Choice element name → the JSON suffixes of its types, over the whole R4 model
    (``value`` → ``Quantity``, ``DateTime``…)."""
    found: dict[str, set[str]] = {}
    for path, types in MODEL["choiceTypePaths"].items():
        found.setdefault(path.rsplit(".", 1)[-1], set()).update(types)
    return {name: frozenset(types) for name, types in found.items()}


_CHOICES = _choice_types()
_MEMBER_RE = re.compile(r"[a-z][A-Za-z0-9_]*")
_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def compile_fast(tree: dict[str, Any]) -> FastPath | None:
    """The fast evaluator of a parsed expression (fhirpathpy's AST), or None outside the subset."""
    children = tree.get("children") or []
    if len(children) != 1:
        return None
    try:
        fn, _ = _expression(children[0])
    except _Unsupported:
        return None
    return fn


# --- compiling -------------------------------------------------------------------------------
# Each compiler returns (function, is_boolean): is_boolean says the function always gives [] or
# [True]/[False], which and/or and where() require of their operands.


def _expression(node: dict[str, Any]) -> tuple[FastPath, bool]:
    kind = node.get("type")
    children = node.get("children") or []
    if kind in ("TermExpression", "InvocationTerm", "ParenthesizedTerm") and len(children) == 1:
        return _expression(children[0])
    if kind == "MemberInvocation":
        return _member(_name(node), None), False
    if kind == "FunctionInvocation" and len(children) == 1:
        return _function(children[0])
    if kind == "InvocationExpression" and len(children) == 2:
        return _invocation(children[0], children[1])
    if kind == "EqualityExpression" and len(children) == 2:
        return _equality(node, children[0], children[1]), True
    if kind in ("AndExpression", "OrExpression") and len(children) == 2:
        return _logic(kind, children[0], children[1]), True
    raise _Unsupported(kind)


def _invocation(head: dict[str, Any], tail: dict[str, Any]) -> tuple[FastPath, bool]:
    """``head.tail``; ``member.ofType(T)`` is read as one JSON property (``valueQuantity``)."""
    fn = _functn(tail)
    if fn is not None and _name(fn) == "ofType":
        member, prefix = _last_member(head)
        step = _member(member, _of_type(fn, member))
    elif tail.get("type") == "MemberInvocation":
        prefix, step = head, _member(_name(tail), None)
    elif fn is not None:
        prefix = head
        step, boolean = _function(fn)
        first = _expression(prefix)[0]
        return _then(first, step), boolean
    else:
        raise _Unsupported(tail.get("type"))
    if prefix is None:
        return step, False
    return _then(_expression(prefix)[0], step), False


def _then(first: FastPath, second: FastPath) -> FastPath:
    return lambda focus: second(first(focus))


def _functn(node: dict[str, Any]) -> dict[str, Any] | None:
    children = node.get("children") or []
    if node.get("type") == "FunctionInvocation" and len(children) == 1:
        child: dict[str, Any] = children[0]
        return child if child.get("type") == "Functn" else None
    return None


def _name(node: dict[str, Any]) -> str:
    """The identifier of a MemberInvocation or Functn (`div` is a keyword used as a name)."""
    ident = (node.get("children") or [{}])[0]
    if ident.get("type") != "Identifier":
        raise _Unsupported("not an identifier")
    return str(ident.get("text", "")).strip("`")


def _last_member(node: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """Split ``a.b.c`` into ``c`` and the expression before it (None when ``c`` stands alone)."""
    kind = node.get("type")
    children = node.get("children") or []
    if kind in ("TermExpression", "InvocationTerm") and len(children) == 1:
        return _last_member(children[0])
    if kind == "MemberInvocation":
        return _name(node), None
    if kind == "InvocationExpression" and len(children) == 2:
        if children[1].get("type") == "MemberInvocation":
            return _name(children[1]), children[0]
    raise _Unsupported("ofType() not directly on a member")


def _params(fn: dict[str, Any]) -> list[dict[str, Any]]:
    children = fn.get("children") or []
    if len(children) == 1:
        return []
    if len(children) == 2 and children[1].get("type") == "ParamList":
        return list(children[1].get("children") or [])
    raise _Unsupported("parameters")


def _literal(node: dict[str, Any]) -> tuple[str, Any]:
    """A literal parameter: ("string", text) decoded as fhirpathpy decodes it, ("boolean", b) or
    ("integer", n)."""
    while node.get("type") in ("TermExpression", "LiteralTerm") and len(node["children"]) == 1:
        node = node["children"][0]
    kind = node.get("type")
    text = str(node.get("text", ""))
    if kind == "StringLiteral":
        return "string", string_literal({}, [], node)[0]  # type: ignore[no-untyped-call]
    if kind == "BooleanLiteral" and text in ("true", "false"):
        return "boolean", text == "true"
    if kind == "NumberLiteral" and re.fullmatch(r"\d+", text):
        return "integer", int(text)
    raise _Unsupported(f"literal {kind}")


def _of_type(fn: dict[str, Any], member: str) -> str:
    """The JSON suffix ``ofType(T)`` selects on choice element ``member`` (``dateTime`` →
    ``DateTime``); only a type the model lists for a choice element of that name."""
    params = _params(fn)
    if len(params) != 1:
        raise _Unsupported("ofType arity")
    text = str(params[0].get("text", ""))
    if not _TYPE_RE.fullmatch(text):
        raise _Unsupported("ofType type")
    suffix = text[0].upper() + text[1:]
    if suffix not in _CHOICES.get(member, frozenset()):
        raise _Unsupported("ofType on an element that is not a choice of that type")
    return suffix


def _function(fn: dict[str, Any]) -> tuple[FastPath, bool]:
    name = _name(fn)
    params = _params(fn)
    if name in ("first", "exists", "empty", "getResourceKey", "toString") and params:
        raise _Unsupported(f"{name} with parameters")
    if name == "first":
        return (lambda values: values[:1]), False
    if name == "exists":
        return (lambda values: [bool(values)]), True
    if name == "empty":
        return (lambda values: [not values]), True
    if name == "getResourceKey":
        return (lambda values: get_resource_key({}, values)), False
    if name == "toString":
        return _to_string, False
    if name == "getReferenceKey" and len(params) <= 1:
        wanted = str(params[0].get("text", "")) if params else None
        if wanted is not None and not re.fullmatch(r"[A-Z][A-Za-z]+", wanted):
            raise _Unsupported("getReferenceKey type")
        return (lambda values: reference_keys(values, wanted)), False
    if name == "join" and len(params) <= 1:
        separator = _string_param(params[0]) if params else ""
        return (lambda values: join({}, values, separator)), False
    if name == "extension" and len(params) == 1:
        return _extension(_string_param(params[0])), False
    if name == "substring" and 1 <= len(params) <= 2:
        return _substring(*(_integer_param(p) for p in params)), False
    if name == "where" and len(params) == 1:
        criteria, boolean = _expression(params[0])
        if not boolean:
            raise _Unsupported("where() criteria that may not be boolean")
        return _where(criteria), False
    raise _Unsupported(f"function {name}")


def _string_param(node: dict[str, Any]) -> str:
    kind, value = _literal(node)
    if kind != "string":
        raise _Unsupported("string parameter expected")
    return str(value)


def _integer_param(node: dict[str, Any]) -> int:
    kind, value = _literal(node)
    if kind != "integer":
        raise _Unsupported("integer parameter expected")
    return int(value)


def _equality(node: dict[str, Any], left: dict[str, Any], right: dict[str, Any]) -> FastPath:
    """``<path> = '<text>'`` / ``!= <boolean>``: empty when the left side is empty, false when it
    has several items (as fhirpathpy), else Python equality of the JSON value."""
    operator = "".join(node.get("terminalNodeText") or [])
    if operator not in ("=", "!="):
        raise _Unsupported(f"operator {operator}")
    kind, literal = _literal(right)
    if kind not in ("string", "boolean"):
        raise _Unsupported("equality with a number")
    path, _ = _expression(left)
    negate = operator == "!="

    def compare(focus: list[Any]) -> list[Any]:
        values = path(focus)
        if not values:
            return []
        if len(values) != 1:
            return [negate]
        value = values[0]
        if isinstance(value, dict | list):
            raise Fallback  # fhirpathpy compares Quantities by value and unit
        return [(value == literal) != negate]

    return compare


def _logic(kind: str, left: dict[str, Any], right: dict[str, Any]) -> FastPath:
    """``and`` / ``or`` with FHIRPath's three-valued logic ([] is unknown)."""
    a, a_boolean = _expression(left)
    b, b_boolean = _expression(right)
    if not (a_boolean and b_boolean):
        raise _Unsupported("and/or of a non-boolean")
    if kind == "AndExpression":

        def both(focus: list[Any]) -> list[Any]:
            x, y = a(focus), b(focus)
            if x == [False] or y == [False]:
                return [False]
            return [True] if x and y else []

        return both

    def either(focus: list[Any]) -> list[Any]:
        x, y = a(focus), b(focus)
        if x == [True] or y == [True]:
            return [True]
        return [False] if x and y else []

    return either


# --- running ---------------------------------------------------------------------------------


def _member(name: str, suffix: str | None) -> FastPath:
    """Member ``name`` of every item; with ``suffix``, choice element ``name[x]`` of that type.

    Falls back when an item carries ``_name`` (a primitive's extensions, which fhirpathpy
    returns as items of their own), when a value is a value-less element, and when a choice
    element has a type other than the one asked for (``ofType(Quantity)`` also accepts
    subtypes such as Age) or several.
    """
    if not _MEMBER_RE.fullmatch(name):
        raise _Unsupported(f"member {name}")  # Patient.x: a type name, left to fhirpathpy
    key = name + suffix if suffix else name
    types = _CHOICES.get(name, frozenset())

    underscored = "_" + key

    def members(values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for value in values:
            if type(value) is not dict:
                if isinstance(value, list):
                    raise Fallback
                continue
            child = value.get(key)
            if underscored in value:
                raise Fallback
            if child is None:
                if types and (suffix or name not in value):
                    child = _choice(value, name, key if suffix else None, types)
                if child is None:
                    continue
            if type(child) is list:
                for item in child:
                    if item is None or (
                        type(item) is dict and len(item) == 1 and "extension" in item
                    ):
                        raise Fallback
                found.extend(child)
            elif type(child) is dict and len(child) == 1 and "extension" in child:
                raise Fallback
            else:
                found.append(child)
        return found

    return members


def _choice(value: dict[str, Any], name: str, wanted: str | None, types: frozenset[str]) -> Any:
    """The one ``name[x]`` property present (None if none); Fallback when it is ambiguous, has
    extensions, or is not the ``wanted`` one."""
    variants = [
        k for k in value if k.startswith(name) and k[len(name) :] in types
    ]  # the suffixes are type names, so they start upper-case
    underscored = [k for k in value if k.startswith("_" + name) and k[len(name) + 1 :] in types]
    if not variants and not underscored:
        return None
    if len(variants) != 1 or underscored or (wanted is not None and variants[0] != wanted):
        raise Fallback
    return value[variants[0]]


def _where(criteria: FastPath) -> FastPath:
    """``where()``: the items for which the criteria give ``true`` (empty counts as false)."""
    return lambda values: [item for item in values if criteria([item]) == [True]]


def _extension(url: str) -> FastPath:
    """``extension(url)`` on elements; primitives keep theirs in ``_element``: fall back."""

    def extensions(values: list[Any]) -> list[Any]:
        found = []
        for value in values:
            if not isinstance(value, dict):
                raise Fallback
            for ext in value.get("extension") or ():
                if isinstance(ext, dict) and ext.get("url") == url:
                    found.append(ext)
        return found

    return extensions


def _to_string(values: list[Any]) -> list[Any]:
    if len(values) != 1:
        return []
    if not isinstance(values[0], str):
        raise Fallback  # numbers and booleans have FHIRPath spellings of their own
    return values


def _substring(start: int, length: int | None = None) -> FastPath:
    def substring(values: list[Any]) -> list[Any]:
        if not values:
            return []
        if len(values) != 1 or not isinstance(values[0], str):
            raise Fallback  # fhirpathpy raises; let it word the error
        text = values[0]
        if start >= len(text):
            return []
        return [text[start:] if length is None else text[start : start + length]]

    return substring
