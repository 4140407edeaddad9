"""The Airbnb profile: ``/v2/...`` below ``/airbnb`` (partners.md section 4).

Auth [C]: ``POST /v2/oauth2/authorizations`` with a JSON ``{code}`` or ``{refresh_token}``,
the client authenticated with HTTP Basic ``client_id:secret``; the answer is
``{access_token, expires_at (unix), refresh_token, user_id}``. Calls send
``X-Airbnb-OAuth-Token`` and ``X-Airbnb-API-Key: <client id>``.

What the simulator assumes where nothing is public, as real OAuth providers do:

* [assumption] An authorization code works once; a code sent again is refused
  (``invalid_grant``), counted (``code_reused``) and revokes what it granted.
* [assumption] A refresh token works once and rotates: a used one presented again is
  refused (``invalid_grant``), counted (``reused``) and revokes the whole family (every
  refresh and access token descending from the same code). Access tokens live
  ``token_ttl_s`` (a day unless a test shortens it: 401 after that).
* [assumption] The client secret rotates by webhook (``rotate_client_secret``): the old
  secret keeps working until the new one is first used, so a client can switch over
  without a gap; a wrong secret is a 401 ``invalid_client`` and spends nothing (the
  client is authenticated before the grant is looked at).
* [assumption] Errors are ``{"error_code", "error_type", "error_message"}``; no rate-limit
  headers (limits are not public, so none are simulated).
* Webhooks are signed ``X-Airbnb-Signature: t=<unix>,v1=<hex HMAC-SHA256>`` as
  ``syncd.connectors.airbnb.webhooks`` assumes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from syncd.connectors.webhooks import hmac_sign
from syncd.simulator import limits
from syncd.simulator.profile import (
    DOCUMENTED,
    JSON_MEDIA_TYPE,
    Account,
    Api,
    DatasetOptions,
    Endpoint,
    Profile,
    ProfileSettings,
    TokenEndpoint,
    WebhookHook,
    status_code,
)
from syncd.simulator.profiles.airbnb import data
from syncd.simulator.profiles.airbnb.data import AirbnbAccount as Data

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime

ACCESS_TTL_S: Final = 86_400  # [assumption] the current lifetime is not public
USER_ID0: Final = 90_000_000
Accounts = Mapping[str, Account[Data]]
_KINDS: Final = {"properties": "listings", "listings": "listings", "reservations": "reservations"}


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=JSON_MEDIA_TYPE)


def _failure(status: int, error_type: str, message: str) -> bytes:
    return orjson.dumps({"error_code": status, "error_type": error_type, "error_message": message})


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        return None
    return (client_id, secret) if sep else None


class AirbnbProfile(Profile[Data]):
    name = "airbnb"

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        super().__init__(settings, runtime)
        ttl = settings.token_ttl_s
        self.ttl_s = ACCESS_TTL_S if ttl == DOCUMENTED else ttl
        self.codes: dict[str, str] = {}  # live authorization code -> account id
        self.spent_codes: dict[str, int] = {}  # used code -> the family it started
        self.refresh: dict[str, tuple[str, int]] = {}  # live refresh token -> (account, family)
        self.used: dict[str, int] = {}  # spent refresh token -> its family
        self.access: dict[str, tuple[str, float, int]] = {}  # token -> (account, expiry, family)
        self.revoked: set[int] = set()  # families
        self.refreshes = 0  # refresh tokens exchanged successfully
        self.exchanges = 0  # codes exchanged successfully
        self.reused = 0  # spent refresh tokens presented again
        self.code_reused = 0  # spent codes presented again
        self.previous_secret: dict[str, str] = {}  # account -> old secret, until the new one is used
        self._serial = itertools.count(1)

    def endpoints(self) -> Sequence[Endpoint[Data]]:
        return [
            TokenEndpoint("/v2/oauth2/authorizations", self.token, self.token_client),
            Api("/v2/listings", self._lister("listings")),
            Api("/v2/listings/{id}", self._one(Data.get_listing)),
            Api("/v2/reservations", self._lister("reservations")),
            Api("/v2/reservations/{id}", self._one(Data.get_reservation)),
        ]

    # -- credentials ------------------------------------------------------------------

    def credentials(self, n: int) -> tuple[str, str]:
        return f"airbnb-client-{n}", "sim-airbnb-" + hashlib.sha256(b"secret-%d" % n).hexdigest()[:24]

    def config_credentials(self, account_id: str, secret: str) -> dict[str, str]:
        """A one-time code, as the operator gets it from the consent page: the daemon
        exchanges it on its first start."""
        return {
            "client_id": account_id,
            "client_secret": secret,
            "authorization_code": self.mint_code(account_id),
        }

    def authorization_code(self, account_id: str) -> str | None:
        return self.mint_code(account_id)

    def mint_code(self, account_id: str) -> str:
        """What ``https://www.airbnb.com/oauth2/auth`` hands the operator after consent."""
        # Random, like the partner's: a code from an earlier simulator (a previous demo run
        # whose database is kept) must not look like one this simulator issued.
        code = "code" + secrets.token_hex(14)
        self.codes[code] = account_id
        return code

    def rotate_client_secret(self, account: Account[Data]) -> tuple[str, bytes]:
        """The partner rotates the app's secret: the new one, and the webhook body that
        announces it (the old secret works until the new one is first used)."""
        new = (
            "sim-airbnb-rotated-"
            + hashlib.sha256(f"{account.secret}/{next(self._serial)}".encode()).hexdigest()[:24]
        )
        self.previous_secret[account.id] = account.secret
        account.secret = new
        body = orjson.dumps({"event": "client_secret.rotated", "client_id": account.id, "client_secret": new})
        return new, body

    async def token_client(self, request: Request, accounts: Accounts) -> Account[Data] | None:
        basic = _basic(request)
        return accounts.get(basic[0]) if basic else None

    async def token(self, request: Request, account: Account[Data] | None) -> Response:
        basic = _basic(request)
        secret = basic[1] if basic else ""
        if (
            account is None
            or not secret
            or secret not in (account.secret, self.previous_secret.get(account.id))
        ):
            return _json(_failure(401, "invalid_client", "client authentication failed"), 401)
        if secret == account.secret:
            self.previous_secret.pop(account.id, None)  # the new secret is in use: the old one retires
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return _json(_failure(400, "invalid_request", "a JSON object is expected"), 400)
        code, presented = body.get("code"), body.get("refresh_token")
        if isinstance(code, str) and code:
            return self._exchange_code(account, code)
        if isinstance(presented, str) and presented:
            return self._refresh(account, presented)
        return _json(_failure(400, "invalid_request", "code or refresh_token is required"), 400)

    def _exchange_code(self, account: Account[Data], code: str) -> Response:
        if self.codes.get(code) == account.id:
            del self.codes[code]
            family = next(self._serial)
            self.spent_codes[code] = family
            self.exchanges += 1
            return self._issue(account, family)
        if code in self.spent_codes:
            self.code_reused += 1
            self._revoke_family(self.spent_codes[code])
        return _json(_failure(400, "invalid_grant", "authorization code is invalid or was used"), 400)

    def _refresh(self, account: Account[Data], presented: str) -> Response:
        live = self.refresh.get(presented)
        if live is not None and live[0] == account.id and live[1] not in self.revoked:
            del self.refresh[presented]
            self.used[presented] = live[1]
            self.refreshes += 1
            return self._issue(account, live[1])
        if presented in self.used:
            self.reused += 1
            self._revoke_family(self.used[presented])
        return _json(_failure(400, "invalid_grant", "refresh token is invalid, revoked or was used"), 400)

    def _issue(self, account: Account[Data], family: int) -> Response:
        serial = next(self._serial)
        access = f"at{serial}_" + hashlib.sha256(f"{account.id}/a/{serial}".encode()).hexdigest()[:24]
        refresh = f"rt{serial}_" + hashlib.sha256(f"{account.id}/r/{serial}".encode()).hexdigest()[:24]
        expires_at = self.runtime.wall_clock() + self.ttl_s
        self.access[access] = (account.id, expires_at, family)
        self.refresh[refresh] = (account.id, family)
        user_id = USER_ID0 + sum(map(ord, account.id))
        answer = {
            "access_token": access,
            "expires_at": int(expires_at),
            "refresh_token": refresh,
            "user_id": user_id,
        }
        return _json(orjson.dumps(answer))

    def _revoke_family(self, family: int) -> None:
        self.revoked.add(family)
        self.refresh = {t: v for t, v in self.refresh.items() if v[1] != family}
        self.access = {t: v for t, v in self.access.items() if v[2] != family}

    def authenticate(self, request: Request, accounts: Accounts) -> Account[Data] | None:
        found = self.access.get(request.headers.get("x-airbnb-oauth-token", ""))
        if found is None:
            return None
        account_id, expiry, family = found
        if self.runtime.wall_clock() >= expiry or family in self.revoked:
            return None
        if request.headers.get("x-airbnb-api-key") != account_id:
            return None
        return accounts.get(account_id)

    def unauthorized(self, request: Request) -> Response:
        return _json(_failure(401, "invalid_token", "missing, unknown or expired access token"), 401)

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        return Response(
            _failure(status, status_code(status).lower(), message),
            status,
            headers=dict(headers or {}),
            media_type=JSON_MEDIA_TYPE,
        )

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return {}

    def revoke(self, account: Account[Data]) -> int:
        kept = {t: v for t, v in self.access.items() if v[0] != account.id}
        revoked, self.access = len(self.access) - len(kept), kept
        return revoked

    def issued_credentials(self) -> list[str]:
        return [*self.access, *self.refresh, *self.codes]

    # -- routes -----------------------------------------------------------------------

    def _lister(self, kind: str) -> Any:
        async def serve(request: Request, account: Account[Data]) -> Response:
            try:
                query = data.parse_query(request.query_params)
            except data.QueryError as exc:
                return self.error(400, str(exc))
            return _json(account.data.query(kind, query))

        return serve

    def _one(self, get: Any) -> Any:
        async def serve(request: Request, account: Account[Data]) -> Response:
            found = get(account.data, request.path_params["id"])
            return self.error(404, "not found") if found is None else _json(found)

        return serve

    # -- the dataset ------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> Data:
        return Data(seed, size, options.reservations_per_listing)

    def describe(self, account: Data) -> dict[str, object]:
        return {"seed": account.seed, "listings": account.listings.count(),
                "reservations": account.reservations.count()}  # fmt: skip

    def mutate(self, account: Data, count: int, seed: int) -> dict[str, object]:
        return self.mutate_notify(account, count, seed)[0]

    def mutate_notify(self, account: Data, count: int, seed: int) -> tuple[dict[str, object], list[bytes]]:
        done = account.mutate(count, seed)
        summary: dict[str, object] = {kind: len(ids) for kind, ids in done._asdict().items()}
        events: tuple[tuple[str, Sequence[object]], ...] = (
            ("listing.updated", done.listings_updated),
            ("listing.created", done.listings_inserted),
            ("listing.deleted", done.listings_deleted),
            ("reservation.updated", done.reservations_updated),
            ("reservation.created", done.reservations_inserted),
        )
        bodies = [orjson.dumps({"event": name, "object_id": ident}) for name, ids in events for ident in ids]
        return summary, bodies

    def webhook_request(
        self, hook: WebhookHook, body: bytes, message_id: str, now: float
    ) -> tuple[str, dict[str, str]]:
        signature = hmac_sign(hook.secrets[0], body, int(now))
        return hook.url, {"content-type": JSON_MEDIA_TYPE, "x-airbnb-signature": signature}

    def truth(self, account: Data, kind: str | None) -> Iterable[bytes]:
        if kind is not None and kind not in _KINDS:
            raise ValueError("kind must be properties (listings) or reservations")
        kinds = ("listings", "reservations") if kind is None else (_KINDS[kind],)
        return (
            orjson.dumps({"id": ident, "kind": k, "payload": payload}) + b"\n"
            for k in kinds
            for ident, payload in account.live(k)
        )
