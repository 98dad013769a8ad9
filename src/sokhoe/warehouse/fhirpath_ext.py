"""FHIRPath for SQL on FHIR views: strict parsing, fast evaluation, typed constants.

fhirpathpy does the FHIRPath work; this module adds what a view runner needs on top of it:

- **Strict parsing.** fhirpathpy's ``parse`` installs an ANTLR error listener that ignores syntax
  errors (``name.given.join(`` parses "successfully"), so :func:`compile_path` drives the same
  generated lexer and parser with a listener that raises, and checks that the whole text was read.
  Each expression is parsed once per view, never per resource.
- **Up-front checks.** The parsed tree is scanned for ``%constants`` and function names, so a view
  that names an undefined constant or an unknown function is rejected before any data is read.
- **A fast path.** The expressions views use most (member chains, ``ofType`` on choice
  elements, ``where(system = '…')``, ``extension(url)``, ``getReferenceKey``…) are compiled by
  :mod:`sokhoe.warehouse.fhirpath_fast` into closures over the JSON itself, ten or more times
  faster than fhirpathpy; :func:`evaluate_values` uses them and leaves the rest to fhirpathpy.
- **Typed constants.** A ViewDefinition ``constant`` becomes the FHIRPath value expressions
  compare it with (:func:`constant_value`).

The spec's extra functions (``getResourceKey``, ``getReferenceKey``, boundaries…) are in
:mod:`sokhoe.warehouse.fhirpath_functions`.

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/#required-fhirpath-expressionsfunctions
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from antlr4.tree.Tree import ParseTreeWalker  # type: ignore[import-untyped]
from fhirpathpy.engine import do_eval
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.invocations.constants import constants as _clock
from fhirpathpy.engine.nodes import FP_DateTime, FP_Quantity, FP_Time, ResourceNode
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from sokhoe.warehouse.fhirpath_fast import Fallback, FastPath, compile_fast
from sokhoe.warehouse.fhirpath_functions import FUNCTIONS, MODEL, FhirPathError, temporal_text

__all__ = [
    "BUILTIN_VARIABLES",
    "CONSTANT_TYPES",
    "MODEL",
    "RESOURCE_TYPES",
    "CompiledPath",
    "FhirPathError",
    "compile_path",
    "constant_value",
    "evaluate",
    "evaluate_fast",
    "evaluate_values",
    "plain",
    "start_run",
]

#: Environment variables every expression may use besides the view's constants.
BUILTIN_VARIABLES = frozenset(
    {"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"}
)

#: Resource types of FHIR R4 (the model's types whose parent is Resource or DomainResource).
RESOURCE_TYPES = frozenset(
    name
    for name, parent in MODEL["type2Parent"].items()
    if parent in ("Resource", "DomainResource") and name != "DomainResource"
)


@dataclass(frozen=True)
class CompiledPath:
    """A FHIRPath expression parsed once: its text, its tree and what it refers to."""

    text: str
    tree: dict[str, Any]
    variables: frozenset[str]
    functions: frozenset[str]
    #: For an expression in the fast subset: its compiled evaluator over plain JSON
    #: (:mod:`sokhoe.warehouse.fhirpath_fast`).
    fast: FastPath | None = None


class _RaisingListener(ErrorListener):  # type: ignore[misc]
    def syntaxError(  # ANTLR's method name
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise FhirPathError(f"syntax error at column {column + 1}: {msg}")


def _raise(e: Exception) -> None:
    raise FhirPathError(f"unexpected character in expression ({e})")


def compile_path(text: str) -> CompiledPath:
    """Parse ``text`` strictly; raise :class:`FhirPathError` on any syntax error."""
    if not text.strip():
        raise FhirPathError("empty expression")
    listener = _RaisingListener()
    lexer = FHIRPathLexer(InputStream(text))
    lexer.recover = _raise
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.buildParseTrees = True
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    ast = ASTPathListener()  # type: ignore[no-untyped-call]
    ParseTreeWalker().walk(ast, parser.expression())
    if tokens.LA(1) != Token.EOF:
        rest = tokens.LT(1)
        raise FhirPathError(f"unexpected {rest.text!r} at column {rest.column + 1}")
    tree: dict[str, Any] = ast.parentStack[0]
    variables, functions = _references(tree)
    unknown = sorted(functions - _KNOWN_FUNCTIONS)
    if unknown:
        raise FhirPathError(f"unknown FHIRPath function {unknown[0]}()")
    return CompiledPath(text, tree, frozenset(variables), frozenset(functions), compile_fast(tree))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children") or ():
        yield from _walk(child)


def _identifier(node: dict[str, Any]) -> str:
    for child in _walk(node):
        if child.get("type") == "Identifier":
            return str(child.get("text", "")).strip("`")
    # %'name' and %"name": the name is a string literal.
    return "".join(node.get("terminalNodeText", [])).strip("%'\"`")


def _references(tree: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The ``%variables`` and function names an expression uses."""
    variables: set[str] = set()
    functions: set[str] = set()
    for node in _walk(tree):
        kind = node.get("type")
        if kind == "ExternalConstant":
            variables.add(_identifier(node))
        elif kind == "Functn":
            functions.add(_identifier(node["children"][0]))
    return variables, functions


def evaluate(path: CompiledPath, focus: list[Any], variables: Mapping[str, Any]) -> list[Any]:
    """Evaluate ``path`` on ``focus`` (resources as dicts, or nodes from an earlier evaluation).

    Returns fhirpathpy's raw items (``ResourceNode``, ``Decimal``, ``FP_DateTime``…); nodes keep
    their FHIR type, so a nested evaluation (``forEach``) can still resolve choice types.
    """
    ctx: dict[str, Any] = {
        "dataRoot": focus,
        # fhirpathpy sets $this only inside where()/select(); a view path may use it at the top.
        "$this": focus,
        "vars": variables,
        "model": MODEL,
        "userInvocationTable": FUNCTIONS,
    }
    try:
        result = do_eval(ctx, focus, path.tree["children"][0])  # type: ignore[no-untyped-call]
    except FhirPathError:
        raise
    except Exception as e:  # fhirpathpy raises bare Exception/TypeError/ValueError
        raise FhirPathError(str(e) or type(e).__name__) from e
    return [item for item in result if not _is_valueless(item)]


def start_run() -> None:
    """Fix ``now()``/``today()`` for one run of a view (fhirpathpy caches them process-wide)."""
    _clock.reset()  # type: ignore[no-untyped-call]


def evaluate_values(
    path: CompiledPath, focus: list[Any], variables: Mapping[str, Any]
) -> list[Any]:
    """Evaluate ``path`` to plain JSON values (for columns and where clauses).

    An expression in the fast subset (member chains, ``ofType`` on choice elements, simple
    ``where``, ``extension``, ``first``, ``exists``, ``getReferenceKey``…) is evaluated by
    :mod:`sokhoe.warehouse.fhirpath_fast` over the JSON itself, many times faster than
    fhirpathpy and with the same result (tests compare the two on the demo and Synthea data);
    when the data needs the model to settle it (a primitive with extensions, an unexpected
    choice type) the evaluation is left to fhirpathpy.
    """
    if path.fast is not None:
        values = _plain_focus(focus)
        if values is not None:
            try:
                return path.fast(values)
            except Fallback:
                pass
    return [plain(item) for item in evaluate(path, focus, variables)]


def evaluate_fast(path: CompiledPath, focus: list[Any]) -> list[Any] | None:
    """The fast evaluation alone: None when ``path`` is outside the subset or the data makes
    it give way to fhirpathpy (for tests and measurements)."""
    values = _plain_focus(focus)
    if path.fast is None or values is None:
        return None
    try:
        return path.fast(values)
    except Fallback:
        return None


def _plain_focus(focus: list[Any]) -> list[Any] | None:
    """The focus as JSON values; None when an item is not plain JSON (a Decimal, a date, a
    value-less element), which fhirpathpy must handle."""
    if len(focus) == 1 and type(focus[0]) is dict and "resourceType" in focus[0]:
        return focus  # a resource: the common case, checked cheaply
    values = []
    for item in focus:
        data = item.data if isinstance(item, ResourceNode) else item
        if not isinstance(data, dict | str | bool | int | float) or _is_valueless(data):
            return None
        values.append(data)
    return values


def _is_valueless(item: Any) -> bool:
    """A primitive with no value, only an extension: ``null`` in an array (``given: ["a",
    null]`` with ``_given``) or fhirpathpy's ``{"extension": …}`` stand-in. A view cell needs a
    value, so these are dropped, as the member walk drops them."""
    data = item.data if isinstance(item, ResourceNode) else item
    return data is None or (isinstance(data, dict) and list(data) == ["extension"])


def plain(item: Any) -> Any:
    """A raw evaluation item as a JSON-ready Python value (``Decimal`` → ``float``)."""
    if isinstance(item, ResourceNode):
        item = item.data
    if isinstance(item, bool | int | str) or item is None:
        return item
    if isinstance(item, Decimal):
        if item.as_tuple().exponent == 0:
            return int(item)
        return float(item)
    if isinstance(item, FP_DateTime | FP_Time):
        # The text as written: str() of these fills missing parts (2010-10 → 2010-10-23T00:00).
        return temporal_text(item)
    if isinstance(item, FP_Quantity):
        return str(item)
    return item


# --- constants ---------------------------------------------------------------------------

_DATE = r"\d{4}(-\d{2}(-\d{2})?)?"
_TIME = r"\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?"
_ZONE = r"(Z|[+-]\d{2}:\d{2})"
_DATE_RE = re.compile(rf"^{_DATE}$")
_DATETIME_RE = re.compile(rf"^{_DATE}(T{_TIME}{_ZONE}?)?$")
_TIME_RE = re.compile(rf"^{_TIME}$")

_INTEGER_TYPES = ("Integer", "PositiveInt", "UnsignedInt")
_STRING_TYPES = (
    "String", "Code", "Id", "Uri", "Url", "Canonical", "Oid", "Uuid", "Markdown", "Base64Binary",
)  # fmt: skip
#: The ``value[x]`` types a ViewDefinition constant may have.
CONSTANT_TYPES = frozenset(
    ("Boolean", "Decimal", "Integer64", "Date", "DateTime", "Instant", "Time",
     *_INTEGER_TYPES, *_STRING_TYPES)
)  # fmt: skip


def constant_value(type_name: str, value: Any) -> Any:
    """A constant's JSON value as the FHIRPath value expressions compare it with.

    Raises ``ValueError`` naming the problem when the value does not fit its declared type.
    """
    if type_name == "Boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if type_name in _INTEGER_TYPES or type_name == "Integer64":
        if type_name == "Integer64" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if (type_name == "PositiveInt" and value < 1) or (type_name == "UnsignedInt" and value < 0):
            raise ValueError(f"is out of range for {type_name[0].lower()}{type_name[1:]}")
        return value
    if type_name == "Decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return Decimal(str(value))
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    if type_name == "Date" and _DATE_RE.match(value):
        return FP_DateTime(value)  # type: ignore[no-untyped-call]
    if type_name in ("DateTime", "Instant") and _DATETIME_RE.match(value):
        return FP_DateTime(value)  # type: ignore[no-untyped-call]
    if type_name == "Time" and _TIME_RE.match(value):
        return FP_Time(value)  # type: ignore[no-untyped-call]
    if type_name in ("Date", "DateTime", "Instant", "Time"):
        raise ValueError(f"is not a valid {type_name[0].lower()}{type_name[1:]}")
    return value


_KNOWN_FUNCTIONS = frozenset(invocation_registry) | frozenset(FUNCTIONS)
