"""Secrets at rest: tokens and client secrets are encrypted before they reach PostgreSQL.

Fernet (AES-128-CBC + HMAC-SHA256, from the well-kept ``cryptography`` package) with
``MultiFernet`` for key rotation: the first key encrypts, every listed key decrypts, and
``rotate`` re-encrypts old ciphertexts under the first key. Keys come from the
environment (``SYNCD_SECRET_KEYS``, comma-separated) or, for the embedded default, from a
key file created once under the state directory with owner-only permissions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from syncd import errors

KEY_FILE_NAME = "secret.key"


class Cipher:
    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise errors.ConfigError([("secrets.keys", "at least one key is required")])
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise errors.ConfigError([("secrets.keys", f"not a Fernet key: {exc}")]) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            # Never echo the ciphertext: it is still a secret to someone holding the old key.
            raise errors.StoreError("a stored secret cannot be decrypted with the configured keys") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (current) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise errors.StoreError("a stored secret cannot be decrypted with the configured keys") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()


def load_or_create_key_file(path: Path) -> str:
    """The embedded default's key: created once (0600), reused on every start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def fingerprint(secret: str) -> str:
    """Stable id of a token or secret, to refer to it without storing it in clear."""
    return hashlib.sha256(secret.encode()).hexdigest()
