"""Compile the FHIRPath of R4 search parameters into plain Python path walkers.

Indexing must keep up with bulk loads (≥ 10,000 resources/s on one core), which a general FHIRPath
interpreter cannot: fhirpathpy needs tens of microseconds per expression. Nearly every R4
search expression is a simple path, though: ``A.b.c``, unions, ``(A.value as Quantity)``,
``A.value.as(Quantity)``, ``.where(resolve() is Patient)``, ``.where(system='email')``. Those are
compiled here, against the R4 element definitions, into walkers over the JSON dicts:

* choice elements fan out at compile time: ``Observation.value`` becomes one walker per
  ``value[x]`` type (``valueQuantity``, ``valueCodeableConcept``…), and ``as(Quantity)`` keeps
  only ``valueQuantity``; so every walker yields values of one statically known FHIR type, which
  the indexer needs to turn them into rows;
* ``resolve() is X`` cannot fetch anything while indexing; it is read as "the reference points at
  an X" (the type in the reference, ``Reference.type``, or a contained resource's type), which is
  what the R4 expressions mean by it;
* ``as`` filters item by item (``ofType``): R4 applies it to collections
  (``Observation.component.value as Quantity``) although FHIRPath N1 demands a singleton.

Anything else falls back to fhirpathpy with the same two readings, compiled once per expression.
See: https://hl7.org/fhir/R4/fhirpath.html and https://hl7.org/fhirpath/N1/
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from sokhoe.fhir.definitions import ElementDef, resource_types, types
from sokhoe.fhir.searchparams import branch_root, split_union

Walker = Callable[[dict[str, Any]], list[Any]]

_GET, _EQ, _REF_IS = 0, 1, 2
_Op = tuple[Any, ...]


class Unsupported(Exception):
    """The expression uses FHIRPath the fast compiler does not handle."""


# -- references ------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def parse_reference(ref: str) -> tuple[str | None, str | None]:
    """``(type, id)`` of a literal reference, or ``(None, None)`` if it names no local resource.

    ``Type/id``, ``Type/id/_history/n`` and absolute ``http…/Type/id`` give the type and id (the
    version is dropped); ``urn:uuid:``, ``urn:oid:``, contained ``#x`` and conditional
    references give nothing.
    See: https://hl7.org/fhir/R4/references.html#literal
    """
    if not ref or ref[0] == "#" or ref.startswith("urn:") or "?" in ref:
        return None, None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2:
        return None, None
    if len(parts) > 2 and "://" not in ref:
        return None, None
    rtype, rid = parts[-2], parts[-1]
    if rtype in resource_types() and _ID.match(rid):
        return rtype, rid
    return None, None


def reference_type(node: dict[str, Any], root: dict[str, Any] | None) -> str | None:
    """What ``resolve()`` would return the type of: the target's resource type, if knowable."""
    ref = node.get("reference")
    if isinstance(ref, str):
        if ref.startswith("#") and root is not None:
            for contained in root.get("contained") or ():
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    rtype = contained.get("resourceType")
                    return rtype if isinstance(rtype, str) else None
        rtype = parse_reference(ref)[0]
        if rtype is not None:
            return rtype
    declared = node.get("type")
    if isinstance(declared, str):
        declared = declared.removeprefix(_SD_PREFIX)
        if declared in resource_types():
            return declared
    return None


# -- parsing the supported subset ------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>'(?:[^'\\]|\\.)*')|(?P<p>[.()=]))"
)


def _tokens(expr: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            if expr[pos:].strip() == "":
                break
            raise Unsupported(expr)
        out.append(m.group(m.lastgroup or "p"))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over: ``Root(.step)*``, ``(chain as T)(.step)*``; steps are names,
    ``as(T)``, ``ofType(T)``, ``where(resolve() is T)``, ``where(name = 'literal')``."""

    def __init__(self, expr: str) -> None:
        self.toks = _tokens(expr)
        self.i = 0

    def _peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def _take(self, expected: str | None = None) -> str:
        tok = self._peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unsupported(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def _ident(self) -> str:
        tok = self._take()
        if not (tok[0].isalpha() or tok[0] == "_"):
            raise Unsupported(tok)
        return tok

    def parse(self) -> list[tuple[str, ...]]:
        steps = self._term()
        if self._peek() is not None:
            raise Unsupported(f"trailing {self._peek()!r}")
        return steps

    def _term(self) -> list[tuple[str, ...]]:
        if self._peek() == "(":
            self._take("(")
            steps = self._chain()
            self._take("as")
            steps.append(("as", self._ident()))
            self._take(")")
        else:
            steps = self._chain()
        while self._peek() == ".":
            self._take(".")
            steps.append(self._step())
        return steps

    def _chain(self) -> list[tuple[str, ...]]:
        steps: list[tuple[str, ...]] = [("root", self._ident())]
        while self._peek() == ".":
            self._take(".")
            steps.append(self._step())
        return steps

    def _step(self) -> tuple[str, ...]:
        name = self._ident()
        if self._peek() != "(":
            return ("child", name)
        self._take("(")
        if name in ("as", "ofType"):
            step: tuple[str, ...] = ("as", self._ident())
        elif name == "where" and self._peek() == "resolve":
            self._take("resolve")
            self._take("(")
            self._take(")")
            self._take("is")
            step = ("ref_is", self._ident())
        elif name == "where":
            field = self._ident()
            self._take("=")
            lit = self._take()
            if not lit.startswith("'"):
                raise Unsupported(lit)
            step = ("eq", field, lit[1:-1].replace("\\'", "'"))
        else:
            raise Unsupported(name)
        self._take(")")
        return step


# -- typing against the R4 element definitions ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    ops: tuple[_Op, ...]
    owner: str
    """The type whose snapshot holds ``path``'s children."""
    path: str
    type_code: str
    many: bool


@cache
def _elements(owner: str) -> dict[str, ElementDef]:
    return {e.path: e for e in types()[owner].elements}


def _is_subtype(code: str, ancestor: str) -> bool:
    all_types = types()
    seen: str | None = code
    while seen is not None:
        if seen == ancestor:
            return True
        seen = all_types[seen].base if seen in all_types else None
    return False


def _children(state: _State, name: str) -> list[_State]:
    elems = _elements(state.owner)
    elem = elems.get(f"{state.path}.{name}")
    choice = elem is None and f"{state.path}.{name}[x]" in elems
    if choice:
        elem = elems[f"{state.path}.{name}[x]"]
    if elem is None:
        code = state.type_code
        if code != state.owner and code in types() and types()[code].kind == "complex-type":
            return _children(_State(state.ops, code, code, code, state.many), name)
        raise Unsupported(f"{state.path}.{name}")
    many = state.many or elem.max != "1"
    if elem.content_reference:
        ref = elem.content_reference.lstrip("#")
        owner = ref.split(".", 1)[0]
        return [_State((*state.ops, (_GET, name)), owner, ref, "BackboneElement", many)]
    out = []
    for code, _targets in elem.types:
        key = name + code[0].upper() + code[1:] if choice else name
        ops = (*state.ops, (_GET, key))
        if code in ("BackboneElement", "Element"):
            out.append(_State(ops, state.owner, elem.path, code, many))
        elif code == "Resource" or code not in types():
            raise Unsupported(f"{elem.path}: {code}")
        else:
            out.append(_State(ops, code, code, code, many))
    return out


def _apply(states: list[_State], step: tuple[str, ...]) -> list[_State]:
    kind = step[0]
    if kind == "child":
        return [child for s in states for child in _children(s, step[1])]
    if kind == "as":
        if step[1] not in types():
            raise Unsupported(step[1])
        return [s for s in states if _is_subtype(s.type_code, step[1])]
    if kind == "ref_is":
        if any(s.type_code != "Reference" for s in states):
            raise Unsupported("resolve() on a non-Reference")
        return [_State((*s.ops, (_REF_IS, step[1])), *_rest(s)) for s in states]
    if kind == "eq":
        out = []
        for s in states:
            fields = _children(_State((), s.owner, s.path, s.type_code, False), step[1])
            if (
                len(fields) != 1
                or fields[0].many
                or types()[fields[0].type_code].kind != ("primitive-type")
            ):
                raise Unsupported(f"where({step[1]}=…) needs a singleton primitive")
            out.append(_State((*s.ops, (_EQ, step[1], step[2])), *_rest(s)))
        return out
    raise Unsupported(kind)


def _rest(s: _State) -> tuple[str, str, str, bool]:
    return s.owner, s.path, s.type_code, s.many


# -- walkers ----------------------------------------------------------------------------------


def _walker(ops: tuple[_Op, ...]) -> Walker:
    """A closure walking ``ops``; plain key paths of length 1 and 2 get unrolled versions."""
    if len(ops) == 1 and ops[0][0] == _GET:
        k1 = ops[0][1]

        def get1(r: dict[str, Any]) -> list[Any]:
            v = r.get(k1)
            if v is None:
                return []
            return v if type(v) is list else [v]

        return get1
    if len(ops) == 2 and ops[0][0] == _GET and ops[1][0] == _GET:
        k1, k2 = ops[0][1], ops[1][1]

        def get2(r: dict[str, Any]) -> list[Any]:
            v = r.get(k1)
            if v is None:
                return []
            out: list[Any] = []
            for n in v if type(v) is list else (v,):
                if type(n) is dict:
                    x = n.get(k2)
                    if x is not None:
                        if type(x) is list:
                            out.extend(x)
                        else:
                            out.append(x)
            return out

        return get2

    def walk(r: dict[str, Any]) -> list[Any]:
        nodes: list[Any] = [r]
        for op in ops:
            kind = op[0]
            if kind == _GET:
                key = op[1]
                nxt: list[Any] = []
                for n in nodes:
                    if type(n) is dict:
                        x = n.get(key)
                        if x is not None:
                            if type(x) is list:
                                nxt.extend(x)
                            else:
                                nxt.append(x)
                nodes = nxt
            elif kind == _EQ:
                nodes = [n for n in nodes if type(n) is dict and n.get(op[1]) == op[2]]
            else:
                nodes = [n for n in nodes if type(n) is dict and reference_type(n, r) == op[1]]
            if not nodes:
                break
        return nodes

    return walk


@dataclass(frozen=True, slots=True)
class TypedPath:
    """One compiled walk; every value it yields has FHIR type ``type_code``."""

    type_code: str
    first_key: str
    """The top-level key the walk starts with: absent key, no values (a cheap pre-check)."""
    walk: Walker
    many: bool = True
    """Whether the walk passes a repeating element (so may yield several values)."""


@dataclass(frozen=True)
class CompiledExpression:
    """A search expression for one resource type: fast walkers, or fhirpathpy as a fallback."""

    expression: str
    resource_type: str
    paths: tuple[TypedPath, ...] | None
    """None when the expression is outside the fast subset."""
    union: bool

    @property
    def fast(self) -> bool:
        return self.paths is not None

    def values(self, resource: dict[str, Any]) -> list[Any]:
        """The nodes FHIRPath returns (union branches de-duplicated); order is not significant."""
        if self.paths is None:
            return evaluate_fhirpathpy(self.expression, self.resource_type, resource)
        out: list[Any] = []
        for p in self.paths:
            out.extend(v for v in p.walk(resource) if v is not None)
        if self.union:
            unique: list[Any] = []
            for v in out:
                if v not in unique:
                    unique.append(v)
            return unique
        return out


def _compile_branch(resource_type: str, branch: str) -> list[TypedPath]:
    steps = _Parser(branch).parse()
    root = steps[0][1]
    if root in (resource_type, "Resource", "DomainResource"):
        states = [_State((), resource_type, resource_type, resource_type, False)]
        rest = steps[1:]
    elif root[0].islower():
        states = [_State((), resource_type, resource_type, resource_type, False)]
        rest = [("child", root), *steps[1:]]
    elif root in types():
        return []  # rooted at another type: never matches this one
    else:
        raise Unsupported(root)
    for step in rest:
        states = _apply(states, step)
    return [TypedPath(s.type_code, s.ops[0][1], _walker(s.ops), s.many) for s in states if s.ops]


def _deceased(r: dict[str, Any]) -> list[Any]:
    flag = r.get("deceasedBoolean")
    if flag is not None:
        return [flag is not False]
    return [r.get("deceasedDateTime") is not None]


_NATIVE: dict[tuple[str, str], TypedPath] = {
    ("Patient", "Patient.deceased.exists() and Patient.deceased != false"): TypedPath(
        "boolean", "resourceType", _deceased
    ),
}
"""The one boolean R4 search expression, hand-compiled (``first_key`` is always present)."""


@cache
def compile_expression(resource_type: str, expression: str) -> CompiledExpression:
    """Compile ``expression`` for resources of ``resource_type`` (cached per pair)."""
    native = _NATIVE.get((resource_type, expression))
    if native is not None:
        return CompiledExpression(expression, resource_type, (native,), False)
    branches = split_union(expression)
    try:
        paths = [p for b in branches for p in _compile_branch(resource_type, b)]
    except Unsupported:
        return CompiledExpression(expression, resource_type, None, len(branches) > 1)
    return CompiledExpression(expression, resource_type, tuple(paths), len(branches) > 1)


# -- the fhirpathpy fallback -----------------------------------------------------------------

_ROOT: ContextVar[dict[str, Any] | None] = ContextVar("fhirpath_root", default=None)
_AS_INFIX = re.compile(r"\(\s*([^()]+?)\s+as\s+([A-Za-z]+)\s*\)")


def _resolve(inputs: list[Any]) -> list[Any]:
    """``resolve()`` for fhirpathpy: a stand-in resource of the reference's type, if known."""
    from fhirpathpy.engine.nodes import ResourceNode

    root = _ROOT.get()
    out: list[Any] = []
    for node in inputs:
        if isinstance(node, dict):
            rtype = reference_type(node, root)
            if rtype is not None:
                out.append(ResourceNode.create_node({"resourceType": rtype}))  # type: ignore[no-untyped-call]
    return out


@cache
def fhirpathpy_expression(expression: str, resource_type: str) -> str:
    """Rewrite R4 idioms fhirpathpy 2.x misreads.

    Item-wise ``as`` becomes ``ofType``, and ``Resource.``-rooted paths get the concrete type.
    """
    parts = []
    for branch in split_union(expression):
        branch = _AS_INFIX.sub(r"(\1.ofType(\2))", branch).replace(".as(", ".ofType(")
        if branch_root(branch) in ("Resource", "DomainResource"):
            branch = re.sub(r"^(\(*\s*)(?:Domain)?Resource\b", rf"\g<1>{resource_type}", branch)
        parts.append(branch)
    return " | ".join(parts)


@cache
def _fhirpathpy(expression: str) -> Callable[..., list[Any]]:
    import fhirpathpy
    from fhirpathpy.models import models

    options = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}
    fn: Callable[..., list[Any]] = fhirpathpy.compile(
        expression, model=models["r4"], options=options
    )
    return fn


def evaluate_fhirpathpy(expression: str, resource_type: str, resource: dict[str, Any]) -> list[Any]:
    """Evaluate with fhirpathpy (slow path); ``None`` items (extension-only primitives) dropped."""
    fn = _fhirpathpy(fhirpathpy_expression(expression, resource_type))
    token = _ROOT.set(resource)
    try:
        return [v for v in fn(resource, {}) if v is not None]
    finally:
        _ROOT.reset(token)
