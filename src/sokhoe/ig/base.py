"""The R4 base StructureDefinitions the Vietnam core profiles derive from.

Extracted in full (snapshots with every element's definition, constraints and bindings) from
the official 4.0.1 definitions by ``scripts/build_ig_base.py``; the server and ``sokhoe ig
build`` read the committed copy and never the network.
See: https://hl7.org/fhir/R4/profiling.html
"""

from __future__ import annotations

import copy
import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson

CORE = "http://hl7.org/fhir/StructureDefinition/"


@cache
def _definitions() -> dict[str, dict[str, Any]]:
    ref = resources.files("sokhoe.ig") / "base.json.gz"
    with ref.open("rb") as fh:
        loaded: dict[str, dict[str, Any]] = orjson.loads(gzip.decompress(fh.read()))
    return loaded


def base_definition(type_name: str) -> dict[str, Any]:
    """A fresh copy of the R4 StructureDefinition of ``type_name`` (KeyError when not kept)."""
    return copy.deepcopy(_definitions()[type_name])


def base_elements(type_name: str) -> list[dict[str, Any]]:
    """A fresh copy of the snapshot elements of ``type_name``."""
    return copy.deepcopy(_definitions()[type_name]["snapshot"]["element"])


def has_definition(type_name: str) -> bool:
    return type_name in _definitions()
