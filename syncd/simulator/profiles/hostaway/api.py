"""The Hostaway API profile: ``/v1/accessTokens`` and ``/v1/...`` below ``/hostaway``.

What makes Hostaway Hostaway (partners.md section 2): client credentials whose
``client_id`` is the integer account id; long-lived tokens without refresh, refused
until 1 s after issue; a missing, unknown, expired or too-young token answered **403**;
every error in the ``{"status": "fail", "message"}`` envelope; 20 requests / 10 s per
account, refused with 429 and neither rate-limit nor Retry-After headers. The per-IP
limit (15 / 10 s) is not simulated: the gateway's buckets are per account.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from syncd.simulator import limits, profile, sparse
from syncd.simulator.profile import DOCUMENTED, JSON_MEDIA_TYPE, Account, Api, Profile, TokenEndpoint
from syncd.simulator.profiles.hostaway import data
from syncd.simulator.profiles.hostaway.data import HostawayAccount as Data

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime
    from syncd.simulator.profile import DatasetOptions, Endpoint, ProfileSettings

TTL_S: Final = 730 * 86_400  # "24 months"
WARMUP_S: Final = 1.0
ACCOUNT_ID0: Final = 58_000  # account ids are integers
_KINDS: Final = {k: k for k in ("listings", "reservations", "calendar")} | {"properties": "listings"}
_json, _form = profile.json_response, profile.form_fields
Accounts = Mapping[str, Account[Data]]
Handler = Callable[[Request, Account[Data]], Awaitable[Response]]


class HostawayProfile(Profile[Data]):
    name = "hostaway"
    tiers = (limits.Tier("10s", 20, 10.0),)

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        super().__init__(settings, runtime)
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (account id, issued at)
        self._ttl_s = TTL_S if settings.token_ttl_s == DOCUMENTED else settings.token_ttl_s

    def endpoints(self) -> Sequence[Endpoint[Data]]:
        return [
            TokenEndpoint("/v1/accessTokens", self.token, self.token_client),
            Api("/v1/listings", self._lister("listings", Data.query_listings)),
            Api("/v1/listings/{id}", self._getter("Listing", Data.get_listing)),
            Api("/v1/listings/{id}/calendar", self._calendar),
            Api("/v1/reservations", self._lister("reservations", Data.query_reservations)),
            Api("/v1/reservations/{id}", self._getter("Reservation", Data.get_reservation)),
        ]

    # -- auth -----------------------------------------------------------------------------

    async def token_client(self, request: Request, accounts: Accounts) -> Account[Data] | None:
        return accounts.get((await _form(request)).get("client_id", ""))

    async def token(self, request: Request, account: Account[Data] | None) -> Response:
        form = await _form(request)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "general":
            return self.error(400, "grant_type must be client_credentials and scope general")
        if account is None or not form["client_id"].isdigit() or form.get("client_secret") != account.secret:
            return self.error(403, "Invalid client credentials")
        token = f"eyJ0eXAiOiJKV1QifQ.{secrets.token_urlsafe(24)}"
        self._tokens[token] = (account.id, self.runtime.wall_clock())
        return _json(orjson.dumps({"token_type": "Bearer", "expires_in": self._ttl_s, "access_token": token}))

    def authenticate(self, request: Request, accounts: Accounts) -> Account[Data] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        found = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            return None
        age = self.runtime.wall_clock() - found[1]
        return accounts.get(found[0]) if WARMUP_S <= age < self._ttl_s else None

    def unauthorized(self, request: Request) -> Response:
        return self.error(403, "Unauthorized: the access token is missing, invalid, expired or not yet valid")

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """``{"status": "fail", ...}``; Hostaway sends no Retry-After, even with a 429."""
        if status == 429:
            message = "This error occurs because you have exceeded the rate limits"
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != "retry-after"}
        return Response(data.fail_body(message), status, headers=kept, media_type=JSON_MEDIA_TYPE)

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return {}

    def credentials(self, n: int) -> tuple[str, str]:
        return str(ACCOUNT_ID0 + n), f"sim-secret-{n}"

    def revoke(self, account: Account[Data]) -> int:
        kept = {token: issued for token, issued in self._tokens.items() if issued[0] != account.id}
        revoked, self._tokens = len(self._tokens) - len(kept), kept
        return revoked

    def issued_credentials(self) -> list[str]:
        return list(self._tokens)

    # -- routes ---------------------------------------------------------------------------

    def _lister(
        self, resource: str, run: Callable[[Data, sparse.ListQuery], tuple[list[bytes], int]]
    ) -> Handler:
        async def serve(request: Request, account: Account[Data]) -> Response:
            try:
                query = data.parse_query(resource, request.query_params)
            except data.QueryError as exc:
                return self.error(400, str(exc))
            return _json(data.list_body(*run(account.data, query), query))

        return serve

    def _getter(self, what: str, get: Callable[[Data, int], bytes | None]) -> Handler:
        async def serve(request: Request, account: Account[Data]) -> Response:
            ident = request.path_params["id"]
            record = get(account.data, int(ident)) if ident.isdigit() else None
            return self.error(404, f"{what} not found") if record is None else _json(data.record_body(record))

        return serve

    async def _calendar(self, request: Request, account: Account[Data]) -> Response:
        try:
            days = account.data.calendar(request.path_params["id"], request.query_params)
        except ValueError as exc:
            return self.error(400, f"startDate/endDate: {exc}")
        return self.error(404, "Listing not found") if days is None else _json(data.record_body(days))

    # -- the dataset ----------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> Data:
        return Data(seed, size, options.reservations_per_listing)

    def describe(self, account: Data) -> dict[str, object]:
        return {"seed": account.seed, "listings": account.listings.count(),
                "reservations": account.reservations.count()}  # fmt: skip

    def mutate(self, account: Data, count: int, seed: int) -> dict[str, object]:
        return {kind: len(ids) for kind, ids in account.mutate(count, seed)._asdict().items()}

    def truth(self, account: Data, kind: str | None) -> Iterable[bytes]:
        """Listings and reservations as rendered; calendar days (``kind="calendar"`` only)
        in ``calendar_window``, each under its listing's id, as a child walk stores them."""
        if kind is not None and kind not in _KINDS:
            raise ValueError("kind must be properties (listings), reservations or calendar")
        if kind == "calendar":
            return account.calendar_truth()
        kinds = ("listings", "reservations") if kind is None else (_KINDS[kind],)
        return (
            b'{"id":%d,"kind":"%s","payload":%s}\n' % (i, k.encode(), raw)
            for k in kinds
            for i, raw in account.live(k)
        )
