"""The partner profile: everything that makes one fake partner different from another.

The gateway (``gateway``) runs the same pipeline for every partner: fault plan →
authentication → concurrency cap and leaky buckets → latency → handler → wire damage.
A profile supplies the partner-specific parts, and adding a partner's fake is adding a
package ``syncd/simulator/profiles/<name>/`` whose ``__init__`` exports ``PROFILE``, a
``Profile`` subclass. Nothing else changes: ``discover`` finds it, ``syncd simulate``
serves it under ``/<name>/``, the control plane and fault spec address it by name.

Writing one (routes + dataset + quirks):

- ``name``: the URL prefix and the name accounts, fault rules and CLI flags use.
- ``tiers`` / ``max_concurrent``: the documented per-account limits (``limits.Tier``);
  ``()`` / ``None`` for none.
- ``endpoints()``: ``Api`` routes (authenticated, rate-limited; the handler gets the
  account) and ``TokenEndpoint`` routes (credential exchange: no authentication and no
  rate limits; ``identify`` names the account for faults and the request log). Paths are
  Starlette templates relative to the prefix. Handlers are pure apart from HTTP parsing:
  they read the account's dataset and render bytes.
- ``authenticate(request, accounts)``: the account a request's credentials belong to
  (Bearer token, API-key header, ...), or None; ``unauthorized(request)``: the partner's
  answer then (a 401 JSON body, a 403, or HTTP 200 ``{"success": false}``).
- ``error(status, message, headers)``: the partner's error envelope, used for the
  gateway's 429s and for injected 5xx/429 faults; ``rate_headers``: what every answer
  advertises about the limits (``X-RateLimit-*`` by default; return ``{}`` for none).
- ``credentials(n)``: the n-th CLI account's (id, secret), ``{name}-acct-{n}`` by default;
  ``authorization_code(account_id)``: a one-time code, for authorization-code partners;
  ``revoke(account)``: invalidate its issued credentials (the ``revoke_tokens`` fault);
  ``issued_credentials()``: every live token, so tests can check none leaks into logs.
- ``dataset(seed, size, options)``: a fresh, deterministic dataset for a new account;
  ``describe``, ``mutate`` and ``truth``: the control plane's view of it (sizes, the
  insert/edit/delete hook tests and demos drive, and the NDJSON ground truth;
  ``version_truth`` when the partner's API versions render records differently).
- webhooks, for a partner that sends them: ``mutate_notify`` is ``mutate`` plus the
  bodies of the events the partner would send for those changes (its own event shape);
  ``webhook_request(hook, body, message_id, now)`` is the URL and headers of one delivery
  attempt, authenticated in the partner's scheme (a Svix signature, Basic credentials, a
  token in the URL). The generic sender (``syncd.simulator.webhooks``) delivers them with
  retries and faults; it also polls ``pending_notifications`` for changes the partner makes
  on its own (a lock that sets a code some time after it was asked).

A profile instance belongs to one ``Simulator``; ``self.runtime`` gives it the clocks
(wall-clock seconds for token expiry) and ``self.settings`` the token knobs. Fault rules
match routes by their template below the prefix (``/v1/listings``) and ``partners``; the
request log records the full path (``/<partner>/v1/listings``). Each package under
``profiles/`` is a complete profile; the test ``test_profile_contract`` holds a minimal
API-key one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, TypeVar
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from syncd.simulator import limits

if TYPE_CHECKING:
    from syncd.simulator.gateway import Runtime

D = TypeVar("D")
JSON_MEDIA_TYPE = "application/json"
# The partner's own documented value (token lifetime, token cap), unless a test overrides it.
DOCUMENTED: Literal["documented"] = "documented"


@dataclass
class Account(Generic[D]):
    """One simulated account: its credentials, its dataset and its own limiter."""

    partner: str
    id: str
    secret: str
    data: D
    limiter: limits.RateLimiter


@dataclass(frozen=True, slots=True)
class Api(Generic[D]):
    """An authenticated, rate-limited route; ``handler`` answers for the account."""

    path: str
    handler: Callable[[Request, Account[D]], Awaitable[Response]]
    methods: tuple[str, ...] = ("GET",)


@dataclass(frozen=True, slots=True)
class TokenEndpoint(Generic[D]):
    """A credential exchange: not authenticated, not rate-limited by the account's buckets.

    ``identify`` names the account the request claims (it may read the body), so faults
    and the request log can address it; ``handler`` validates and answers. Fault rules
    reach every token endpoint through the path pattern ``@token`` (API routes: ``@api``).
    """

    path: str
    handler: Callable[[Request, Account[D] | None], Awaitable[Response]]
    identify: Callable[[Request, Mapping[str, Account[D]]], Awaitable[Account[D] | None]]
    methods: tuple[str, ...] = ("POST",)


Endpoint = Api[D] | TokenEndpoint[D]


@dataclass(frozen=True, slots=True)
class ProfileSettings:
    """Token knobs tests turn; ``DOCUMENTED`` keeps the partner's own value, None disables a cap."""

    token_ttl_s: int | Literal["documented"] = DOCUMENTED
    max_tokens_per_day: int | Literal["documented"] | None = DOCUMENTED


@dataclass(frozen=True, slots=True)
class DatasetOptions:
    """Dataset knobs shared by the CLI's accounts; a profile ignores those it lacks."""

    reservations_per_listing: int = 2
    generation: int = 0
    prerender: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookHook:
    """Where an account's webhooks go, and what authenticates them there: signing
    secrets, ``login:password`` pairs or a URL token, as the partner's scheme uses them
    (the first one signs; a Svix sender signs with all of them during a rotation)."""

    url: str
    secrets: tuple[str, ...]


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=JSON_MEDIA_TYPE)


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded body (Starlette caches it: ``identify`` and the handler share one read)."""
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))


def status_code(status: int) -> str:
    """``503`` → ``SERVICE_UNAVAILABLE``: the code word most partners put in error bodies."""
    try:
        return HTTPStatus(status).phrase.upper().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "ERROR"


class Profile(Generic[D]):
    """Base of every partner profile; see the module docstring for what to override."""

    name: ClassVar[str]
    tiers: ClassVar[tuple[limits.Tier, ...]] = ()
    max_concurrent: ClassVar[int | None] = None

    def __init__(self, settings: ProfileSettings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime

    # -- HTTP -----------------------------------------------------------------------------

    def endpoints(self) -> Sequence[Endpoint[D]]:
        raise NotImplementedError

    def authenticate(self, request: Request, accounts: Mapping[str, Account[D]]) -> Account[D] | None:
        raise NotImplementedError

    def unauthorized(self, request: Request) -> Response:
        return self.error(401, "Missing, unknown or expired credentials")

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """The partner's error envelope; the default is ``{"error": {"code", "message"}}``."""
        body = orjson.dumps({"error": {"code": status_code(status), "message": message}})
        return Response(body, status, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return limits.headers(decision, self.tiers)

    # -- credentials ----------------------------------------------------------------------

    def credentials(self, n: int) -> tuple[str, str]:
        """Deterministic (account id, secret) of the n-th (1-based) account the CLI creates."""
        return f"{self.name}-acct-{n}", f"sim-secret-{n}"

    def revoke(self, account: Account[D]) -> int:
        return 0

    def issued_credentials(self) -> list[str]:
        return []

    # -- the dataset ----------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> D:
        raise NotImplementedError

    def describe(self, data: D) -> dict[str, object]:
        """Sizes and seed for ``GET /_sim/accounts``."""
        return {}

    def mutate(self, data: D, count: int, seed: int) -> dict[str, object]:
        """Insert, edit and delete about ``count`` records; answers a summary."""
        raise NotImplementedError

    def mutate_notify(self, data: D, count: int, seed: int) -> tuple[dict[str, object], list[bytes]]:
        """``mutate``, and the webhook bodies announcing its changes (none by default: a
        partner without webhooks)."""
        return self.mutate(data, count, seed), []

    def pending_notifications(self, data: D) -> list[bytes]:
        """Webhook bodies for changes the partner made on its own since the last call (a
        lock that set a code a while after it was asked); the sender polls it. None by
        default: a partner's changes come from ``mutate`` only."""
        return []

    def webhook_request(
        self, hook: WebhookHook, body: bytes, message_id: str, now: float
    ) -> tuple[str, dict[str, str]]:
        """The URL and headers of one attempt at delivering ``body`` (``message_id`` stays
        the same across retries; ``now`` is the wall clock)."""
        raise NotImplementedError(f"{self.name} sends no webhooks")

    def truth(self, data: D, kind: str | None) -> Iterable[bytes]:
        """NDJSON lines ``{"id", "payload", ...}`` of the live records the partner serves
        now, ``payload`` being the record exactly as the API renders it. ``kind`` is a
        canonical resource name (``properties``, ``reservations``: what partner-neutral
        tests ask for; a profile may accept its own names too) or None for all;
        ValueError for an unknown one."""
        raise NotImplementedError

    def version_truth(self, data: D, kind: str | None, version: str | None) -> Iterable[bytes]:
        """``truth`` as the connector's API ``version`` (one of ``PartnerInfo.versions``;
        None: the default) renders the records. A profile whose API versions render
        records alike keeps this; one whose versions differ overrides it (ValueError for
        a version it does not serve)."""
        return self.truth(data, kind)

    def authorization_code(self, account_id: str) -> str | None:
        """A one-time code for ``account_id``, as the partner's consent page hands it to an
        operator (``syncd demo`` authorizes with it); None for a partner without the
        authorization-code grant."""
        return None

    def config_credentials(self, account_id: str, secret: str) -> dict[str, str]:
        """An account's credentials as an integration configures them for this partner's
        connector (the daemon's ``credentials`` table); client credentials by default."""
        return {"client_id": account_id, "client_secret": secret}


def discover() -> dict[str, type[Profile[object]]]:
    """Every ``PROFILE`` exported by a subpackage of ``syncd.simulator.profiles``, by name.

    A subpackage without ``PROFILE`` (a dataset whose HTTP side is still to come) is skipped.
    """
    from syncd.simulator import profiles

    found: dict[str, type[Profile[object]]] = {}
    for module in pkgutil.iter_modules(profiles.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{profiles.__name__}.{module.name}")
        profile = getattr(package, "PROFILE", None)
        if isinstance(profile, type) and issubclass(profile, Profile):
            found[profile.name] = profile
    return dict(sorted(found.items()))
