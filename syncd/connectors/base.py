"""What every connector provides, and what the pipeline receives from it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from syncd.config import PartnerSchema, ResourceSettings
from syncd.store.types import JSON, RawRecord

if TYPE_CHECKING:
    from syncd import errors
    from syncd.connectors.webhooks import WebhookScheme
    from syncd.connectors.wiring import Wiring

# (HTTP status, the parsed JSON body or None) -> the error a response carrying a success
# status really is (HTTP 200 with ``{"success": false}``), or None when it is a success.
BodyCheck = Callable[[int, Any], "errors.PartnerError | None"]
# The version name of a partner that declares none.
DEFAULT_VERSION = "default"


@dataclass(frozen=True)
class Page:
    """Raw partner records of one response, each exactly the bytes the partner sent for it
    (stored verbatim), and the checkpoint reached after them.

    ``prenormalized`` is optional, for any connector: when its wire decoder reads a whole
    page more cheaply than record by record, each record's canonical values, aligned with
    ``records``, exactly what ``normalizer(resource)(record)`` would return; None for a
    record the pipeline must normalize itself (and so dead-letter if that fails).
    ``media_type`` names the records' format (``application/json``, ``application/xml``,
    ...); it is stored beside each record's bytes.

    ``merged_from`` is optional too: for a partner whose record ids can change (a merge),
    new id -> the id the record had before, for the records of this page that say so. The
    store then keeps one entity: the row under the old id takes the new id (or, if both
    exist, the old one is deleted as merged), and copies still sent under the old id land
    on the new one. Saying it again (an overlap re-read) changes nothing.

    ``awaits_commit``: the connector fetches nothing more until this page is committed
    (its ``committed`` hook called with this page's checkpoint): a queue that redelivers
    whatever is not acknowledged would hand the same messages over again. The pipeline
    ends the batch at this page instead of waiting for more."""

    records: list[RawRecord]
    checkpoint: dict[str, Any]
    prenormalized: list[tuple[Any, ...] | None] | None = None
    media_type: str = JSON
    merged_from: Mapping[str, str] | None = None
    awaits_commit: bool = False


@dataclass(frozen=True)
class ChildPage:
    """Every child record ``parents`` have now, of a child resource (``resources.Cascade``):
    a stored child of theirs that is not among ``records`` is gone. A parent the partner no
    longer has comes with no records. ``values``: each record's canonical values, aligned
    with ``records``, or the error that refused it (a dead letter): a child's values depend
    on its parent (its id, the record's position, the parent's timestamp), which the
    record's own bytes do not carry, so the connector computes them."""

    parents: list[str]
    records: list[RawRecord]
    values: list[tuple[Any, ...] | Exception]
    media_type: str = JSON


# (child resource, parent ids) -> pages of their children.
StreamChildren = Callable[[str, list[str]], AsyncGenerator[ChildPage, None]]


@dataclass(frozen=True)
class PartnerInfo:
    """A partner's documented facts and how to wire its driver.

    Each partner package exports one as ``PARTNER`` (``syncd.connectors.registry`` finds it
    there). Static data, importable without the network stack: ``connect`` imports the
    driver only when called.
    """

    name: str
    base_url: str
    token_url: str | None
    rate_limits: tuple[str, ...]
    max_concurrency: int
    page_size: int
    resources: frozenset[str]
    credential_keys: frozenset[str]
    # Token requests the partner allows per 24 h; we refuse locally beyond it.
    max_token_requests_per_day: int | None = None
    # Or per another window (requests, seconds), e.g. (30, 3600.0) for 30 an hour; set one
    # of the two (``token_cap``).
    max_token_requests: tuple[int, float] | None = None
    # Limits on the whole partner app (per IP or client id), shared by every integration
    # of the partner in a process; ``rate_limits``/``max_concurrency`` are per account.
    app_rate_limits: tuple[str, ...] = ()
    app_max_concurrency: int | None = None
    # Builds the driver of one integration from what the registry prepared; None for a
    # partner documented here but not wired yet.
    connect: Callable[[Wiring], Connector] | None = None
    # Other accepted credential sets, when the partner offers several ways in (an API key,
    # or OAuth client + refresh token). An integration configures exactly one set.
    other_credential_sets: tuple[frozenset[str], ...] = ()
    # Statuses meaning "this token is invalid": get a new one and resend once. Some partners
    # answer an expired token with 403.
    auth_statuses: frozenset[int] = frozenset({401})
    # A new token is refused until this long after issue; it is not used before then.
    token_warmup_s: float = 0.0
    # Errors under a success status; None (the common case) keeps success bodies unparsed.
    classify_body: BodyCheck | None = None
    # The API versions ``connect`` can speak (``Wiring.api_version`` names the one an
    # integration runs); the first is the default. A partner with one version keeps the
    # neutral name.
    versions: tuple[str, ...] = (DEFAULT_VERSION,)
    # How the partner's webhooks are authenticated and what their events name
    # (``syncd.connectors.webhooks``); None for a partner that sends none.
    webhooks: WebhookScheme | None = None
    # Its drivers push access codes for another integration's reservations
    # (``syncd.connectors.access``); its integrations then need a ``locks`` section.
    access_codes: bool = False

    # Whether the partner hands records over as a queue of messages it redelivers until they
    # are acknowledged (``Connector.committed``), rather than as a list that can be re-read:
    # a drained message is gone from the partner, so tests that re-read a list skip it.
    queue: bool = False

    def __post_init__(self) -> None:
        if not self.versions or len(set(self.versions)) != len(self.versions):
            raise ValueError(f"partner {self.name!r}: versions must be non-empty and distinct")
        if self.max_token_requests is not None and self.max_token_requests_per_day is not None:
            raise ValueError(f"partner {self.name!r}: one token cap, per day or per window")

    @property
    def token_cap(self) -> tuple[int, float] | None:
        """(token requests, per seconds) the partner allows, or None for no cap."""
        if self.max_token_requests is not None:
            return self.max_token_requests
        if self.max_token_requests_per_day is not None:
            return (self.max_token_requests_per_day, 86_400.0)
        return None

    @property
    def default_version(self) -> str:
        return self.versions[0]

    @property
    def credential_sets(self) -> tuple[frozenset[str], ...]:
        return (self.credential_keys, *self.other_credential_sets)

    @property
    def schema(self) -> PartnerSchema:
        return PartnerSchema(
            resources=self.resources,
            credential_sets=self.credential_sets,
            versions=self.versions,
            webhooks=self.webhooks is not None,
            webhook_secret_problem=self.webhooks.secret_problem if self.webhooks is not None else None,
            locks=self.access_codes,
        )


# raw record -> the canonical model's field values, in its field order (validated against
# it: models.canonical_values).
Normalizer = Callable[[RawRecord], tuple[Any, ...]]


class Connector(Protocol):
    """A partner driver bound to one integration (one partner account).

    Optionally also ``async committed(resource, checkpoint)``: see ``committed_hook``;
    ``stream_children(resource, parent_ids)`` for child resources: see ``children_of``; and
    ``async authorize(code)`` and ``authorization_url(redirect_uri, state, scope)`` for an
    authorization-code partner: see ``code_exchange``.
    """

    info: PartnerInfo

    def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        """Pages in the partner's update order, from ``checkpoint`` (None: from the start)."""
        ...

    def normalizer(self, resource: str) -> Normalizer:
        """raw record -> canonical values; raises a validation error (msgspec or pydantic)."""
        ...

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        """Best-effort id of a (possibly malformed) raw record, for dead letters."""
        ...

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        """Every id the partner lists now (deletion sweep), or None if not supported."""
        ...

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        """The record as the partner has it now, or None if it is gone (404)."""
        ...

    async def check_access(self) -> None:
        """One cheap authenticated request; raises the partner's error if it is refused."""
        ...

    async def rotate_secret(self, new_secret: str) -> None:
        """Switch this integration to a new client secret: tried, committed with the token
        it earned, verified by ``check_access``, rolled back if that fails."""
        ...


# (resource, checkpoint of the last page of a committed batch) -> None.
CommittedHook = Callable[[str, "dict[str, Any] | None"], Awaitable[None]]


def committed_hook(connector: Connector) -> CommittedHook | None:
    """The connector's optional ``committed(resource, checkpoint)``, or None (no-op).

    The pipeline awaits it after each batch's transaction commits: every page the
    connector streamed up to and including the one that carried ``checkpoint`` is then
    durable in PostgreSQL. Queue partners acknowledge their messages there, never
    earlier; pull partners need nothing. Batches on different write lanes commit in
    order, but their calls may overlap: acknowledge by what ``checkpoint`` names.
    """
    hook: CommittedHook | None = getattr(connector, "committed", None)
    return hook


def children_of(connector: Connector) -> StreamChildren | None:
    """The connector's optional ``stream_children(resource, parent_ids)``, or None (it offers
    no child resource).

    A child task (a parent's trigger fields changed: ``resources.Cascade``) calls it with the
    parents' ids; it yields ``ChildPage``s covering each of them. It goes through the
    integration's own client, so child requests share the integration's rate budget."""
    stream: StreamChildren | None = getattr(connector, "stream_children", None)
    return stream


# (one-time authorization code) -> None; raises AuthFailed when the partner refuses it.
CodeExchange = Callable[[str], Awaitable[None]]


def code_exchange(connector: Connector) -> CodeExchange | None:
    """The connector's optional ``authorize(code)``, or None (its partner needs no
    authorization code).

    ``syncd authorize`` calls it with the code an operator got from the partner's consent
    page: the code is exchanged once (never sent twice) for the integration's refresh
    token, stored encrypted with its access token; a refused code raises AuthFailed."""
    exchange: CodeExchange | None = getattr(connector, "authorize", None)
    return exchange


# (redirect URI, state, scope or None) -> the partner's consent page for this app.
ConsentUrl = Callable[[str, str, "str | None"], str]


def consent_url(connector: Connector) -> ConsentUrl | None:
    """The connector's optional ``authorization_url(redirect_uri, state, scope)``: where
    the operator consents and gets the one-time code (``syncd authorize --url``)."""
    url: ConsentUrl | None = getattr(connector, "authorization_url", None)
    return url
