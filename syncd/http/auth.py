"""Partner authentication: API-key headers, OAuth2 client credentials, refresh-token grants.

Tokens are persisted (encrypted) in PostgreSQL and reused across restarts: some partners
issue only a few per key per day, so a daemon that re-authenticates on every start locks
itself out. Token requests are single-flight: an anyio lock inside the process and the
credentials row lock across processes, so any number of coroutines and shards meeting an
expired token cause exactly one request. A rotated refresh token is committed in the
same transaction as the access token it came with, before that access token is used.
A partner that refuses a token for a moment after issue (``warmup_s``) gets no request
with it before then, from this process or any other: the row records when it was issued.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio

from syncd import errors
from syncd.crypto import fingerprint
from syncd.observability.logging import register_secret
from syncd.store.types import StoredToken

DAY_S = 86_400.0


@dataclass(frozen=True)
class TokenCap:
    """At most ``requests`` token requests per trailing ``window_s`` seconds, counted per
    integration across processes (the credentials' request log in PostgreSQL)."""

    requests: int
    window_s: float = DAY_S

    def __post_init__(self) -> None:
        if self.requests < 1 or not self.window_s > 0:
            raise ValueError("a token cap needs at least one request over a positive window")

    def describe(self) -> str:
        """``24 h``, ``1 h``, ``90 s``: the window as an operator reads it."""
        hours = self.window_s / 3600
        return f"{hours:g} h" if hours == int(hours) else f"{self.window_s:g} s"


class Auth(Protocol):
    async def headers(self) -> dict[str, str]: ...

    async def invalidate(self, headers: dict[str, str]) -> None:
        """The partner refused the credentials in ``headers``; do not use them again."""


class TokenTransaction(Protocol):
    current: StoredToken

    async def recent_requests(self, window_s: float) -> tuple[int, timedelta | None]: ...

    async def record_request(self, outcome: str) -> None: ...

    async def save(
        self,
        access_token: str,
        token_type: str,
        expires_at: datetime | None,
        refresh_token: str | None,
        issued_at: datetime | None = None,
    ) -> None: ...

    async def save_client_secret(self, client_secret: str, rotated_over_sha256: str) -> None: ...

    async def mark_grant_refused(self) -> None: ...


class TokenStore(Protocol):
    async def load_token(self, integration_id: str) -> StoredToken | None: ...

    def token_lock(self, integration_id: str) -> AbstractAsyncContextManager[TokenTransaction]: ...

    async def clear_token(self, integration_id: str, access_token: str) -> None: ...

    async def record_token_request(self, integration_id: str, outcome: str) -> None: ...

    async def restore_client_secret(self, integration_id: str, secret_version: int) -> bool: ...

    async def token_request_recorded(self, integration_id: str, outcome: str) -> bool: ...


# (form data) -> parsed JSON body of a successful token response; raises PartnerError.
TokenFetch = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class CallHeaders:
    """How an access token travels on API calls: ``Authorization: Bearer <token>`` unless
    the partner names its own header (and static ones beside it, such as the app's key)."""

    header: str = "Authorization"
    prefix: str = "Bearer "
    extra: Mapping[str, str] = field(default_factory=dict)

    def of(self, token: str | None) -> dict[str, str]:
        return {**self.extra, self.header: f"{self.prefix}{token}"}

    def token_in(self, headers: Mapping[str, str]) -> str:
        return headers.get(self.header, "").removeprefix(self.prefix)


BEARER = CallHeaders()


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


# A token response is partner data like any other. An odd value must not crash the grant
# after the request was made and counted against the partner's token cap.
MAX_TOKEN_LIFETIME_S = 10 * 365 * 86_400.0


def expiry(body: dict[str, Any]) -> datetime | None:
    """Absolute expiry from ``expires_in`` (seconds) or ``expires_at`` (unix time), at most
    10 years ahead. None when the partner gives neither, or a time already past: the token
    is then used until the partner refuses it, rather than fetched again and again."""
    now = datetime.now(UTC)
    expires_in, expires_at = body.get("expires_in"), body.get("expires_at")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        seconds = float(expires_in)
    elif isinstance(expires_at, int | float) and not isinstance(expires_at, bool):
        seconds = float(expires_at) - now.timestamp()
    else:
        return None
    if not seconds > 0:
        return None
    return now + timedelta(seconds=min(seconds, MAX_TOKEN_LIFETIME_S))


def token_type(body: dict[str, Any]) -> str:
    value = body.get("token_type")
    clean = value.replace("\x00", "")[:40] if isinstance(value, str) else ""
    return clean or "Bearer"


def refresh_token(body: dict[str, Any]) -> str | None:
    value = body.get("refresh_token")
    return value if isinstance(value, str) and value else None


class _StoredTokenAuth:
    """What every stored-token grant shares: cache, freshness, single-flight, invalidation."""

    def __init__(
        self,
        *,
        integration_id: str,
        fetch: TokenFetch,
        store: TokenStore,
        refresh_buffer_s: float,
        warmup_s: float,
        max_requests_per_day: int | None,
        cap: TokenCap | None = None,
        call_headers: CallHeaders = BEARER,
        client_secret: str = "",
    ) -> None:
        register_secret(client_secret)
        self._configured_secret = client_secret
        self._call_headers = call_headers
        self._integration_id = integration_id
        self._fetch = fetch
        self._store = store
        self._buffer = timedelta(seconds=refresh_buffer_s)
        self._warmup_s = warmup_s
        # ``cap`` wins; ``max_requests_per_day`` is the same over 24 h.
        self._cap = cap or (TokenCap(max_requests_per_day) if max_requests_per_day is not None else None)
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
        return self._call_headers.of(self._token)

    async def invalidate(self, headers: dict[str, str]) -> None:
        token = self._call_headers.token_in(headers)
        if not token:
            return
        self._rejected.add(token)
        if self._token == token:
            self._token = None
        await self._store.clear_token(self._integration_id, token)

    async def _obtain(self) -> None:
        stored = await self._store.load_token(self._integration_id)
        if not (stored and self._usable(stored.access_token, stored.expires_at)):
            async with self._store.token_lock(self._integration_id) as txn:
                stored = txn.current
                # Usable: another process refreshed while we waited for the row lock.
                if not self._usable(stored.access_token, stored.expires_at):
                    stored = await self._request(txn)
        # Committed (rotated refresh token included) before the new access token is used.
        await self._warm_up(stored.issued_at)
        self._adopt(stored.access_token, stored.expires_at)

    async def _request(self, txn: TokenTransaction) -> StoredToken:
        """One token request under the row lock; the token as saved."""
        await self._check_cap(txn)
        try:
            body = await self._fetch(self._form(txn.current))
        except errors.PartnerError as exc:
            await self._store.record_token_request(self._integration_id, type(exc).__name__)
            raise
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise errors.AuthFailed("token response carries no access_token")
        issued_at = datetime.now(UTC)
        expires_at = expiry(body)
        await txn.record_request("ok")
        await txn.save(token, token_type(body), expires_at, refresh_token(body), issued_at)
        return replace(txn.current, access_token=token, expires_at=expires_at, issued_at=issued_at)

    async def _warm_up(self, issued_at: datetime | None) -> None:
        """Wait out what is left of the partner's warm-up since ``issued_at`` (cancellable).
        A token of unknown issue time (stored before issue times were) counts as warm."""
        if not self._warmup_s or issued_at is None:
            return
        left = (issued_at + timedelta(seconds=self._warmup_s) - datetime.now(UTC)).total_seconds()
        if left > 0:
            await anyio.sleep(min(left, self._warmup_s))

    async def _check_cap(self, txn: TokenTransaction) -> None:
        """Never spend the partner's token allowance: refuse locally, before asking."""
        cap = self._cap
        if cap is None:
            return
        count, frees_in = await txn.recent_requests(cap.window_s)
        if count >= cap.requests:
            wait = frees_in.total_seconds() if frees_in else cap.window_s
            raise errors.RateLimited(
                f"token request cap reached ({count} in {cap.describe()}); "
                f"the next is allowed in {wait:.0f} s",
                status=None,
                retry_after=wait,
            )

    def _form(self, current: StoredToken, secret: str | None = None) -> dict[str, str]:
        raise NotImplementedError

    def _secret(self, current: StoredToken) -> str:
        """The stored (rotated) secret, unless the configuration changed after that rotation:
        an operator who edits the configured secret means it, and it is the newer one."""
        stored = current.client_secret
        replaced = current.rotated_over_sha256
        if stored is None or (replaced is not None and replaced != fingerprint(self._configured_secret)):
            return self._configured_secret
        return stored

    async def _rotation_request(self, txn: TokenTransaction, new_secret: str) -> dict[str, Any]:
        """The token request that tries ``new_secret`` (under the row lock)."""
        try:
            return await self._fetch(self._form(txn.current, new_secret))
        except errors.PartnerError:
            await self._store.record_token_request(self._integration_id, "rotation_refused")
            raise

    async def rotate_secret(self, new_secret: str, verify: Callable[[], Awaitable[object]]) -> None:
        """Try the new secret, commit it (with the token it earned) atomically, verify it
        with a real call, and roll back to the previous secret if that call fails."""
        register_secret(new_secret)
        async with self._lock:
            spent: errors.PartnerError | None = None
            async with self._store.token_lock(self._integration_id) as txn:
                await self._check_cap(txn)
                try:
                    body = await self._rotation_request(txn, new_secret)
                except errors.PartnerError as exc:
                    if not await self._spent(txn, exc):
                        raise
                    spent = exc  # recorded in txn: committed, then raised
                else:
                    token = body.get("access_token")
                    if not isinstance(token, str) or not token:
                        raise errors.AuthFailed("token response carries no access_token")
                    issued_at = datetime.now(UTC)
                    expires_at = expiry(body)
                    await txn.save_client_secret(new_secret, fingerprint(self._configured_secret))
                    await txn.record_request("ok")
                    # A rotated refresh token is the newest one whatever the verification says.
                    await txn.save(token, token_type(body), expires_at, refresh_token(body), issued_at)
                    version = txn.current.secret_version + 1
            if spent is not None:
                raise errors.AuthFailed(
                    f"refresh token refused; re-authorization needed ({spent})"
                ) from spent
            await self._warm_up(issued_at)
            self._adopt(token, expires_at)
        try:
            await verify()
        except errors.PartnerError:
            await self._store.restore_client_secret(self._integration_id, version)
            self._token = None
            raise

    async def _spent(self, txn: TokenTransaction, exc: errors.PartnerError) -> bool:
        """Whether ``exc`` spent a single-use grant (then recorded in ``txn``, committed)."""
        return False

    def _adopt(self, token: str | None, expires_at: datetime | None) -> None:
        register_secret(token, expires_at.timestamp() if expires_at is not None else None)
        self._token, self._expires_at = token, expires_at


class ClientCredentials(_StoredTokenAuth):
    """OAuth2 client_credentials. A secret rotated through
    ``rotate_secret`` lives (encrypted) in PostgreSQL and overrides the configured one."""

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
        max_requests_per_day: int | None = None,
        cap: TokenCap | None = None,
    ) -> None:
        super().__init__(
            integration_id=integration_id,
            fetch=fetch,
            store=store,
            refresh_buffer_s=refresh_buffer_s,
            warmup_s=warmup_s,
            max_requests_per_day=max_requests_per_day,
            cap=cap,
            client_secret=client_secret,
        )
        self._client_id = client_id
        self._scope = scope

    def _form(self, current: StoredToken, secret: str | None = None) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": secret or self._secret(current),
        }
        if self._scope:
            form["scope"] = self._scope
        return form


def _code_mark(code: str) -> str:
    """The audit outcome that records an authorization code as sent (its fingerprint)."""
    return "authorization_code " + fingerprint(code)


class RefreshTokenGrant(_StoredTokenAuth):
    """OAuth2 refresh_token grant, and the authorization-code exchange that starts it.

    Refresh tokens may be single-use and rotate on every refresh: the newest one is always
    the stored one, committed before use; reusing an old one can revoke the whole family.
    So a refused refresh token (or a success whose answer was lost, which spends it just
    the same) is marked in the credentials row: no process sends it again, every run fails
    at once with "re-authorization needed", and a new grant (``exchange_code``) clears it.
    A token request is sent once (``fetch`` does not retry): after a timeout or a 5xx the
    partner most likely did not act, and the next need sends the same token again; if it
    had acted, the partner refuses that reuse, which is where a lost answer leads anyway.

    The refresh token comes from the configuration (``initial_refresh_token``), from an
    authorization code exchanged once (``authorization_code``: never sent twice, even
    across restarts and processes: each code sent is recorded before it is sent; a
    configured code not sent yet replaces whatever grant is stored, which is how an
    operator re-authorizes by configuration), or from ``exchange_code`` (``syncd
    authorize``), and from then on from the credentials row.
    """

    def __init__(
        self,
        *,
        integration_id: str,
        client_id: str,
        client_secret: str,
        initial_refresh_token: str | None,
        fetch: TokenFetch,
        store: TokenStore,
        refresh_buffer_s: float = 300.0,
        warmup_s: float = 0.0,
        max_requests_per_day: int | None = None,
        cap: TokenCap | None = None,
        authorization_code: str | None = None,
        call_headers: CallHeaders = BEARER,
    ) -> None:
        super().__init__(
            integration_id=integration_id,
            fetch=fetch,
            store=store,
            refresh_buffer_s=refresh_buffer_s,
            warmup_s=warmup_s,
            max_requests_per_day=max_requests_per_day,
            cap=cap,
            call_headers=call_headers,
            client_secret=client_secret,
        )
        register_secret(initial_refresh_token)
        register_secret(authorization_code)
        self._client_id = client_id
        self._initial_refresh = initial_refresh_token
        self._code = authorization_code

    def _form(self, current: StoredToken, secret: str | None = None) -> dict[str, str]:
        refresh = current.refresh_token or self._initial_refresh
        if refresh is None:
            raise errors.AuthFailed(
                "not authorized yet: no refresh token (exchange an authorization code: syncd authorize)"
            )
        return {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": self._client_id,
            "client_secret": secret or self._secret(current),
        }

    async def _obtain(self) -> None:
        stored = await self._store.load_token(self._integration_id)
        if stored and self._usable(stored.access_token, stored.expires_at):
            await self._warm_up(stored.issued_at)
            self._adopt(stored.access_token, stored.expires_at)
            return
        refused: errors.PartnerError | None = None
        async with self._store.token_lock(self._integration_id) as txn:
            stored = txn.current
            # Usable: another process refreshed while we waited for the row lock.
            if not self._usable(stored.access_token, stored.expires_at):
                if self._code and not await self._code_sent(self._code):
                    # A configured code never sent is a new grant: the first one, or the
                    # operator's re-authorization (it replaces a refused or stale one).
                    stored = await self._exchange(txn, self._code)
                elif stored.grant_refused_at is not None:
                    raise errors.AuthFailed(
                        "refresh token refused by the partner at "
                        f"{stored.grant_refused_at:%Y-%m-%d %H:%M:%S} UTC; re-authorization needed"
                    )
                else:
                    try:
                        stored = await self._request(txn)
                    except errors.PartnerError as exc:
                        if not await self._spent(txn, exc):
                            raise
                        refused = exc
        if refused is not None:
            raise errors.AuthFailed(
                f"refresh token refused; re-authorization needed ({refused})"
            ) from refused
        await self._warm_up(stored.issued_at)
        self._adopt(stored.access_token, stored.expires_at)

    async def _spent(self, txn: TokenTransaction, exc: errors.PartnerError) -> bool:
        """invalid_grant (revoked, or already used), or a success whose answer was lost:
        either way this refresh token is spent. Committed with the row, so no process
        sends it again."""
        if not isinstance(exc, errors.PartnerRejected | errors.UndecodableBody | errors.AnswerLost):
            return False
        await txn.mark_grant_refused()
        await txn.record_request("grant_refused")
        return True

    async def _rotation_request(self, txn: TokenTransaction, new_secret: str) -> dict[str, Any]:
        if txn.current.grant_refused_at is not None:  # its refresh token must not be sent again
            raise errors.AuthFailed("re-authorization needed first: the new secret cannot be tried")
        return await super()._rotation_request(txn, new_secret)

    async def exchange_code(self, code: str) -> StoredToken:
        """Exchange a one-time authorization code for the integration's first (or a new)
        refresh token: saved, with its access token, in the credentials row. AuthFailed
        when the partner refuses the code or it was sent before."""
        register_secret(code)
        async with self._lock:
            async with self._store.token_lock(self._integration_id) as txn:
                stored = await self._exchange(txn, code)
            self._adopt(stored.access_token, stored.expires_at)
        return stored

    async def _code_sent(self, code: str) -> bool:
        return await self._store.token_request_recorded(self._integration_id, _code_mark(code))

    async def _exchange(self, txn: TokenTransaction, code: str) -> StoredToken:
        mark = _code_mark(code)
        if await self._store.token_request_recorded(self._integration_id, mark):
            raise errors.AuthFailed(
                "this authorization code was sent to the partner before and is single-use; "
                "re-authorization needed: get a new code"
            )
        # Recorded (committed) before it is sent: a crash mid-request never sends it twice.
        await self._store.record_token_request(self._integration_id, mark)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self._client_id,
            "client_secret": self._secret(txn.current),
        }
        try:
            body = await self._fetch(form)
        except errors.PartnerError as exc:
            await self._store.record_token_request(self._integration_id, "code_refused")
            raise errors.AuthFailed(f"the partner refused the authorization code ({exc})") from exc
        token, new_refresh = body.get("access_token"), refresh_token(body)
        if not isinstance(token, str) or not token or new_refresh is None:
            raise errors.AuthFailed("the code exchange's answer carries no access_token or refresh_token")
        issued_at = datetime.now(UTC)
        expires_at = expiry(body)
        await txn.record_request("ok")
        await txn.save(token, token_type(body), expires_at, new_refresh, issued_at)
        return replace(
            txn.current, access_token=token, expires_at=expires_at, issued_at=issued_at,
            refresh_token=new_refresh, grant_refused_at=None,
        )  # fmt: skip
