"""Guesty OAuth2 client_credentials tokens: issuing, the 5-per-24-h cap, and validation.

The cap is the quirk that matters: a daemon that asks for a new token on every restart
or 401 locks itself out for hours. Times are passed in (wall-clock seconds), so tests
can step through expiry and the trailing 24-hour window without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Final

import orjson

DEFAULT_TTL_S: Final = 86_400
DEFAULT_MAX_TOKENS: Final = 5
TOKEN_WINDOW_S: Final = 86_400.0
# What Guesty's gateway answers in Retry-After once the cap is hit (community contract).
CAP_RETRY_AFTER_S: Final = 3600


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    client_id: str
    issued_at: float
    expires_at: float
    expires_in: int

    def to_json(self) -> dict[str, object]:
        return {
            "token_type": "Bearer",
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "scope": "open-api",
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues JWT-shaped opaque tokens and resolves them back to their ``client_id``."""

    def __init__(
        self,
        ttl_s: int = DEFAULT_TTL_S,
        max_per_window: int | None = DEFAULT_MAX_TOKENS,
        window_s: float = TOKEN_WINDOW_S,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self.ttl_s = ttl_s
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._key = secrets.token_bytes(32)
        self._serial = itertools.count(1)
        self._tokens: dict[str, IssuedToken] = {}
        self._issued: dict[str, deque[float]] = {}

    def issued_in_window(self, client_id: str, now: float) -> int:
        times = self._issued.setdefault(client_id, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return len(times)

    def issue(self, client_id: str, now: float) -> IssuedToken | None:
        """A new token, or None when the client already got its quota in the trailing window."""
        if self.max_per_window is not None and self.issued_in_window(client_id, now) >= self.max_per_window:
            return None
        self._issued.setdefault(client_id, deque()).append(now)
        self._forget_expired(now)
        header = _b64(b'{"alg":"RS256","typ":"JWT"}')
        claims = {
            "iss": "https://open-api.guesty.sim",
            "sub": client_id,
            "scope": "open-api",
            "iat": int(now),
            "exp": int(now) + self.ttl_s,
            "jti": next(self._serial),
        }
        body = _b64(orjson.dumps(claims))
        signature = _b64(hmac.digest(self._key, f"{header}.{body}".encode(), hashlib.sha256))
        token = IssuedToken(f"{header}.{body}.{signature}", client_id, now, now + self.ttl_s, self.ttl_s)
        self._tokens[token.access_token] = token
        return token

    def resolve(self, access_token: str, now: float) -> str | None:
        """The token's ``client_id`` while it is valid; None if unknown, revoked or expired."""
        token = self._tokens.get(access_token)
        if token is None or now >= token.expires_at:
            return None
        return token.client_id

    def active_tokens(self) -> list[str]:
        """Every token handed out and not yet forgotten (tests check none leaks into logs)."""
        return list(self._tokens)

    def revoke(self, client_id: str) -> int:
        """Invalidate every token of a client (the partner rotating keys); returns how many."""
        doomed = [k for k, t in self._tokens.items() if t.client_id == client_id]
        for k in doomed:
            del self._tokens[k]
        return len(doomed)

    def _forget_expired(self, now: float) -> None:
        for k in [k for k, t in self._tokens.items() if now >= t.expires_at]:
            del self._tokens[k]
