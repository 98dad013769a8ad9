"""The R4 search parameters, one :class:`SearchParam` per (resource type, code).

The official definitions share one SearchParameter between many resource types (``clinical-patient``
has 32 bases and an expression that is the union of one branch per base). Here each is split per
base and keeps only the union branches rooted at that base, as the R4 convention intends, so
extracting ``patient`` from an Observation evaluates ``Observation.subject.where(resolve() is
Patient)`` and not 31 branches that can never match. The parameters every resource has
(``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``…) are defined once on
``Resource``/``DomainResource`` and appear in every type's mapping.
See: https://hl7.org/fhir/R4/searchparameter-registry.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from sokhoe.fhir.definitions import resource_types, search_parameter_definitions, types

INDEXED_TYPES = frozenset({"string", "token", "date", "reference", "quantity", "number", "uri"})
"""Parameter types the index extracts; ``composite`` and ``special`` are not indexed."""


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    base: str
    """The resource type this parameter is defined on (``Resource`` for the common ones)."""
    expression: str | None
    """The FHIRPath for ``base`` only (other bases' union branches removed); None if undefined."""
    targets: tuple[str, ...]
    url: str
    description: str
    extractor: str | None = None
    """``module:function`` computing the values of a platform parameter that FHIRPath cannot
    express (the patient index's blocking keys); the function takes the resource and returns
    values of the parameter's type. None for every R4 parameter."""


def split_union(expression: str) -> list[str]:
    """The top-level ``|`` branches of a FHIRPath expression (not inside parentheses or quotes)."""
    branches: list[str] = []
    depth, start, quote = 0, 0, False
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(expression[start:i].strip())
            start = i + 1
    branches.append(expression[start:].strip())
    return [b for b in branches if b]


_ROOT = re.compile(r"^\(*\s*([A-Za-z][A-Za-z0-9]*)")


def branch_root(branch: str) -> str | None:
    """The identifier a branch starts with (``(Observation.value as Quantity)`` -> Observation)."""
    m = _ROOT.match(branch)
    return m.group(1) if m else None


def expression_for_base(expression: str | None, base: str) -> str | None:
    """Keep the union branches of ``expression`` rooted at ``base``."""
    if expression is None:
        return None
    kept = [b for b in split_union(expression) if branch_root(b) == base]
    return " | ".join(kept) if kept else None


def _description_for_base(description: str, base: str) -> str:
    """R4 multi-base descriptions list ``* [Type](type.html): what``; pick this base's line."""
    m = re.search(rf"\* \[{re.escape(base)}\]\([^)]*\): *([^\r\n]*)", description)
    return m.group(1).strip() if m else description.strip()


def _make(raw: dict[str, Any], base: str) -> SearchParam:
    multi = len(raw["base"]) > 1
    return SearchParam(
        code=raw["code"],
        type=raw["type"],
        base=base,
        expression=expression_for_base(raw["expression"], base) if multi else raw["expression"],
        targets=tuple(raw.get("target") or ()),
        url=raw["url"],
        description=_description_for_base(raw["description"] or "", base)
        if multi
        else (raw["description"] or "").strip(),
        extractor=raw.get("extractor"),
    )


class SearchParamRegistry:
    """Look up the search parameters of a resource type, common parameters included."""

    def __init__(self, definitions: tuple[dict[str, Any], ...]) -> None:
        own: dict[str, dict[str, SearchParam]] = {}
        for raw in definitions:
            for base in raw["base"]:
                own.setdefault(base, {}).setdefault(raw["code"], _make(raw, base))
        resource_params = own.get("Resource", {})
        domain_params = {**resource_params, **own.get("DomainResource", {})}
        all_types = types()
        self._by_type: dict[str, Mapping[str, SearchParam]] = {
            "Resource": MappingProxyType(dict(resource_params)),
            "DomainResource": MappingProxyType(domain_params),
        }
        for rtype in resource_types():
            is_domain = all_types[rtype].base == "DomainResource"
            common = domain_params if is_domain else resource_params
            self._by_type[rtype] = MappingProxyType({**common, **own.get(rtype, {})})
        self._supported: dict[str, list[SearchParam]] = {
            rtype: [
                sp
                for sp in sorted(params.values(), key=lambda p: p.code)
                if sp.type in INDEXED_TYPES
                and (sp.expression is not None or sp.extractor is not None)
            ]
            for rtype, params in self._by_type.items()
        }

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        """Every parameter of the type, code -> definition; empty for an unknown type."""
        return self._by_type.get(resource_type, MappingProxyType({}))

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.for_type(resource_type).get(code)

    def supported(self, resource_type: str) -> list[SearchParam]:
        """What the CapabilityStatement lists: the parameters the index really extracts.

        Composite and special parameters, and those without an expression (``_content``,
        ``_text``, ``_query``), are left out.
        """
        return list(self._supported.get(resource_type, ()))


@cache
def registry() -> SearchParamRegistry:
    """The process-wide registry built from the R4 definitions (immutable, so cached)."""
    return SearchParamRegistry(search_parameter_definitions())
