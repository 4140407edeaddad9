"""Partner authentication: API-key headers and OAuth2 client credentials.

Client-credentials tokens are persisted in PostgreSQL and reused across restarts (Guesty
issues at most five per key per 24 h). Requests for a new token are single-flight: an
anyio lock inside the process and the credentials row lock across processes, so any
number of coroutines and shards meeting an expired token cause exactly one request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio

from syncd import errors
from syncd.observability.logging import register_secret
from syncd.store.types import StoredToken


class Auth(Protocol):
    async def headers(self) -> dict[str, str]: ...

    async def invalidate(self, headers: dict[str, str]) -> None:
        """The partner refused the credentials in ``headers``; do not use them again."""


class TokenStore(Protocol):
    async def load_token(self, integration_id: str) -> StoredToken | None: ...

    def token_lock(self, integration_id: str) -> Any: ...

    async def clear_token(self, integration_id: str, access_token: str) -> None: ...

    async def record_token_request(self, integration_id: str, outcome: str) -> None: ...


# (form data) -> parsed JSON body of a successful token response; raises PartnerError.
TokenFetch = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


class NoAuth:
    async def headers(self) -> dict[str, str]:
        return {}

    async def invalidate(self, headers: dict[str, str]) -> None:
        return None


class HeaderAuth:
    """A static API key sent in a header (``x-api-key``, ``X-ApiKey``, ``Api-Key``)."""

    def __init__(self, name: str, value: str) -> None:
        register_secret(value)
        self._headers = {name: value}

    async def headers(self) -> dict[str, str]:
        return self._headers

    async def invalidate(self, headers: dict[str, str]) -> None:
        raise errors.AuthFailed("the partner refused the API key")


class ClientCredentials:
    """OAuth2 client_credentials with a token stored in PostgreSQL."""

    def __init__(
        self,
        *,
        integration_id: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        fetch: TokenFetch,
        store: TokenStore,
        refresh_buffer_s: float = 300.0,
        warmup_s: float = 0.0,
    ) -> None:
        register_secret(client_secret)
        self._integration_id = integration_id
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            self._form["scope"] = scope
        self._fetch = fetch
        self._store = store
        self._buffer = timedelta(seconds=refresh_buffer_s)
        self._warmup_s = warmup_s
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._rejected: set[str] = set()

    def _usable(self, token: str | None, expires_at: datetime | None) -> bool:
        if not token or token in self._rejected:
            return False
        return expires_at is None or expires_at - self._buffer > datetime.now(UTC)

    async def headers(self) -> dict[str, str]:
        if not self._usable(self._token, self._expires_at):
            async with self._lock:
                if not self._usable(self._token, self._expires_at):
                    await self._obtain()
        return {"Authorization": f"Bearer {self._token}"}

    async def invalidate(self, headers: dict[str, str]) -> None:
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if not token:
            return
        self._rejected.add(token)
        if self._token == token:
            self._token = None
        await self._store.clear_token(self._integration_id, token)

    async def _obtain(self) -> None:
        stored = await self._store.load_token(self._integration_id)
        if stored and self._usable(stored.access_token, stored.expires_at):
            self._adopt(stored.access_token, stored.expires_at)
            return
        async with self._store.token_lock(self._integration_id) as txn:
            current: StoredToken = txn.current
            if self._usable(current.access_token, current.expires_at):
                # Another process refreshed while we waited for the row lock.
                self._adopt(current.access_token, current.expires_at)
                return
            try:
                body = await self._fetch(self._form)
            except errors.PartnerError as exc:
                await self._store.record_token_request(self._integration_id, type(exc).__name__)
                raise
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise errors.AuthFailed("token response carries no access_token")
            expires_in = body.get("expires_in")
            expires_at = (
                datetime.now(UTC) + timedelta(seconds=float(expires_in))
                if isinstance(expires_in, int | float)
                else None
            )
            await txn.record_request("ok")
            await txn.save(
                token, str(body.get("token_type") or "Bearer"), expires_at, body.get("refresh_token")
            )
        if self._warmup_s:
            # Hostaway: "a new token is valid only 1 s after issue".
            await anyio.sleep(self._warmup_s)
        self._adopt(token, expires_at)

    def _adopt(self, token: str | None, expires_at: datetime | None) -> None:
        register_secret(token)
        self._token, self._expires_at = token, expires_at
