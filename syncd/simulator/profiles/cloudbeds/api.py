"""The Cloudbeds profile: ``/api/v1.3/{method}`` below ``/cloudbeds`` (partners.md section 3).

Auth: an API key (``x-api-key: cbat_...`` or ``Authorization: Bearer cbat_...``) or an
OAuth2 access token from ``POST /access_token`` (``grant_type=refresh_token``). Refresh
tokens slide: each use kills the old one, and a dead one presented again is refused and
counted (``reused``). A bad credential is a 401 ``{"error": "access_denied"}``; errors use
the ``{"success": false, "message"}`` envelope; no rate-limit headers are documented.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

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
from syncd.simulator.profiles.cloudbeds.data import CloudbedsAccount, Mutations, failure

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime

PREFIX: Final = "/api/v1.3"
ACCESS_TTL_S: Final = 28_800  # 8 h
TIERS: Final = (limits.Tier("Second", 10, 1.0),)  # "10 requests per second", per client id


# (The class below has a method named ``list``, which shadows the builtin in its scope.)
Bodies = list[bytes]


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=JSON_MEDIA_TYPE)


class CloudbedsProfile(Profile[CloudbedsAccount]):
    name = "cloudbeds"
    tiers = TIERS

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        super().__init__(settings, runtime)
        ttl = self.settings.token_ttl_s
        self.ttl_s = ACCESS_TTL_S if ttl == DOCUMENTED else ttl
        self.access: dict[str, tuple[str, float]] = {}  # token -> (account id, expiry)
        self.refresh: dict[str, str] = {}  # live refresh token -> account id
        self.used: set[str] = set()
        self.reused = 0  # dead refresh tokens presented again
        self._serial = itertools.count(1)

    def endpoints(self) -> Sequence[Endpoint[CloudbedsAccount]]:
        methods = {"getHotels": self.hotels, "getReservations": self.list, "getReservation": self.one}
        return [
            *(Api(f"{PREFIX}/{name}", handler) for name, handler in methods.items()),
            TokenEndpoint(f"{PREFIX}/access_token", self.token, self.token_client),
        ]

    # -- auth -------------------------------------------------------------------------

    def credentials(self, n: int) -> tuple[str, str]:
        return f"{self.name}-acct-{n}", "cbat_" + hashlib.sha256(b"sim-%d" % n).hexdigest()[:32]

    def config_credentials(self, account_id: str, secret: str) -> dict[str, str]:
        return {"api_key": secret}

    def oauth_credentials(self, account: Account[CloudbedsAccount]) -> dict[str, str]:
        """The OAuth form of an account (the app's client and a first refresh token)."""
        return {
            "client_id": account.id,
            "client_secret": account.secret,
            "refresh_token": self._mint(account),
        }

    def _mint(self, account: Account[CloudbedsAccount]) -> str:
        serial = next(self._serial)
        token = f"cbrt_{serial}_" + hashlib.sha256(f"{account.id}/{serial}".encode()).hexdigest()[:16]
        self.refresh[token] = account.id
        return token

    async def token_client(
        self, request: Request, accounts: Mapping[str, Account[CloudbedsAccount]]
    ) -> Account[CloudbedsAccount] | None:
        return accounts.get(_form(await request.body()).get("client_id", ""))

    async def token(self, request: Request, account: Account[CloudbedsAccount] | None) -> Response:
        form = _form(await request.body())
        if form.get("grant_type") != "refresh_token":
            return _json(b'{"error":"unsupported_grant_type"}', 400)
        if account is None or form.get("client_secret") != account.secret:
            return _json(b'{"error":"invalid_client"}', 401)
        presented = form.get("refresh_token", "")
        if self.refresh.get(presented) != account.id:
            self.reused += presented in self.used
            return _json(b'{"error":"invalid_grant","error_description":"refresh token is not valid"}', 400)
        del self.refresh[presented]
        self.used.add(presented)
        access = f"cbat_oauth_{next(self._serial)}_" + hashlib.sha256(presented.encode()).hexdigest()[:24]
        self.access[access] = (account.id, self.runtime.wall_clock() + self.ttl_s)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.ttl_s}
        body |= {
            "refresh_token": self._mint(account),
            "resources": [{"type": "association", "id": account.id}],
        }
        return _json(orjson.dumps(body))

    def authenticate(
        self, request: Request, accounts: Mapping[str, Account[CloudbedsAccount]]
    ) -> Account[CloudbedsAccount] | None:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        issued = self.access.get(key)
        if issued is not None:
            account_id, expiry = issued
            return accounts.get(account_id) if self.runtime.wall_clock() < expiry else None
        return next((a for a in accounts.values() if a.secret == key and key), None)

    def unauthorized(self, request: Request) -> Response:
        return _json(b'{"error":"access_denied","error_description":"invalid or expired credentials"}', 401)

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        return Response(failure(message), status, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return {}

    def revoke(self, account: Account[CloudbedsAccount]) -> int:
        kept = {t: (a, expiry) for t, (a, expiry) in self.access.items() if a != account.id}
        revoked, self.access = len(self.access) - len(kept), kept
        return revoked

    def issued_credentials(self) -> list[str]:
        return [*self.access, *self.refresh]

    # -- methods ----------------------------------------------------------------------

    async def hotels(self, request: Request, account: Account[CloudbedsAccount]) -> Response:
        return _json(account.data.get_hotels(dict(request.query_params)))

    async def list(self, request: Request, account: Account[CloudbedsAccount]) -> Response:
        return _json(account.data.get_reservations(dict(request.query_params)))

    async def one(self, request: Request, account: Account[CloudbedsAccount]) -> Response:
        found = account.data.get_reservation(request.query_params.get("reservationID", ""))
        return _json(failure("Reservation not found") if found is None else found)

    # -- the dataset ------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> CloudbedsAccount:
        return CloudbedsAccount(seed, size, options.reservations_per_listing)

    def describe(self, data: CloudbedsAccount) -> dict[str, object]:
        properties = sum(1 for _ in data.live_hotels())
        reservations = sum(len(data.of_hotel(i)) for i in data.live_hotels())
        return {"seed": data.seed, "listings": properties, "reservations": reservations}

    def mutate(self, data: CloudbedsAccount, count: int, seed: int) -> dict[str, object]:
        return self.mutate_notify(data, count, seed)[0]

    # -- webhooks (no signature: the subscription's URL carries a token) ------------------

    def mutate_notify(
        self, data: CloudbedsAccount, count: int, seed: int
    ) -> tuple[dict[str, object], Bodies]:
        done = data.mutate(count, seed)
        summary: dict[str, object] = {key: len(ids) for key, ids in dataclasses.asdict(done).items()}
        return summary, webhook_bodies(data, done, self.runtime.wall_clock())

    def webhook_request(
        self, hook: WebhookHook, body: bytes, message_id: str, now: float
    ) -> tuple[str, dict[str, str]]:
        separator = "&" if "?" in hook.url else "?"
        return f"{hook.url}{separator}token={quote(hook.secrets[0], safe='')}", {
            "content-type": JSON_MEDIA_TYPE
        }

    def truth(self, data: CloudbedsAccount, kind: str | None) -> Iterable[bytes]:
        if kind not in (None, "properties", "reservations"):
            raise ValueError("kind must be properties or reservations")
        hotels = (_line(data.hotel(i).item(), "propertyID") for i in data.live_hotels())
        # Reservations are never swept: a deleted property's stay as last served.
        held = (data.booking(j).item() for i in range(data.hotels) for j in data.of_hotel(i))
        bookings = (_line(item, "reservationID") for item in held)
        return itertools.chain(
            hotels if kind != "reservations" else (), bookings if kind != "properties" else ()
        )


def webhook_bodies(data: CloudbedsAccount, done: Mutations, now: float) -> list[bytes]:
    """Cloudbeds' ``{version, event, timestamp, propertyID, propertyID_str, reservationID}``
    per reservation change (silent edits fire nothing: nothing visible changed)."""
    events = (
        ("reservation/created", done.inserted),
        ("reservation/dates_changed", done.updated),
        ("reservation/status_changed", done.canceled),
    )
    bodies: list[bytes] = []
    for name, ids in events:
        for ident in ids:
            j = data.reservation_index(ident)
            if j is None:
                continue
            property_id = str(data.booking(j).item()["propertyID"])
            event = {
                "version": "1.0",
                "event": name,
                "timestamp": now,
                "propertyID": int(property_id),
                "propertyID_str": property_id,
                "reservationID": ident,
            }
            bodies.append(orjson.dumps(event))
    return bodies


def _line(item: dict[str, object], key: str) -> bytes:
    return orjson.dumps({"id": item[key], "payload": item}) + b"\n"


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
