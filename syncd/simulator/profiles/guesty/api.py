"""The Guesty Open API profile: ``/oauth2/token`` and ``/v1/...`` below ``/guesty``.

Only what makes Guesty Guesty lives here: the OAuth2 client-credentials exchange with
its 5-tokens-per-24-h cap, Bearer authentication (401 JSON when it fails; errors use the default
``{"error": {"code", "message"}}`` envelope), the
documented limits advertised as ``X-RateLimit-*``, and the routes that hand validated
queries to the pure dataset (``data``) and envelope (``query``) code. The gateway runs
faults, limits and latency around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from syncd import svix
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
)
from syncd.simulator.profiles.guesty import auth, query, v3
from syncd.simulator.profiles.guesty.data import (
    GuestyAccount,
    Kind,
    MutationSummary,
    QueryResult,
    ReservationApi,
)

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime

TOKEN_PATH: Final = "/oauth2/token"
API_PREFIX: Final = "/v1"
# Guesty documents 15/s, 120/min and 5,000/h per account, and 15 requests in flight.
TIERS: Final = (
    limits.Tier("Second", 15, 1.0),
    limits.Tier("Minute", 120, 60.0),
    limits.Tier("Hour", 5000, 3600.0),
)
MAX_CONCURRENT: Final = 15
_KINDS: Final[Mapping[str | None, tuple[Kind, ...]]] = {
    None: ("listing", "reservation"),
    "listing": ("listing",),
    "reservation": ("reservation",),
    # The canonical resources' names, as partner-neutral tests and tools ask for them.
    "properties": ("listing",),
    "reservations": ("reservation",),
}
# The connector's API version names -> how reservations are rendered (listings: one API).
_VERSIONS: Final[Mapping[str | None, ReservationApi]] = {None: "legacy", "legacy": "legacy", "v3": "v3"}


def _json(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)


class GuestyProfile(Profile[GuestyAccount]):
    name = "guesty"
    tiers = TIERS
    max_concurrent = MAX_CONCURRENT

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        super().__init__(settings, runtime)
        ttl = auth.DEFAULT_TTL_S if settings.token_ttl_s == DOCUMENTED else settings.token_ttl_s
        cap = (
            auth.DEFAULT_MAX_TOKENS
            if settings.max_tokens_per_day == DOCUMENTED
            else settings.max_tokens_per_day
        )
        self.tokens = auth.TokenIssuer(ttl, cap)

    def endpoints(self) -> Sequence[Endpoint[GuestyAccount]]:
        return [
            TokenEndpoint(TOKEN_PATH, self.token, self.token_client),
            Api(f"{API_PREFIX}/listings", self.list_listings),
            # ``fields`` projects the record (``?fields=pictures`` for a listing's photos).
            Api(f"{API_PREFIX}/listings/{{id}}", self.get_listing),
            Api(f"{API_PREFIX}/reservations", self.list_reservations),
            Api(f"{API_PREFIX}/reservations/{{id}}", self.get_reservation),
            Api(f"{API_PREFIX}/reservations-v3/search", self.search_reservations),
            # ASSUMPTION: v3 reads one reservation at this path (partners.md documents the
            # search only); its record is rendered as the search renders it.
            Api(f"{API_PREFIX}/reservations-v3/{{id}}", self.get_reservation_v3),
        ]

    # -- auth -----------------------------------------------------------------------------

    async def token_client(
        self, request: Request, accounts: Mapping[str, Account[GuestyAccount]]
    ) -> Account[GuestyAccount] | None:
        return accounts.get((await _form(request)).get("client_id", ""))

    async def token(self, request: Request, account: Account[GuestyAccount] | None) -> Response:
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            return _json(b'{"error":"invalid_request"}', 400)
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            return _json(b'{"error":"unsupported_grant_type"}', 400)
        if form.get("scope") != "open-api":
            return _json(b'{"error":"invalid_scope"}', 400)
        if account is None or form.get("client_secret") != account.secret:
            return _json(b'{"error":"invalid_client"}', 401)
        issued = self.tokens.issue(account.id, self.runtime.wall_clock())
        if issued is None:
            return _json(
                b'{"error":"too_many_requests","error_description":"token limit reached"}',
                429,
                {"Retry-After": str(auth.CAP_RETRY_AFTER_S)},
            )
        return _json(orjson.dumps(issued.to_json()))

    def authenticate(
        self, request: Request, accounts: Mapping[str, Account[GuestyAccount]]
    ) -> Account[GuestyAccount] | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return None
        client_id = self.tokens.resolve(credentials.strip(), self.runtime.wall_clock())
        return None if client_id is None else accounts.get(client_id)

    def unauthorized(self, request: Request) -> Response:
        return self.error(401, "Missing, unknown or expired access token")

    def revoke(self, account: Account[GuestyAccount]) -> int:
        return self.tokens.revoke(account.id)

    def issued_credentials(self) -> list[str]:
        return self.tokens.active_tokens()

    # -- endpoints ------------------------------------------------------------------------

    async def list_listings(self, request: Request, account: Account[GuestyAccount]) -> Response:
        return self._page(request, account.data.query_listings)

    async def list_reservations(self, request: Request, account: Account[GuestyAccount]) -> Response:
        return self._page(request, account.data.query_reservations)

    async def get_listing(self, request: Request, account: Account[GuestyAccount]) -> Response:
        return self._one(request, account.data.get_listing(request.path_params["id"]), "Listing")

    async def get_reservation(self, request: Request, account: Account[GuestyAccount]) -> Response:
        return self._one(request, account.data.get_reservation(request.path_params["id"]), "Reservation")

    async def search_reservations(self, request: Request, account: Account[GuestyAccount]) -> Response:
        try:
            parsed = v3.parse_search(request.query_params)
        except query.QueryError as exc:
            return self.error(400, str(exc))
        records, has_more = account.data.search_reservations_v3(parsed)
        return _json(v3.render_search(records, parsed, has_more))

    async def get_reservation_v3(self, request: Request, account: Account[GuestyAccount]) -> Response:
        return self._one(request, account.data.get_reservation_v3(request.path_params["id"]), "Reservation")

    def _page(self, request: Request, run: Callable[[query.ListQuery], QueryResult]) -> Response:
        try:
            parsed = query.parse_list_query(request.query_params)
        except query.QueryError as exc:
            return self.error(400, str(exc))
        result = run(parsed)
        return _json(query.render_page(result.records, result.count, parsed))

    def _one(self, request: Request, record: bytes | None, what: str) -> Response:
        if record is None:
            return self.error(404, f"{what} not found")
        fields = request.query_params.get("fields", "").replace(",", " ").split()
        return _json(query.project(record, fields) if fields else record)

    # -- the dataset ----------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> GuestyAccount:
        data = GuestyAccount(seed, size, options.reservations_per_listing, generation=options.generation)
        if options.prerender:
            data.prerender()
        return data

    def describe(self, data: GuestyAccount) -> dict[str, object]:
        return {
            "seed": data.seed,
            "listings": data.live_listing_count(),
            "reservations": data.reservation_count(),
        }

    def mutate(self, data: GuestyAccount, count: int, seed: int) -> dict[str, object]:
        return data.mutate(count, seed).to_json()

    # -- webhooks (Svix-signed) -------------------------------------------------------------

    def mutate_notify(
        self, data: GuestyAccount, count: int, seed: int
    ) -> tuple[dict[str, object], list[bytes]]:
        done = data.mutate(count, seed)
        return done.to_json(), webhook_bodies(data, done)

    def webhook_request(
        self, hook: WebhookHook, body: bytes, message_id: str, now: float
    ) -> tuple[str, dict[str, str]]:
        # A Svix sender signs with every secret it holds (two while one rotates).
        return hook.url, {
            "content-type": JSON_MEDIA_TYPE,
            **svix.headers(hook.secrets, message_id, int(now), body),
        }

    def truth(self, data: GuestyAccount, kind: str | None) -> Iterable[bytes]:
        return self.version_truth(data, kind, None)

    def version_truth(self, data: GuestyAccount, kind: str | None, version: str | None) -> Iterable[bytes]:
        if kind in ("photo", "photos"):
            return data.truth_photos_ndjson()
        kinds = _KINDS.get(kind)
        if kinds is None:
            raise ValueError("kind must be listing (properties), reservation (reservations) or photos")
        api = _VERSIONS.get(version)
        if api is None:
            raise ValueError(f"version must be one of {', '.join(v for v in _VERSIONS if v)}")
        return data.truth_ndjson(kinds, api)


def webhook_bodies(data: GuestyAccount, done: MutationSummary) -> list[bytes]:
    """Guesty's legacy events ``{event, listing|reservation, meta}`` for one mutation, the
    record as the API serves it now (a removed listing: its ``_id`` only)."""
    out: list[bytes] = []

    def event(name: str, key: str, record: bytes | None, ident: str) -> None:
        if record is None:
            record = orjson.dumps({"_id": ident})
        meta = orjson.dumps({"eventId": f"{name}:{ident}:{len(out)}", "messageId": ident})
        out.append(b'{"event":"%s","%s":%s,"meta":%s}' % (name.encode(), key.encode(), record, meta))

    for ident in done.listings_updated:
        event("listing.updated", "listing", data.get_listing(ident), ident)
    for ident in done.listings_inserted:
        event("listing.new", "listing", data.get_listing(ident), ident)
    for ident in done.listings_deleted:
        event("listing.removed", "listing", None, ident)
    for ident in done.reservations_updated:
        event("reservation.updated", "reservation", data.get_reservation(ident), ident)
    for ident in done.reservations_inserted:
        event("reservation.new", "reservation", data.get_reservation(ident), ident)
    return out


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (Starlette caches it, so ``identify`` and the handler share one read)."""
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
