"""Parse a FHIR search query string into a :class:`SearchQuery`.

Unknown parameters are ignored and reported (``SearchQuery.ignored``), or refused when the
client sent ``Prefer: handling=strict``; a value that cannot be parsed for its parameter type
is always refused with a 400 that names the parameter.
See: https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from sokhoe.errors import InvalidRequest
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.searchparams import SearchParam, SearchParamRegistry
from sokhoe.search.index import date_range, normalize_string
from sokhoe.search.query import (
    Criterion,
    HasClause,
    Include,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from sokhoe.search.rows import OF_TYPE

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = {
    "_sort",
    "_count",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_elements",
    "_contained",
    "_containedType",
    "_format",
    "_pretty",
    "_getpagesoffset",
    "_offset",
    "_type",
    "_since",
}
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "missing", "of-type"},
    "date": {"missing"},
    "reference": {"missing", "identifier"},
    "quantity": {"missing"},
    "number": {"missing"},
    "uri": {"missing", "below", "above", "contains"},
}
_REF = re.compile(
    r"^(?:(?P<base>https?://.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/.+)?$"
)


def _split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash; unescape ``\\,``, ``\\|``, ``\\$``."""
    parts, cur, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            cur.append(raw[i : i + 2])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def escape_value(text: str) -> str:
    """FHIR search escaping of a value part: a backslash before ``\\``, ``,``, ``|``, ``$``
    (what :func:`_unescape` undoes), for callers that build a query from data.

    See: https://hl7.org/fhir/R4/search.html#escaping
    """
    out = text.replace("\\", "\\\\")
    for char in ",|$":
        out = out.replace(char, "\\" + char)
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", text)


def _split_pipe(text: str) -> tuple[str | None, str]:
    m = re.search(r"(?<!\\)\|", text)
    if not m:
        return None, _unescape(text)
    return _unescape(text[: m.start()]), _unescape(text[m.end() :])


def _of_type(code: str, name: str, raw: str) -> Criterion:
    """``identifier:of-type=[type system]|[type code]|[value]``: an identifier whose type has
    that coding and whose value is that value; all three parts are required. It searches the
    rows the indexer keeps under ``<code>:of-type`` (``search/index.py``), so every store
    answers it without a rule of its own.
    See: https://hl7.org/fhir/R4/search.html#token (of-type)
    """
    values: list[Value] = []
    for item in _split_values(raw):
        parts = [_unescape(p) for p in re.split(r"(?<!\\)\|", item)]
        if len(parts) != 3 or not all(parts):
            raise InvalidRequest(f"{name} needs [type system]|[type code]|[value], all three", name)
        values.append(TokenValue(f"{parts[0]}|{parts[1]}", parts[2]))
    if not values:
        raise InvalidRequest(f"Search parameter '{name}' has no value", name)
    return Criterion(f"{code}{OF_TYPE}", "token", None, values)


def _prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES and not raw[:2].isdigit():
        return raw[:2], raw[2:]
    return "eq", raw


def _number_range(text: str, name: str) -> tuple[float, float]:
    """The implicit range of a number at its precision: ``100`` is [99.5, 100.5)."""
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidRequest(
            f"'{text}' is not a number for search parameter '{name}'", name
        ) from exc
    exp = d.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (int(exp) - 1) if isinstance(exp, int) else Decimal(0)
    return float(d - half), float(d + half)


class SearchParser:
    """Turns ``[(name, value), …]`` into a :class:`SearchQuery` for one resource type."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        base_url: str,
        *,
        strict: bool = False,
        default_count: int = 50,
        max_count: int = 1000,
    ) -> None:
        self.registry = registry
        self.base_url = base_url.rstrip("/")
        self.strict = strict
        self.default_count = default_count
        self.max_count = max_count

    def parse(self, resource_type: str | None, params: Sequence[tuple[str, str]]) -> SearchQuery:
        q = SearchQuery(resource_type=resource_type, count=self.default_count)
        for name, raw in params:
            base, _, modifier = name.partition(":")
            if base in ("_include", "_revinclude") and modifier in ("iterate", "recurse"):
                includes = q.includes if base == "_include" else q.revincludes
                includes.append(self._include(q, base, raw, iterate=True))
            elif name in RESULT_PARAMS:
                self._result_param(q, name, raw)
            else:
                self._criterion(q, name, raw)
        return q

    # -- result parameters ---------------------------------------------------------
    def _result_param(self, q: SearchQuery, name: str, raw: str) -> None:
        if name == "_count":
            q.count = min(self._int(name, raw), self.max_count)
        elif name in ("_getpagesoffset", "_offset"):
            q.offset = self._int(name, raw)
        elif name == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise InvalidRequest("_total must be none, estimate or accurate", "_total")
            q.total = raw
        elif name == "_summary":
            if raw not in ("true", "false", "count", "text", "data"):
                raise InvalidRequest(
                    "_summary must be true, false, count, text or data", "_summary"
                )
            q.summary = None if raw == "false" else raw
        elif name == "_elements":
            q.elements = [e.strip() for e in raw.split(",") if e.strip()]
        elif name == "_sort":
            for key in raw.split(","):
                desc = key.startswith("-")
                code = key.lstrip("-")
                sp = self._param(q.resource_type, code)
                if sp is None:
                    raise InvalidRequest(f"Unknown sort parameter '{code}'", "_sort")
                q.sort.append(SortKey(code, sp.type, desc))
        elif name in ("_include", "_revinclude"):
            (q.includes if name == "_include" else q.revincludes).append(
                self._include(q, name, raw)
            )
        elif name == "_type":
            q.types = [t for t in raw.split(",") if t]
            for t in q.types:
                if t not in resource_types():
                    raise InvalidRequest(f"Unknown resource type '{t}' in _type", "_type")
        elif name in ("_format", "_pretty"):
            return
        else:
            self._ignore(q, name, "is not supported")

    def _include(self, q: SearchQuery, name: str, raw: str, iterate: bool = False) -> Include:
        parts = raw.split(":")
        if raw == "*":
            if q.resource_type is None:
                raise InvalidRequest(f"{name}=* needs a resource type", name)
            return Include(q.resource_type, "*", None, iterate)
        if len(parts) < 2:
            raise InvalidRequest(f"{name} must be Type:param[:target], got '{raw}'", name)
        source, param = parts[0], parts[1]
        target = parts[2] if len(parts) > 2 else None
        if source not in resource_types():
            raise InvalidRequest(f"Unknown resource type '{source}' in {name}", name)
        if param != "*":
            sp = self.registry.get(source, param)
            if sp is None or sp.type != "reference":
                raise InvalidRequest(
                    f"'{source}:{param}' is not a reference search parameter", name
                )
        if target is not None and target not in resource_types():
            raise InvalidRequest(f"Unknown target type '{target}' in {name}", name)
        return Include(source, param, target, iterate)

    def _int(self, name: str, raw: str) -> int:
        if not raw.isdigit():
            raise InvalidRequest(f"{name} must be a non-negative integer, got '{raw}'", name)
        return int(raw)

    # -- criteria -----------------------------------------------------------------
    def _param(self, resource_type: str | None, code: str) -> SearchParam | None:
        return self.registry.get(resource_type or "Resource", code)

    def _ignore(self, q: SearchQuery, name: str, why: str) -> None:
        if self.strict:
            raise InvalidRequest(f"Search parameter '{name}' {why}", name, code="not-supported")
        q.ignored.append(f"{name}: {why}")

    def _criterion(self, q: SearchQuery, name: str, raw: str) -> None:
        if name.startswith("_has:"):
            q.criteria.append(self._has(q, name, raw))
            return
        code, _, modifier = name.partition(":")
        chain_rest = None
        if "." in code:
            code, _, chain_rest = code.partition(".")
        if "." in modifier:
            modifier, _, chain_rest = modifier.partition(".")
        if code == "_id" and not modifier and not chain_rest:
            ids = [_unescape(v) for v in _split_values(raw)]
            q.ids = ids if q.ids is None else [i for i in q.ids if i in ids]
            return
        sp = self._param(q.resource_type, code)
        if sp is None:
            self._ignore(q, code, f"is not known for {q.resource_type or 'system search'}")
            return
        if chain_rest is not None:
            q.criteria.append(self._chain(sp, modifier or None, chain_rest, raw))
            return
        if modifier == "missing":
            if raw not in ("true", "false"):
                raise InvalidRequest(f"{name} must be true or false", name)
            q.criteria.append(Criterion(code, sp.type, "missing", [], missing=raw == "true"))
            return
        if modifier and sp.type == "reference" and modifier in resource_types():
            pass
        elif modifier and modifier not in MODIFIERS.get(sp.type, set()):
            raise InvalidRequest(
                f"Modifier ':{modifier}' is not supported on {sp.type} parameter '{code}'",
                name,
                code="not-supported",
            )
        if modifier == "identifier":
            raise InvalidRequest(
                f"':identifier' on '{code}' is not supported", name, "not-supported"
            )
        if modifier == "of-type":
            q.criteria.append(_of_type(code, name, raw))
            return
        values = [self._value(sp, modifier or None, v) for v in _split_values(raw) if v != ""]
        if not values:
            raise InvalidRequest(f"Search parameter '{name}' has no value", name)
        q.criteria.append(Criterion(code, sp.type, modifier or None, values))

    def _chain(self, sp: SearchParam, type_modifier: str | None, rest: str, raw: str) -> Criterion:
        if sp.type != "reference":
            raise InvalidRequest(f"Cannot chain on '{sp.code}': it is not a reference", sp.code)
        next_code = rest.split(".", 1)[0].split(":", 1)[0]
        if type_modifier:
            targets = [type_modifier]
        else:
            targets = [t for t in sp.targets if self.registry.get(t, next_code) is not None]
        if len(targets) != 1:
            raise InvalidRequest(
                f"Chain '{sp.code}.{rest}' is ambiguous; name the target type, e.g. "
                f"'{sp.code}:{(targets or ['Patient'])[0]}.{rest}'",
                sp.code,
            )
        inner = SearchParser(self.registry, self.base_url, strict=True).parse(
            targets[0], [(rest, raw)]
        )
        return Criterion(sp.code, "reference", None, [], chain=inner)

    def _has(self, q: SearchQuery, name: str, raw: str) -> Criterion:
        parts = name.split(":", 3)
        if len(parts) != 4:
            raise InvalidRequest("_has must be _has:Type:reference-param:search-param", name)
        _, rtype, ref_param, rest = parts
        if rtype not in resource_types():
            raise InvalidRequest(f"Unknown resource type '{rtype}' in _has", name)
        inner = SearchParser(self.registry, self.base_url, strict=True).parse(rtype, [(rest, raw)])
        return Criterion("_has", "reference", None, [], has=HasClause(rtype, ref_param, inner))

    def _value(self, sp: SearchParam, modifier: str | None, raw: str) -> Value:
        name = sp.code
        match sp.type:
            case "string":
                text = _unescape(raw)
                return StringValue(normalize_string(text), text)
            case "token":
                if modifier == "text":
                    return TokenValue(None, None, normalize_string(_unescape(raw)))
                system, code = _split_pipe(raw)
                return TokenValue(system, code or None)
            case "date":
                prefix, text = _prefix(raw)
                try:
                    low, high = date_range(text)
                except ValueError as exc:
                    raise InvalidRequest(
                        f"'{raw}' is not a valid date for search parameter '{name}'", name
                    ) from exc
                return RangeValue(prefix, low, high)
            case "number":
                prefix, text = _prefix(raw)
                low, high = _number_range(text, name)
                return RangeValue(prefix, low, high)
            case "quantity":
                prefix, text = _prefix(raw)
                number, _, unit = text.partition("|")
                system, code = _split_pipe(unit) if unit else (None, "")
                low, high = _number_range(number, name)
                return RangeValue(prefix, low, high, system or None, code or None)
            case "reference":
                return self._reference(sp, modifier, _unescape(raw))
            case "uri":
                return UriValue(_unescape(raw))
        raise InvalidRequest(
            f"Search on {sp.type} parameter '{name}' is not supported", name, code="not-supported"
        )

    def _reference(self, sp: SearchParam, modifier: str | None, raw: str) -> ReferenceValue:
        m = _REF.match(raw)
        if m:
            base = m.group("base")
            if base and base.rstrip("/") != self.base_url:
                return ReferenceValue(None, None, raw)
            return ReferenceValue(m.group("type"), m.group("id"))
        if "/" in raw or ":" in raw:
            return ReferenceValue(None, None, raw)
        target = modifier if modifier and modifier in resource_types() else None
        if target is None and len(sp.targets) == 1:
            target = sp.targets[0]
        return ReferenceValue(target, raw)
