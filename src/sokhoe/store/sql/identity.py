"""Integers for the strings every search-index row repeated: the parameter and the token system.

A row of ``sp_token`` held its resource type and parameter name (``Observation``, ``code``:
about 19 characters) and its system URL (``http://terminology.hl7.org/CodeSystem/…``: 38 on
average), each once in the table and again in the search B-tree: about 450 of the 2,470 bytes a
resource took on disk. HAPI FHIR keeps hashes instead (``HASH_IDENTITY``, ``HASH_SYS``); so
do we, computed rather than looked up, so that a statement compiled once serves every
database and a row needs no lookup to be written.

- ``pid``: the first 4 bytes of BLAKE2b of ``Type.code``, a signed 32-bit integer. The
  parameters are the registry's (R4 and the platform's own), a closed set: a test checks
  that no two of them share a number, so no collision can go unnoticed.
- ``system`` (``sp_token``): the first 8 bytes of BLAKE2b of the system URL. Systems are
  whatever clients send, an open set; at 64 bits two systems meet with probability about
  n² / 2⁶⁵ (3 × 10⁻⁸ for a million systems). Each one written is kept in ``token_system`` beside
  its number, so the text can always be had back (a downgrade, a person reading the tables).
  A client cannot aim a made-up system at a real one (the CCCD's, to slip a record into its
  searches): that is a second preimage of BLAKE2b, about 2⁶⁴ tries; HAPI's hash is MurmurHash3,
  which is not built to resist even that.

The functions are the contract of the stored data: changing either would orphan every row.
"""

from __future__ import annotations

from functools import cache, lru_cache
from hashlib import blake2b

from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.searchparams import registry


def _signed(text: str, size: int) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=size).digest(), "big", signed=True)


@lru_cache(maxsize=8192)
def param_id(resource_type: str, code: str) -> int:
    """The number of search parameter ``code`` of ``resource_type`` in index rows."""
    return _signed(f"{resource_type}.{code}", 4)


@lru_cache(maxsize=65536)
def system_id(system: str) -> int:
    """The number of a token's system URL in ``sp_token.system``."""
    return _signed(system, 8)


@cache
def types_with(code: str) -> tuple[str, ...]:
    """The resource types that have a parameter ``code`` (a search across all types)."""
    reg = registry()
    return tuple(t for t in resource_types() if reg.get(t, code) is not None)


@cache
def every_param() -> dict[int, tuple[str, str]]:
    """Number -> (type, code) of every parameter the registry knows."""
    reg = registry()
    return {param_id(t, sp.code): (t, sp.code) for t in resource_types() for sp in reg.supported(t)}
