"""Partner credentials in PostgreSQL: tokens that survive restarts, secrets that rotate.

Every secret is encrypted before it is written and decrypted after it is read
(``syncd.crypto.Cipher``); the database never holds one in clear. The credentials row
lock is the cross-process single-flight for token requests: whoever holds it asks the
partner; everyone else waits, then reads what it stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from syncd.crypto import Cipher, fingerprint
from syncd.store.postgres import Connection, Store, translate
from syncd.store.queries import QUERIES as Q
from syncd.store.types import StoredToken


class CredentialStore:
    def __init__(self, store: Store, cipher: Cipher) -> None:
        self._store = store
        self._cipher = cipher

    def _decrypt(self, value: str | None) -> str | None:
        return None if value is None else self._cipher.decrypt(value)

    def _token(self, row: Any) -> StoredToken:
        return StoredToken(
            access_token=self._decrypt(row["access_token"]),
            token_type=row["token_type"],
            expires_at=row["token_expires_at"],
            refresh_token=self._decrypt(row["refresh_token"]),
            rotation_version=row["rotation_version"],
            client_secret=self._decrypt(row["client_secret"]),
            previous_client_secret=self._decrypt(row["previous_client_secret"]),
            secret_version=row["secret_version"],
            rotated_over_sha256=row["rotated_over_sha256"],
            issued_at=row["token_issued_at"],
            grant_refused_at=row["grant_refused_at"],
        )

    async def load_token(self, integration_id: str) -> StoredToken | None:
        async with self._store.connection() as conn:
            with translate():
                row = await conn.fetchrow(Q["load_token"], integration_id)
        return self._token(row) if row else None

    @contextlib.asynccontextmanager
    async def token_lock(self, integration_id: str) -> AsyncIterator[TokenTransaction]:
        """Hold the credentials row lock for one token request (or one secret rotation)."""
        async with self._store.connection() as conn:
            with translate():
                async with conn.transaction():
                    await conn.execute(Q["ensure_credentials_row"], integration_id)
                    row = await conn.fetchrow(Q["lock_credentials"], integration_id)
                    assert row is not None  # ensured just above, in this transaction
                    yield TokenTransaction(conn, integration_id, self._token(row), self._cipher)

    async def clear_token(self, integration_id: str, access_token: str) -> None:
        async with self._store.connection() as conn:
            with translate():
                await conn.execute(Q["clear_token"], integration_id, fingerprint(access_token))

    async def record_token_request(self, integration_id: str, outcome: str) -> None:
        async with self._store.connection() as conn:
            with translate():
                await conn.execute(Q["record_token_request"], integration_id, outcome)

    async def token_request_recorded(self, integration_id: str, outcome: str) -> bool:
        async with self._store.connection() as conn:
            with translate():
                return bool(await conn.fetchval(Q["token_request_recorded"], integration_id, outcome))

    async def restore_client_secret(self, integration_id: str, secret_version: int) -> bool:
        """Roll a rotation back to the previous secret (only if nobody rotated since)."""
        async with self._store.connection() as conn:
            with translate():
                status = await conn.execute(Q["restore_client_secret"], integration_id, secret_version)
        return bool(status.endswith(" 1"))

    async def reencrypt_all(self) -> int:
        """Key rotation: rewrite every secret under the current (first) key."""
        rotate = self._cipher.rotate
        async with self._store.connection() as conn:
            with translate():
                async with conn.transaction():
                    rows = await conn.fetch(Q["list_credential_secrets"])
                    for row in rows:
                        values = [None if row[c] is None else rotate(row[c]) for c in (
                            "access_token", "refresh_token", "client_secret", "previous_client_secret"
                        )]  # fmt: skip
                        await conn.execute(Q["rewrite_credential_secrets"], row["integration_id"], *values)
        return len(rows)


class TokenTransaction:
    """Inside the credentials row lock: read what another process may have stored, or save."""

    def __init__(self, conn: Connection, integration_id: str, current: StoredToken, cipher: Cipher) -> None:
        self._conn = conn
        self._integration_id = integration_id
        self._cipher = cipher
        self.current = current

    async def recent_requests(self, window_s: float) -> tuple[int, timedelta | None]:
        """Successful token requests in the trailing window, and when the oldest leaves it."""
        with translate():
            row = await self._conn.fetchrow(Q["token_requests_since"], self._integration_id, window_s)
        assert row is not None
        return int(row[0]), row[1]

    async def record_request(self, outcome: str) -> None:
        # Same transaction as the token: the audit row commits with it.
        with translate():
            await self._conn.execute(Q["record_token_request"], self._integration_id, outcome)

    async def save(
        self,
        access_token: str,
        token_type: str,
        expires_at: datetime | None,
        refresh_token: str | None,
        issued_at: datetime | None = None,
    ) -> None:
        enc = self._cipher.encrypt
        with translate():
            await self._conn.execute(
                Q["save_token"],
                self._integration_id,
                enc(access_token),
                token_type,
                expires_at,
                None if refresh_token is None else enc(refresh_token),
                fingerprint(access_token),
                issued_at,
            )

    async def mark_grant_refused(self) -> None:
        with translate():
            await self._conn.execute(Q["mark_grant_refused"], self._integration_id)

    async def save_client_secret(self, client_secret: str, rotated_over_sha256: str) -> None:
        with translate():
            await self._conn.execute(
                Q["save_client_secret"],
                self._integration_id,
                self._cipher.encrypt(client_secret),
                rotated_over_sha256,
            )
