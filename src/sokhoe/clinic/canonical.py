"""The canonical form of what a clinician signs: deterministic bytes and their SHA-256.

A signature is over bytes, and FHIR JSON has no single serialisation: key order, whitespace
and the server's bookkeeping in ``meta`` differ between servers and over time, and R4's
``Signature`` only says the signature is over the targets in ``targetFormat``. So the bytes
signed are fixed here, once, for the signing operations and for every later verification:

- the resources are sorted by ``resourceType`` then ``id`` (the order a visit was gathered in
  says nothing);
- ``meta`` is dropped except ``versionId``: ``lastUpdated``, security labels and tags are the
  server's bookkeeping, which it may recompute; ``versionId`` pins the exact version signed;
- the result is one JSON array, keys sorted at every level, no whitespace, UTF-8 (orjson with
  ``OPT_SORT_KEYS``).

Each signed resource is named by its versioned reference (``Type/id/_history/N``): a verifier
reads back exactly those versions (vread), rebuilds these bytes and compares the SHA-256.
See: https://hl7.org/fhir/R4/datatypes.html#Signature and
https://hl7.org/fhir/R4/references.html#versions
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

CANONICALIZATION = "sokhoe-fhir-json-1"
"""The name of this form, recorded with every signature so a later one can coexist."""


@dataclass(frozen=True)
class Canonical:
    """The signed bytes of a set of resource versions."""

    data: bytes
    references: tuple[str, ...]
    """``Type/id/_history/N`` of each resource, in the canonical order."""

    @property
    def digest(self) -> bytes:
        """SHA-256 of :attr:`data`: what a signer (local or remote) is given to sign."""
        return hashlib.sha256(self.data).digest()

    @property
    def sha256(self) -> str:
        return self.digest.hex()


def _version(resource: dict[str, Any]) -> str:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if not isinstance(version, str) or not version.isdigit():
        raise ValueError(
            f"{resource.get('resourceType')}/{resource.get('id')} has no meta.versionId: "
            "only stored versions can be signed"
        )
    return version


def versioned_reference(resource: dict[str, Any]) -> str:
    """``Type/id/_history/N`` of a stored version."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str) or not isinstance(rid, str):
        raise ValueError("A signed resource needs its resourceType and id")
    return f"{rtype}/{rid}/_history/{_version(resource)}"


def canonical_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as it is signed: ``meta`` reduced to ``versionId``."""
    out = {k: v for k, v in resource.items() if k != "meta"}
    out["meta"] = {"versionId": _version(resource)}
    return out


def canonical_form(resources: Sequence[dict[str, Any]]) -> Canonical:
    """The canonical bytes of ``resources`` (stored versions, each at most once)."""
    if not resources:
        raise ValueError("Nothing to sign")
    ordered = sorted(resources, key=lambda r: (str(r.get("resourceType")), str(r.get("id"))))
    keys = [(r.get("resourceType"), r.get("id")) for r in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("A resource appears twice in what is signed")
    body = [canonical_resource(r) for r in ordered]
    data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return Canonical(data, tuple(versioned_reference(r) for r in ordered))
