"""Argon2id for staff passwords, at the cost the settings give.

The cost is the library's default (RFC 9106's second recommended option: 3 passes over
64 MiB in 4 lanes) unless the settings lower it, which only a test suite should do: each
staff account made and each sign-in costs one hash, about 0.1 s of CPU at full cost. That is
the point in production and most of the run time of the tests that sign in, so the tests
lower it as Django's test settings swap in a fast hasher. A stored hash records its own cost:
it verifies with any hasher, and a sign-in rehashes a password stored below the configured
cost (``accounts.sign_in``).
See: https://www.rfc-editor.org/rfc/rfc9106#section-4
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher

from sokhoe.config import Settings

STRONG = PasswordHasher()
"""The library's defaults: what ``Settings()`` gives, and what callers without settings use."""


def password_hasher(settings: Settings) -> PasswordHasher:
    """The hasher at the configured cost (one object per cost)."""
    return _hasher(
        settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
    )


@cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of no one's password at ``hasher``'s cost: a sign-in with an unknown username
    verifies against it, so that costs as much as a wrong password."""
    return _dummy(hasher.time_cost, hasher.memory_cost, hasher.parallelism)


@cache
def _dummy(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("not-a-real-password-0")


__all__ = ["STRONG", "dummy_hash", "password_hasher"]
