"""Tokens: signing-key rotation without downtime, revocation, expiry, tampering, and the end
of a deactivated account's tokens."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from sokhoe.access.accounts import create_user, set_active
from sokhoe.access.clients import authenticate_client, create_client, deactivate_client
from sokhoe.access.db import access_engine
from sokhoe.access.kek import KeyEncryptionKey
from sokhoe.access.principal import Principal
from sokhoe.access.scopes import parse_scope, scopes_allow
from sokhoe.access.tokens import TokenService
from sokhoe.errors import Unauthorized
from sokhoe.store.ports import FhirStore
from tests.conftest import FAST_HASHER

WHO = Principal(
    kind="staff",
    subject="bs.an",
    display="BS. An",
    role="doctor",
    facility="79001",
    scopes=frozenset({"user/*.cruds"}),
)


@pytest.fixture
def tokens(store: FhirStore) -> TokenService:
    engine = access_engine(store)
    create_user(
        engine,
        WHO.subject,
        "mật-khẩu-dài-2026",
        "doctor",
        WHO.display,
        WHO.facility,
        hasher=FAST_HASHER,
    )
    return TokenService(engine, kek=KeyEncryptionKey.generate())


def test_rotation_keeps_old_tokens_valid(tokens: TokenService) -> None:
    old, _ = tokens.issue(WHO)
    tokens.rotate()
    new, _ = tokens.issue(WHO)
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    for token in (old, new):
        who = tokens.verify(token)
        assert (who.subject, who.role, who.facility) == ("bs.an", "doctor", "79001")
        assert who.scopes == WHO.scopes


def test_revoked_expired_and_tampered_tokens_are_refused(tokens: TokenService) -> None:
    token, _ = tokens.issue(WHO)
    tokens.revoke(token)
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.verify(token)
    expired, _ = tokens.issue(WHO, ttl=timedelta(seconds=-1))
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(expired)
    good, _ = tokens.issue(WHO)
    header, payload, signature = good.split(".")
    forged = jwt.encode(
        {**jwt.decode(good, options={"verify_signature": False}), "role": "system-admin"},
        "an-attacker-guessed-secret-of-enough-length",
        algorithm="HS256",
        headers=jwt.get_unverified_header(good),
    )
    with pytest.raises(Unauthorized):
        tokens.verify(forged)
    with pytest.raises(Unauthorized):
        tokens.verify(f"{header}.{payload}.{signature[::-1]}")


def test_a_deactivated_account_s_tokens_are_refused(tokens: TokenService) -> None:
    doctor, _ = tokens.issue(WHO)
    new = create_client(tokens.engine, "HIS A", ["system/*.cruds"], "79001")
    system, _ = tokens.issue(authenticate_client(tokens.engine, new.client_id, new.client_secret))
    ghost, _ = tokens.issue(Principal(kind="staff", subject="no.such.user", display="?"))
    assert tokens.verify(doctor).subject == WHO.subject
    assert tokens.verify(system).subject == new.client_id
    with pytest.raises(Unauthorized, match="not active"):
        tokens.verify(ghost)  # an account that does not exist is not active either

    set_active(tokens.engine, WHO.subject, False)
    with pytest.raises(Unauthorized, match="not active"):
        tokens.verify(doctor)
    assert tokens.verify(system).subject == new.client_id  # only that account's tokens end
    deactivate_client(tokens.engine, new.client_id)
    with pytest.raises(Unauthorized, match="not active"):
        tokens.verify(system)
    with pytest.raises(ValueError, match="No connected system"):
        deactivate_client(tokens.engine, "c-unknown")


def test_smart_scopes() -> None:
    granted = frozenset({"system/Patient.rs", "system/Observation.cru"})
    assert scopes_allow(granted, "Patient", "read")
    assert scopes_allow(granted, "Observation", "update")
    assert not scopes_allow(granted, "Observation", "delete")
    assert not scopes_allow(granted, "Condition", "read")
    assert scopes_allow(frozenset({"user/*.read"}), "Condition", "search")  # SMART v1 form
    for bad in ("system/Nope.r", "system/Patient.x", "Patient.read", "system/Patient.sr"):
        with pytest.raises(ValueError):
            parse_scope(bad)


def test_client_secrets_are_kept_as_digests_and_older_argon2_hashes_still_verify(
    tokens: TokenService,
) -> None:
    """A client secret is 256 random bits: kept as its SHA-256 (never the secret), checked
    in constant time; a row hashed with Argon2 by an earlier release still signs in."""
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from sokhoe.store.sql.access_schema import auth_client

    engine = tokens.engine
    new = create_client(engine, "HIS", ["system/Patient.rs"], "79001")
    with engine.connect() as conn:
        stored = conn.execute(
            select(auth_client.c.secret_hash).where(auth_client.c.client_id == new.client_id)
        ).scalar_one()
    assert stored.startswith("sha256$") and new.client_secret not in stored
    assert authenticate_client(engine, new.client_id, new.client_secret).facility == "79001"
    with pytest.raises(Unauthorized):
        authenticate_client(engine, new.client_id, new.client_secret + "x")
    legacy = "an older release's secret, hashed with Argon2"
    with engine.begin() as conn:
        conn.execute(
            update(auth_client)
            .where(auth_client.c.client_id == new.client_id)
            .values(secret_hash=PasswordHasher().hash(legacy))
        )
    assert authenticate_client(engine, new.client_id, legacy).subject == new.client_id
    with pytest.raises(Unauthorized):
        authenticate_client(engine, new.client_id, new.client_secret)
