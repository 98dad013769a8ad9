"""The official FHIR R4 (4.0.1) definitions, distilled by ``scripts/build_fhir_definitions.py``.

Everything the server claims about FHIR (which types exist, their elements, the required value
sets, the search parameters, the patient compartment) comes from these files, so the
CapabilityStatement, the validator and the search index cannot drift apart. The data is
immutable, so it is loaded once per process and cached.
See: https://hl7.org/fhir/R4/downloads.html
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson

FHIR_VERSION = "4.0.1"


def _load(name: str) -> Any:
    ref = resources.files("sokhoe.fhir") / "definitions" / f"{name}.json.gz"
    with ref.open("rb") as fh:
        return orjson.loads(gzip.decompress(fh.read()))


@dataclass(frozen=True)
class ElementDef:
    """One element of a type's snapshot: its cardinality, allowed types and required binding."""

    path: str
    min: int
    max: str
    types: tuple[tuple[str, tuple[str, ...]], ...]
    """(type code, reference target resource types) per allowed type."""
    binding: str | None = None
    content_reference: str | None = None
    summary: bool = False
    """Part of the summary view (``_summary=true``)."""


@dataclass(frozen=True)
class TypeDef:
    name: str
    kind: str
    """``primitive-type``, ``complex-type`` or ``resource``."""
    abstract: bool
    base: str | None
    elements: tuple[ElementDef, ...]


@cache
def types() -> dict[str, TypeDef]:
    out: dict[str, TypeDef] = {}
    for name, raw in _load("types").items():
        elements = tuple(
            ElementDef(
                path=e["path"],
                min=int(e["min"]),
                max=str(e["max"]),
                types=tuple((t[0], tuple(t[1])) for t in e["types"]),
                binding=e.get("binding"),
                content_reference=e.get("ref"),
                summary=bool(e.get("summary", False)),
            )
            for e in raw["elements"]
        )
        out[name] = TypeDef(name, raw["kind"], raw["abstract"], raw["base"], elements)
    return out


NOT_IN_R4 = frozenset({"SubscriptionStatus"})
"""Types the distilled definitions carry that R4 4.0.1 does not define (the npm package they
come from adds the R5/R4B ``SubscriptionStatus`` for its own use): never accepted nor listed,
or a validator reading the CapabilityStatement finds an R4 server claiming a type R4 lacks."""


@cache
def resource_types() -> frozenset[str]:
    """Concrete resource types of R4 (what may appear in ``resourceType``)."""
    return frozenset(
        n
        for n, t in types().items()
        if t.kind == "resource" and not t.abstract and n not in NOT_IN_R4
    )


@cache
def required_value_sets() -> dict[str, frozenset[tuple[str, str]] | None]:
    """Required bindings expanded to (system, code) pairs; None where not enumerable (UCUM…)."""
    return {
        url: (frozenset((s, c) for s, c in codes) if codes is not None else None)
        for url, codes in _load("valuesets").items()
    }


@cache
def search_parameter_definitions() -> tuple[dict[str, Any], ...]:
    """The R4 SearchParameter resources, compacted (url, code, base, type, expression, target),
    and the platform's own (``platform_searchparams``)."""
    from sokhoe.fhir.platform_searchparams import PLATFORM_SEARCH_PARAMETERS

    return (*_load("searchparams"), *PLATFORM_SEARCH_PARAMETERS)


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that place it in a Patient's compartment.

    See: https://hl7.org/fhir/R4/compartmentdefinition-patient.html
    """
    return {k: tuple(v) for k, v in _load("compartment-patient").items()}
