"""The Booking.com profile: the OTA reservation queues below ``/booking_com/hotels`` and the
token exchange at ``/booking_com/token-based-authentication/exchange`` (partners.md section 5).

Auth: ``POST`` a JSON ``{"client_id", "client_secret"}`` for ``{"jwt": ...}`` [assumption,
as the connector's], a JWT whose claims are ``sub, aud, iss, exp, iat``; it lives 1 h
(``token_ttl_s``) and at most ``max_tokens_per_hour`` (30) are issued per account per
trailing hour: beyond, a 429 and ``tokens_refused`` counts it. Unknown or expired
tokens: 401; an account in ``no_access``: 403 "doesn't have access to this property".

Test knobs: ``hold_acks`` (an Event): acknowledgements wait for it and are then refused
unprocessed (503), so a test can kill the daemon between its commit and its
acknowledgement; ``held_acks`` counts those waiting. ``hostile_body``: served instead of
the next polls' answer (hostile XML). Errors are an OTA ``Errors`` envelope; no
rate-limit headers are documented.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import anyio
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
)
from syncd.simulator.profiles.booking_com.data import OTA_NS, BookingAccount, element, message

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime

PREFIX: Final = "/hotels"
TOKEN_PATH: Final = "/token-based-authentication/exchange"
TOKEN_TTL_S: Final = 3600
MAX_TOKENS_PER_HOUR: Final = 30
XML: Final = "application/xml"
QUEUES: Final = {"/ota/OTA_HotelResNotif": "new", "/ota/OTA_HotelResModifyNotif": "modified"}
_ROOTS: Final = {"new": "OTA_HotelResNotifRQ", "modified": "OTA_HotelResModifyNotifRQ"}
_ACK_ID = re.compile(rb'ResID_Value="(\d{1,30})"')


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=XML)


def _errors(message_text: str) -> bytes:
    text = message_text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><OTA_ErrorRS xmlns="{OTA_NS}">'
        f'<Errors><Error Type="3" ShortText="{text}"/></Errors></OTA_ErrorRS>'
    ).encode()


class BookingProfile(Profile[BookingAccount]):
    name = "booking_com"
    tiers = ()
    max_concurrent = 1  # "no concurrent calls"

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        super().__init__(settings, runtime)
        ttl = self.settings.token_ttl_s
        self.ttl_s = TOKEN_TTL_S if ttl == DOCUMENTED else ttl
        # A cap the simulator switched off (``max_tokens_per_day=None``) is off here too;
        # otherwise the documented hourly one (the per-day knob has no hourly meaning).
        off = self.settings.max_tokens_per_day is None
        self.max_tokens_per_hour: int | None = None if off else MAX_TOKENS_PER_HOUR
        self.tokens: dict[str, tuple[str, float]] = {}  # jwt -> (account id, expiry)
        self.issued: dict[str, deque[float]] = {}  # account id -> issue times in the last hour
        self.issued_total: Counter[str] = Counter()  # account id -> tokens ever issued
        self.tokens_refused = 0
        self.no_access: set[str] = set()
        self.hold_acks: anyio.Event | None = None
        self.held_acks = 0
        self.hostile_body: bytes | None = None
        self._serial = itertools.count(1)

    def endpoints(self) -> Sequence[Endpoint[BookingAccount]]:
        return [
            *(Api(f"{PREFIX}{path}", self.queue, ("GET", "POST")) for path in QUEUES),
            TokenEndpoint(TOKEN_PATH, self.exchange, self.token_client),
        ]

    # -- auth -------------------------------------------------------------------------------

    def tokens_issued(self, account_id: str) -> int:
        """Tokens issued to the account in the trailing hour (what the cap counts)."""
        since = self.runtime.wall_clock() - 3600
        return sum(1 for t in self.issued.get(account_id, ()) if t > since)

    async def token_client(
        self, request: Request, accounts: Mapping[str, Account[BookingAccount]]
    ) -> Account[BookingAccount] | None:
        try:
            document = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        client_id = document.get("client_id") if isinstance(document, dict) else None
        return accounts.get(client_id) if isinstance(client_id, str) else None

    async def exchange(self, request: Request, account: Account[BookingAccount] | None) -> Response:
        try:
            document = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            document = None
        if (
            not isinstance(document, dict)
            or account is None
            or document.get("client_secret") != account.secret
        ):
            return Response(b'{"error":"invalid client credentials"}', 401, media_type=JSON_MEDIA_TYPE)
        now = self.runtime.wall_clock()
        issued = self.issued.setdefault(account.id, deque())
        while issued and issued[0] <= now - 3600:
            issued.popleft()
        if self.max_tokens_per_hour is not None and len(issued) >= self.max_tokens_per_hour:
            self.tokens_refused += 1
            body = b'{"error":"too many tokens requested: at most 30 per hour"}'
            return Response(body, 429, headers={"Retry-After": "60"}, media_type=JSON_MEDIA_TYPE)
        issued.append(now)
        self.issued_total[account.id] += 1
        serial = next(self._serial)
        claims = {
            "sub": "connectivity-auth-proxy",
            "aud": account.id,
            "iss": "urn://connectivity-modern-auth/v1",
            "iat": int(now),
            "exp": int(now + self.ttl_s),
            "jti": serial,
        }
        head = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(orjson.dumps(claims))
        token = head + "." + _b64(hashlib.sha256(f"{account.secret}/{head}".encode()).digest())
        self.tokens[token] = (account.id, now + self.ttl_s)
        return Response(orjson.dumps({"jwt": token, "ruid": f"sim-{serial}"}), media_type=JSON_MEDIA_TYPE)

    def authenticate(
        self, request: Request, accounts: Mapping[str, Account[BookingAccount]]
    ) -> Account[BookingAccount] | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        issued = self.tokens.get(token)
        if issued is None or self.runtime.wall_clock() >= issued[1]:
            return None
        return accounts.get(issued[0])

    def unauthorized(self, request: Request) -> Response:
        return _xml(_errors("Authentication failed"), 401)

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        return Response(_errors(message), status, headers=dict(headers or {}), media_type=XML)

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return {}

    def revoke(self, account: Account[BookingAccount]) -> int:
        kept = {t: v for t, v in self.tokens.items() if v[0] != account.id}
        revoked, self.tokens = len(self.tokens) - len(kept), kept
        return revoked

    def issued_credentials(self) -> list[str]:
        return list(self.tokens)

    # -- the queues -------------------------------------------------------------------------

    async def queue(self, request: Request, account: Account[BookingAccount]) -> Response:
        if account.id in self.no_access:
            return _xml(_errors("This account doesn't have access to this property"), 403)
        queue = QUEUES[request.url.path.split(PREFIX, 1)[1]]
        data = account.data
        if request.method == "GET":
            if self.hostile_body is not None:
                return _xml(self.hostile_body)
            stays = data.poll(queue)
            return _xml(message(_ROOTS[queue], stays, data.clock))
        body = await request.body()
        if self.hold_acks is not None:
            self.held_acks += 1
            await self.hold_acks.wait()
            return _xml(_errors("acknowledgement not processed"), 503)
        ids = [int(i) for i in _ACK_ID.findall(body)]
        data.acknowledge(queue, ids, error=b"<Errors>" in body)
        root = _ROOTS[queue].replace("RQ", "RS")
        return _xml(f'<?xml version="1.0"?><{root} xmlns="{OTA_NS}"><Success/></{root}>'.encode())

    # -- the dataset ------------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> BookingAccount:
        per_poll = options.extra.get("per_poll", 50)
        bad_every = options.extra.get("bad_every", 0)
        return BookingAccount(
            seed,
            size,
            per_poll if isinstance(per_poll, int) else 50,
            bad_every if isinstance(bad_every, int) else 0,
        )

    def describe(self, data: BookingAccount) -> dict[str, object]:
        return {"seed": data.seed, "reservations": len(data.stays), "pending": data.pending()}

    def mutate(self, data: BookingAccount, count: int, seed: int) -> dict[str, object]:
        return dict(data.mutate(count, seed))

    def truth(self, data: BookingAccount, kind: str | None) -> Iterable[bytes]:
        """Every reservation as its element now reads (``payload``: the exact text),
        ``revision`` and ``bad`` (rendered broken: a dead letter, not a row)."""
        if kind not in (None, "reservations"):
            raise ValueError("kind must be reservations")
        for s in data.stays.values():
            line = {"id": str(s.id), "payload": element(s).decode(), "revision": s.revision, "bad": s.bad}
            yield orjson.dumps(line) + b"\n"
