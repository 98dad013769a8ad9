"""The key-encryption key: secrets the access layer keeps in the database are sealed with it.

Token-signing keys live in the database so that every server process agrees on them; a
database copy (every backup) would then let anyone forge tokens. So each secret is stored
sealed with AES-256-GCM under a key that never enters the database: the key-encryption key,
``SOKHOE_KEY_ENCRYPTION_KEY`` (32 random bytes, base64; ``openssl rand -base64 32``). Without
that setting (development, ``make run``) a key is made once in ``var/key-encryption.key``
(mode 0600) and a log line says so. ``sokhoe backup`` copies the database only, never this
file; copying the whole ``var/`` folder would put the two back together.

A sealed value reads ``kek1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``: the version
prefix tells it from the plain secrets older releases wrote (those never contain ``:``), and the
key id (a hash prefix of the key, which reveals nothing of it) tells "sealed under another
key" (a database restored on another machine) from a damaged value in the log.
See: https://csrc.nist.gov/pubs/sp/800/38/d/final (GCM)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

PREFIX = "kek1:"
KEY_FILE = "key-encryption.key"
KEY_BYTES = 32
_NONCE_BYTES = 12
_HOW = "make one with: openssl rand -base64 32"


class SealError(ValueError):
    """A sealed value cannot be opened with this key: sealed under another key, or damaged."""


class KeyEncryptionKey:
    """AES-256-GCM over short secrets; ``context`` (a row's id) is authenticated with each, so
    a sealed value copied onto another row does not open."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"A key-encryption key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"sokhoe key-encryption key id\0" + key).hexdigest()[:8]

    def __repr__(self) -> str:  # never the key itself
        return f"KeyEncryptionKey(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, secret: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        box = self._aead.encrypt(nonce, secret.encode("utf-8"), context.encode("utf-8"))
        return f"{PREFIX}{self.key_id}:{base64.urlsafe_b64encode(nonce + box).decode('ascii')}"

    def open(self, stored: str, context: str) -> str:
        """The secret ``stored`` seals; :class:`SealError` when this key cannot open it."""
        if not self.is_sealed(stored):
            raise SealError("not a sealed value")
        key_id, _, body = stored.removeprefix(PREFIX).partition(":")
        if key_id != self.key_id:
            raise SealError(f"sealed under key {key_id}, this server has key {self.key_id}")
        try:
            raw = base64.urlsafe_b64decode(body)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealError(f"damaged value sealed under key {key_id}") from exc
        return plain.decode("utf-8")


def _decode(text: str, where: str) -> bytes:
    value = text.strip()
    try:
        key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{where} is not base64 ({_HOW})") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"{where} holds {len(key)} bytes; it must hold {KEY_BYTES} ({_HOW})")
    return key


def load_key_encryption_key(var_dir: Path, configured: str | None = None) -> KeyEncryptionKey:
    """The configured key (``SOKHOE_KEY_ENCRYPTION_KEY``), else the development key file under
    ``var_dir``, made on first use.

    A bad configured value or key file is an error, never replaced: a new key would silently
    make every sealed secret unreadable.
    """
    if configured:
        return KeyEncryptionKey(_decode(configured, "SOKHOE_KEY_ENCRYPTION_KEY"))
    path = var_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    kek = KeyEncryptionKey(_decode(path.read_text(encoding="ascii"), str(path)))
    log.info(
        "Sealing token-signing keys with the development key-encryption key %s (id %s): "
        "SOKHOE_KEY_ENCRYPTION_KEY is not set. Set it in production, and keep the key out of "
        "database backups",
        path,
        kek.key_id,
    )
    return kek


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600) unless another process got there first: the
    file appears whole, by a hard link, or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-encryption-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii") + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process made it; use theirs
    finally:
        os.unlink(tmp)
    log.warning(
        "Made a development key-encryption key in %s (SOKHOE_KEY_ENCRYPTION_KEY is not set); "
        "losing it makes the stored token-signing keys unreadable (everyone signs in again)",
        path,
    )
