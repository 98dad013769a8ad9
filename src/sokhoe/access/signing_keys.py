"""The token-signing keys: rows of ``auth_signing_key``, each secret sealed with the
key-encryption key (:mod:`sokhoe.access.kek`), never stored in plain text.

Keys are rows so that every server process signs and verifies with the same ones; sealing them
means a copy of the database (every backup) cannot mint tokens. A database restored where the
key-encryption key differs cannot open its keys: their tokens are refused and the next token
is signed with a new key. Keys an older release stored in plain text are sealed on first use,
and signing moves off them, since every backup made until then holds them readable.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from time import monotonic

from sqlalchemy import Engine, insert, select, update

from sokhoe.access.kek import PREFIX, KeyEncryptionKey, SealError
from sokhoe.store.sql.access_schema import auth_signing_key

log = logging.getLogger("sokhoe.access.tokens")

KEY_LIFETIME = timedelta(days=30)
"""A retired key still verifies tokens for this long after it stopped signing."""
CACHE_SECONDS = 60.0
"""How long a process trusts its copy of a verifying key's row (see ``SigningKeys``)."""


def _now() -> datetime:
    return datetime.now(UTC)


class SigningKeys:
    """The current signing key, the keys that still verify, and rotation."""

    def __init__(
        self, engine: Engine, kek: KeyEncryptionKey, *, reader: Engine | None = None
    ) -> None:
        self.engine = engine
        self.reader = reader if reader is not None else engine
        self.kek = kek
        self._plain_checked = False
        self._opened: dict[str, tuple[float, str, datetime | None]] = {}
        """kid -> (when read, opened secret, retired): every request verifies a token, and
        opening a sealed key (AES-GCM) and reading its row each time cost more than the
        rest of the check. Rows only change by rotation, which sets ``retired``; a copy is
        trusted for :data:`CACHE_SECONDS`, so a key retired elsewhere stops signing at once
        and its expiry (``KEY_LIFETIME`` later) is seen within that time here."""

    def current(self) -> tuple[str, str]:
        """(kid, secret) to sign with; a new key when there is none this server can open."""
        self._seal_plain_keys()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(auth_signing_key.c.kid, auth_signing_key.c.secret)
                .where(auth_signing_key.c.retired.is_(None))
                .order_by(auth_signing_key.c.created.desc())
            ).first()
        if row is not None:
            secret = self._open(str(row.kid), str(row.secret))
            if secret is not None:
                return str(row.kid), secret
            log.warning(
                "The signing key %s cannot be opened with this server's key-encryption key "
                "(a database restored from another machine, or SOKHOE_KEY_ENCRYPTION_KEY "
                "changed): making a new one; tokens signed before are refused",
                row.kid,
            )
        return self.rotate()

    def rotate(self) -> tuple[str, str]:
        """Start signing with a new key; the previous one keeps verifying its tokens."""
        kid, secret = uuid.uuid4().hex, secrets.token_urlsafe(48)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                update(auth_signing_key)
                .where(auth_signing_key.c.retired.is_(None))
                .values(retired=now)
            )
            conn.execute(
                insert(auth_signing_key).values(
                    kid=kid, secret=self.kek.seal(secret, kid), created=now
                )
            )
        return kid, secret

    def verifying(self, kid: str) -> str | None:
        """The secret of key ``kid`` while it verifies; None for an unknown key, one retired
        longer than :data:`KEY_LIFETIME`, or one this server cannot open."""
        cached = self._opened.get(kid)
        if cached is not None and monotonic() - cached[0] < CACHE_SECONDS:
            _, secret, retired = cached
        else:
            self._seal_plain_keys()
            with self.reader.connect() as conn:
                row = conn.execute(
                    select(auth_signing_key.c.secret, auth_signing_key.c.retired).where(
                        auth_signing_key.c.kid == kid
                    )
                ).first()
            if row is None:
                return None
            retired = row.retired
            if retired is not None and retired.tzinfo is None:
                retired = retired.replace(tzinfo=UTC)
            opened = self._open(kid, str(row.secret))
            if opened is None:
                return None
            secret = opened
            if KeyEncryptionKey.is_sealed(str(row.secret)):  # a plain one is re-read once sealed
                self._opened[kid] = (monotonic(), secret, retired)
        if retired is not None and retired + KEY_LIFETIME < _now():
            return None
        return secret

    def _open(self, kid: str, stored: str) -> str | None:
        if not KeyEncryptionKey.is_sealed(stored):  # an older process wrote it just now
            self._plain_checked = False
            self._seal_plain_keys()
            return stored
        try:
            return self.kek.open(stored, kid)
        except SealError as exc:
            log.debug("Signing key %s does not open: %s", kid, exc)
            return None

    def _seal_plain_keys(self) -> None:
        """Seal the keys stored in plain text and stop signing with them; once per instance,
        as each read still checks its own row.

        On SQLite the plain bytes are also wiped from the files: freed space is zeroed
        (``secure_delete``) and the write-ahead log, which still holds the old pages, is
        copied into the database and truncated.
        """
        if self._plain_checked:
            return
        sealed_current = sealed = 0
        with self.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"
            rows = conn.execute(
                select(
                    auth_signing_key.c.kid, auth_signing_key.c.secret, auth_signing_key.c.retired
                ).where(~auth_signing_key.c.secret.startswith(PREFIX, autoescape=True))
            ).all()
            wipe = sqlite and bool(rows)
            was = int(conn.exec_driver_sql("PRAGMA secure_delete").scalar() or 0) if wipe else 0
            if wipe:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            try:
                for row in rows:
                    done = conn.execute(
                        update(auth_signing_key)
                        .where(
                            auth_signing_key.c.kid == row.kid,
                            auth_signing_key.c.secret == row.secret,
                        )
                        .values(secret=self.kek.seal(str(row.secret), str(row.kid)))
                    )
                    sealed += done.rowcount
                    sealed_current += done.rowcount if row.retired is None else 0
            finally:
                if wipe:  # as the connection had it (some builds default to on)
                    conn.exec_driver_sql(f"PRAGMA secure_delete={was}")
        self._plain_checked = True
        if not sealed:
            return
        log.warning(
            "Sealed %d token-signing keys stored in plain text with key-encryption key %s; "
            "backups made before hold them readable",
            sealed,
            self.kek.key_id,
        )
        if sealed_current:
            self.rotate()
        if sqlite:
            self._truncate_wal()

    def _truncate_wal(self) -> None:
        raw = self.engine.raw_connection()  # a checkpoint cannot run inside a transaction
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = cursor.fetchone()
            cursor.close()
        finally:
            raw.close()
        if busy and busy[0]:
            log.warning("A reader kept the write-ahead log busy: it still holds the plain keys")
