"""Staff accounts on every backend: password policy, generic failures, lock-out, TOTP, scopes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from sokhoe.access import accounts
from sokhoe.access.accounts import ROLE_SCOPES, enable_totp, set_active
from sokhoe.access.db import access_engine
from sokhoe.access.passwords import STRONG, dummy_hash, password_hasher
from sokhoe.access.principal import STAFF_ROLES
from sokhoe.access.scopes import parse_scopes
from sokhoe.config import Settings
from sokhoe.errors import Unauthorized
from sokhoe.store import FhirStore
from sokhoe.store.sql.access_schema import auth_user
from tests.conftest import FAST_HASHER

VN = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=VN)
PASSWORD = "mat-khau-dai-2025"
create_user = partial(accounts.create_user, hasher=FAST_HASHER)
set_password = partial(accounts.set_password, hasher=FAST_HASHER)
sign_in = partial(accounts.sign_in, hasher=FAST_HASHER)
"""At the tests' low cost; the tests below check the production cost itself."""


@pytest.fixture
def engine(store: FhirStore) -> Engine:
    return access_engine(store)


def _doctor(engine: Engine, username: str = "bs.an") -> None:
    create_user(engine, username, PASSWORD, "doctor", "BS. Nguyễn Văn An", facility="01001")


def test_password_policy(engine: Engine) -> None:
    with pytest.raises(ValueError, match="at least 10 characters"):
        create_user(engine, "bs.an", "short1", "doctor", "An", facility="01001")
    with pytest.raises(ValueError, match="only digits"):
        create_user(engine, "bs.an", "0912345678", "doctor", "An", facility="01001")
    with pytest.raises(ValueError, match="Unknown role"):
        create_user(engine, "bs.an", PASSWORD, "surgeon", "An", facility="01001")
    with pytest.raises(ValueError, match="facility code"):
        create_user(engine, "bs.an", PASSWORD, "doctor", "An")
    with pytest.raises(ValueError, match="commune code"):
        create_user(engine, "chw", PASSWORD, "commune-health-worker", "Lan")
    _doctor(engine)
    with pytest.raises(ValueError, match="taken"):
        _doctor(engine)
    with pytest.raises(ValueError, match="at least 10"):
        set_password(engine, "bs.an", "123")


def test_password_is_hashed_with_argon2(engine: Engine) -> None:
    _doctor(engine)
    with engine.begin() as conn:
        stored = conn.execute(select(auth_user.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_production_hashes_at_the_libraries_full_cost() -> None:
    default = password_hasher(Settings())
    for field in ("time_cost", "memory_cost", "parallelism", "hash_len", "salt_len", "type"):
        assert getattr(default, field) == getattr(PasswordHasher(), field) == getattr(STRONG, field)
    assert (default.time_cost, default.memory_cost, default.parallelism) == (3, 65536, 4)
    assert STRONG.hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_password_stored_below_the_configured_cost_is_rehashed_at_sign_in(
    engine: Engine,
) -> None:
    _doctor(engine)  # stored at the tests' low cost
    accounts.sign_in(engine, "bs.an", PASSWORD, None, now=NOW, hasher=STRONG)
    with engine.begin() as conn:
        stored = conn.execute(select(auth_user.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert sign_in(engine, "bs.an", PASSWORD, None, now=NOW).subject == "bs.an"


def test_an_unknown_username_costs_a_hash_at_the_configured_cost() -> None:
    assert dummy_hash(FAST_HASHER).startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert dummy_hash(STRONG).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_sign_in_gives_staff_principal(engine: Engine) -> None:
    _doctor(engine)
    p = sign_in(engine, "bs.an", PASSWORD, None, now=NOW)
    assert p.kind == "staff"
    assert p.subject == "bs.an"
    assert p.display == "BS. Nguyễn Văn An"
    assert p.role == "doctor"
    assert p.facility == "01001"
    assert p.scopes == frozenset({"user/*.cruds"})


def test_wrong_user_and_wrong_password_look_the_same(engine: Engine) -> None:
    _doctor(engine)
    with pytest.raises(Unauthorized) as wrong_password:
        sign_in(engine, "bs.an", "sai-mat-khau-123", None, now=NOW)
    with pytest.raises(Unauthorized) as wrong_user:
        sign_in(engine, "bs.khong-co", PASSWORD, None, now=NOW)
    assert str(wrong_password.value) == str(wrong_user.value) == "Wrong username or password"


def test_disabled_account_cannot_sign_in(engine: Engine) -> None:
    _doctor(engine)
    set_active(engine, "bs.an", False)
    with pytest.raises(Unauthorized, match="Wrong username or password"):
        sign_in(engine, "bs.an", PASSWORD, None, now=NOW)


def test_lock_out_after_five_failures_and_unlock_after_fifteen_minutes(engine: Engine) -> None:
    _doctor(engine)
    for i in range(4):
        with pytest.raises(Unauthorized, match="Wrong username or password"):
            sign_in(engine, "bs.an", "sai-mat-khau-123", None, now=NOW + timedelta(seconds=i))
    with pytest.raises(Unauthorized, match="account locked until 09:15"):
        sign_in(engine, "bs.an", "sai-mat-khau-123", None, now=NOW)
    # even the right password is refused while locked
    with pytest.raises(Unauthorized, match="account locked until 09:15"):
        sign_in(engine, "bs.an", PASSWORD, None, now=NOW + timedelta(minutes=14))
    p = sign_in(engine, "bs.an", PASSWORD, None, now=NOW + timedelta(minutes=15, seconds=1))
    assert p.subject == "bs.an"


def test_success_resets_the_failure_count(engine: Engine) -> None:
    _doctor(engine)
    for _ in range(4):
        with pytest.raises(Unauthorized):
            sign_in(engine, "bs.an", "sai-mat-khau-123", None, now=NOW)
    sign_in(engine, "bs.an", PASSWORD, None, now=NOW)
    for _ in range(4):
        with pytest.raises(Unauthorized, match="Wrong username or password"):
            sign_in(engine, "bs.an", "sai-mat-khau-123", None, now=NOW)
    assert sign_in(engine, "bs.an", PASSWORD, None, now=NOW).role == "doctor"


@pytest.mark.parametrize("role", ["system-admin", "facility-admin"])
def test_administrators_need_totp(engine: Engine, role: str) -> None:
    create_user(engine, "admin", PASSWORD, role, "Quản trị", facility="01001")
    with pytest.raises(Unauthorized, match="enrol"):
        sign_in(engine, "admin", PASSWORD, None)
    uri = enable_totp(engine, "admin")
    assert uri.startswith("otpauth://totp/")
    assert "issuer=sokhoe" in uri
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    with pytest.raises(Unauthorized, match="authenticator"):
        sign_in(engine, "admin", PASSWORD, None)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    with pytest.raises(Unauthorized, match="Wrong authenticator code"):
        sign_in(engine, "admin", PASSWORD, wrong)
    p = sign_in(engine, "admin", PASSWORD, pyotp.TOTP(totp.secret).now())
    assert p.role == role
    assert p.scopes == frozenset({"user/*.cruds"})


def test_anyone_who_enabled_totp_needs_it(engine: Engine) -> None:
    _doctor(engine)
    secret = pyotp.parse_uri(enable_totp(engine, "bs.an")).secret
    with pytest.raises(Unauthorized, match="authenticator"):
        sign_in(engine, "bs.an", PASSWORD, None)
    assert sign_in(engine, "bs.an", PASSWORD, pyotp.TOTP(secret).now()).subject == "bs.an"


def test_wrong_totp_counts_towards_lock_out(engine: Engine) -> None:
    _doctor(engine)
    enable_totp(engine, "bs.an")
    for _ in range(4):
        with pytest.raises(Unauthorized, match="Wrong authenticator code"):
            sign_in(engine, "bs.an", PASSWORD, "000000x", now=NOW)
    with pytest.raises(Unauthorized, match="locked until 09:15"):
        sign_in(engine, "bs.an", PASSWORD, "000000x", now=NOW)


def test_role_scopes_cover_every_role_and_parse() -> None:
    assert set(ROLE_SCOPES) == set(STAFF_ROLES)
    for role, scopes in ROLE_SCOPES.items():
        parsed = parse_scopes(scopes)
        assert all(s.context == "user" for s in parsed), role
    assert ROLE_SCOPES["analyst"] == frozenset()
    assert all(s.startswith("user/") for s in ROLE_SCOPES["insurance-appraiser"])


def test_role_specific_principal_fields(engine: Engine) -> None:
    create_user(engine, "chw.lan", PASSWORD, "commune-health-worker", "Lan", commune="00004")
    create_user(engine, "analyst1", PASSWORD, "analyst", "Sở Y tế")
    chw = sign_in(engine, "chw.lan", PASSWORD, None, now=NOW)
    assert chw.commune == "00004"
    assert chw.scopes == frozenset({"user/*.crus"})
    assert sign_in(engine, "analyst1", PASSWORD, None, now=NOW).scopes == frozenset()


def test_a_totp_code_signs_in_once(engine: Engine) -> None:
    """RFC 6238 §5.2: a code seen over someone's shoulder cannot be replayed in its window;
    the next step's code still works."""
    _doctor(engine)
    totp = pyotp.TOTP(pyotp.parse_uri(enable_totp(engine, "bs.an")).secret)
    code = totp.at(NOW)
    assert sign_in(engine, "bs.an", PASSWORD, code, now=NOW).subject == "bs.an"
    with pytest.raises(Unauthorized, match="already used"):
        sign_in(engine, "bs.an", PASSWORD, code, now=NOW + timedelta(seconds=20))
    # an older step's code (still inside the ±1 window) is refused too
    earlier = totp.at(NOW - timedelta(seconds=30))
    with pytest.raises(Unauthorized, match="already used"):
        sign_in(engine, "bs.an", PASSWORD, earlier, now=NOW + timedelta(seconds=5))
    later = NOW + timedelta(seconds=30)
    assert sign_in(engine, "bs.an", PASSWORD, totp.at(later), now=later).subject == "bs.an"
