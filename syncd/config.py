"""TOML configuration -> frozen, validated settings.

Validation happens once, at start (or in ``syncd check-config``), and reports *every*
problem with its key path, so an operator fixes a file in one pass. Secrets are written
as ``${ENV_VAR}`` and resolved here; deep code never reads ``os.environ``.
"""

from __future__ import annotations

import re
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from syncd import errors
from syncd.http import egress
from syncd.http.tiers import parse_tier

DEFAULT_STATE_DIR = Path(".syncd")
DEFAULT_WORKER_CONCURRENCY = 8
DEFAULT_SHUTDOWN_GRACE_S = 30.0
DEFAULT_BATCH_SIZE = 2500
DEFAULT_SAFETY_FACTOR = 0.8
DEFAULT_OVERLAP_S = 30.0
DEFAULT_INTERVAL_S = 900.0
DATABASE_URL_ENV = "SYNCD_DATABASE_URL"
SECRET_KEYS_ENV = "SYNCD_SECRET_KEYS"
MIN_ADMIN_TOKEN_CHARS = 32

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SLUG = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


# "${VAR:-}" resolves to "" when the variable is unset: that means "not set", not a bad value.
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(lambda value: None if value == "" else value)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DaemonSettings(_Frozen):
    state_dir: Path = DEFAULT_STATE_DIR
    shard_count: int = Field(default=1, ge=1)
    shard_index: int = Field(default=0, ge=0)
    worker_concurrency: int = Field(default=DEFAULT_WORKER_CONCURRENCY, ge=1, le=1024)
    shutdown_grace_s: float = Field(default=DEFAULT_SHUTDOWN_GRACE_S, ge=0)
    scheduler_tick_s: float = Field(default=1.0, gt=0, le=60)
    retry_failed_after_s: float = Field(default=60.0, ge=0)
    # Slots beyond worker_concurrency that only urgent tasks (a user's sync-now, webhooks)
    # may take: they start at once even while every other slot runs a long sync.
    urgent_workers: int = Field(default=2, ge=0, le=256)
    # A claimed task's lease, renewed every third of it; a lapsed lease is reclaimed.
    task_lease_s: float = Field(default=30.0, ge=1, le=3600)
    # Finished tasks stay this long for `syncd tasks` and /admin/tasks.
    task_retention_s: float = Field(default=86_400.0, ge=0)
    # Targeted tasks waiting per integration beyond which new ones fold into one sync.
    max_pending_tasks: int = Field(default=10_000, ge=1)
    # Schedules late by more than their interval (the workers were down) start spread
    # over at most this many seconds, not all in the same one.
    recovery_spread_s: float = Field(default=300.0, ge=0)
    # /readyz fails when tasks are due and none was claimed for this long.
    claim_stall_s: float = Field(default=600.0, gt=0)
    # A due task gains one priority band per this many seconds of waiting, up to the
    # webhook band (never a user's): scheduled syncs and child tasks are not starved by a
    # steady stream of webhook fetches.
    priority_aging_s: float = Field(default=30.0, gt=0)
    # Webhook deliveries are kept this long: a redelivery within it is recognised as one
    # (partners retry for hours, Svix senders for more than a day).
    webhook_retention_s: float = Field(default=3 * 86_400.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("shard_index")
    @classmethod
    def _shard_in_range(cls, value: int, info: ValidationInfo) -> int:
        # A field validator (not a model one) so it is reported alongside other field errors.
        count = info.data.get("shard_count")
        if isinstance(count, int) and value >= count:
            raise ValueError(f"must be < shard_count ({count})")
        return value


class DatabaseSettings(_Frozen):
    url: OptionalSecret = None
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000)
    pipeline_depth: int = Field(default=0, ge=0, le=32)
    write_lanes: int = Field(default=2, ge=1, le=4)
    command_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// URL")
        return value


class SecretsSettings(_Frozen):
    """Keys that encrypt tokens and secrets at rest (Fernet). The first key encrypts, all
    decrypt: prepend a new key, run ``syncd rotate-keys``, then drop the old one."""

    keys: tuple[SecretStr, ...] = ()
    # Without keys: a key file created once under state_dir (embedded default, demo).
    key_file: Path | None = None

    @field_validator("keys", mode="before")
    @classmethod
    def _drop_empty(cls, value: Any) -> Any:
        # "${SYNCD_SECRET_KEY:-}" resolves to "" when unset: that means "no key", not a bad one.
        return [k for k in value if k != ""] if isinstance(value, list | tuple) else value

    @field_validator("keys")
    @classmethod
    def _fernet_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        import base64
        import binascii

        for key in value:
            try:
                if len(base64.urlsafe_b64decode(key.get_secret_value())) != 32:
                    raise ValueError
            except (ValueError, binascii.Error):
                raise ValueError("each key must be a Fernet key (32 url-safe base64 bytes)") from None
        return value


class WebSettings(_Frozen):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # A webhook body larger than this is refused (413) while it is read.
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Signed timestamps further than this from our clock, either way, are replays (401).
    webhook_tolerance_s: float = Field(default=300.0, gt=0, le=3600)
    # The bearer token of /admin/*; None (or "${VAR:-}" unset) turns the admin routes off.
    admin_token: OptionalSecret = None

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Short tokens are guessable over HTTP; `openssl rand -hex 32` gives 64 characters.
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters (openssl rand -hex 32)")
        return value


class BreakerSettings(_Frozen):
    """Circuit breakers of one partner: one per integration, one for the whole partner."""

    # Open after this many transient failures (5xx, timeouts, resets) within window_s ...
    failure_threshold: int = Field(default=10, ge=1)
    # ... that are also at least this share of the calls (sporadic errors keep it closed).
    failure_ratio: float = Field(default=0.6, gt=0, le=1)
    window_s: float = Field(default=60.0, gt=0)
    # Failing fast this long, then half-open: this many probe requests, each with a timeout.
    cooldown_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=1, ge=1)
    probe_timeout_s: float = Field(default=15.0, gt=0)
    # The partner-wide breaker trips on an outage of the partner, not of one account.
    partner_failure_threshold: int = Field(default=30, ge=1)


class AdaptiveSettings(_Frozen):
    """How a rate budget reacts to 429s the documented limits did not predict (AIMD)."""

    decrease: float = Field(default=0.5, gt=0, lt=1, description="rate *= decrease on a 429 episode")
    increase: float = Field(default=0.1, gt=0, le=1, description="rate += increase per quiet_s")
    quiet_s: float = Field(default=30.0, gt=0)
    floor: float = Field(default=0.05, gt=0, le=1, description="never below this share")


class RolloutSettings(_Frozen):
    """``percent`` of the partner's unpinned integrations run API ``version``
    (``syncd.connectors.versions``: a stable share that only grows as the percentage does)."""

    version: str
    percent: float = Field(ge=0, le=100)


class PartnerSettings(_Frozen):
    """Per-partner overrides; unset fields take the connector's documented defaults."""

    base_url: AnyHttpUrl | None = None
    token_url: AnyHttpUrl | None = None
    rate_limits: tuple[str, ...] | None = None
    # The partner app's limits (per IP or client id), shared by its integrations in a process.
    app_rate_limits: tuple[str, ...] | None = None
    safety_factor: float = Field(default=DEFAULT_SAFETY_FACTOR, gt=0, le=1)
    max_concurrency: int | None = Field(default=None, ge=1)
    page_size: int | None = Field(default=None, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    request_deadline_s: float = Field(default=120.0, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    token_refresh_buffer_s: float = Field(default=300.0, ge=0)
    # The way out (syncd.http.egress): a proxy for this partner's requests (else the
    # environment's https_proxy / http_proxy / all_proxy; no_proxy applies to both), a PEM
    # bundle of the CAs to trust instead of the default store, and whether the
    # environment's proxy and trust-store variables count at all.
    proxy: OptionalSecret = None
    ca_bundle: Path | None = None
    trust_env: bool = True
    # What moves the bytes under httpcore: syncd's asyncio backend, or httpcore's own
    # (anyio), should a network ever disagree with ours.
    network_backend: Literal["asyncio", "anyio"] = "asyncio"
    breaker: BreakerSettings = BreakerSettings()
    adaptive: AdaptiveSettings = AdaptiveSettings()
    # Moves a share of integrations to another of the partner's API versions.
    rollout: RolloutSettings | None = None
    # Queue partners (``PartnerInfo.queue``): the least time between two polls that found
    # the queue empty, and the pause after an acknowledgement before the next poll. None:
    # the partner's documented pace (tests and demos shorten it).
    queue_empty_poll_s: float | None = Field(default=None, ge=0)
    queue_ack_pause_s: float | None = Field(default=None, ge=0)

    @field_validator("rate_limits", "app_rate_limits")
    @classmethod
    def _tiers_parse(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tier in value or ():
            parse_tier(tier)
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # The reason only: the URL may carry the proxy's password.
            reason = proxy_problem(value.get_secret_value())
            if reason:
                raise ValueError(reason)
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _loadable_bundle(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except FileNotFoundError:
                raise ValueError(f"{value}: no such file") from None
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"{value}: not a PEM bundle of CA certificates ({exc})") from None
        return value


def proxy_problem(url: str) -> str | None:
    """Why a proxy URL cannot be used, or None."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url  # "host:port" means an HTTP proxy, as for curl
    if scheme.lower() not in egress.PROXY_SCHEMES:
        return f"a proxy must be an http:// or https:// URL, not {scheme}://"
    if not rest.rpartition("@")[2].split("/")[0]:
        return "a proxy URL needs a host"
    return None


class ResourceSettings(_Frozen):
    enabled: bool = True
    interval_s: float = Field(default=DEFAULT_INTERVAL_S, gt=0)
    jitter: float = Field(default=0.1, ge=0, le=1, description="fraction of the interval")
    overlap_s: float = Field(default=DEFAULT_OVERLAP_S, ge=0)
    deletion_sweep: bool = True
    deletion_sweep_interval_s: float = Field(default=86_400.0, ge=0)
    # For partners whose update-time filter can miss changes: a connector that honours it
    # walks everything again this often (None: never; the first run always does).
    full_resync_interval_s: float | None = Field(default=None, gt=0)
    # A run that takes longer stops (keeping what it committed) and is retried later.
    run_deadline_s: float = Field(default=6 * 3600.0, gt=0)
    # Date-windowed resources (a listing's calendar): the days fetched each run, from
    # ``window_start`` (None: today, UTC; a fixed date for backfills and replays).
    window_days: int = Field(default=365, ge=1, le=3 * 366)
    window_start: date | None = None


class LockSettings(_Frozen):
    """A lock integration's pushes (``syncd.engine.access``): the integration whose
    reservations it follows, which listing's door is which lock device, and how a stay
    becomes an access code's validity."""

    # The source integration's id (any partner that syncs reservations).
    follows: Annotated[str, Field(pattern=_SLUG)]
    # Listing external id (in the source integration) -> lock device id (at the lock partner).
    devices: dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] = Field(
        min_length=1
    )
    # Reservations in these canonical statuses get a code; any other status revokes it.
    statuses: tuple[str, ...] = ("confirmed", "checked_in", "checked_out")
    # A stay known by its dates only starts and ends at these local times of the listing's
    # time zone (else ``timezone``); a stay with check-in/out times uses them as they are.
    check_in_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "15:00"
    check_out_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "11:00"
    timezone: str = "UTC"
    # A code the lock has not confirmed is asked about again this often, and given up as
    # failed (a dead letter) after settle_timeout_s.
    settle_poll_s: float = Field(default=5.0, gt=0, le=3600)
    settle_timeout_s: float = Field(default=900.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from syncd.models import ReservationStatus

        unknown = sorted(set(value) - {s.value for s in ReservationStatus})
        if unknown or not value:
            known = ", ".join(s.value for s in ReservationStatus)
            raise ValueError(
                f"unknown statuses {unknown} (known: {known})" if unknown else "must not be empty"
            )
        return value


class IntegrationSettings(_Frozen):
    id: Annotated[str, Field(pattern=_SLUG)]
    partner: str
    enabled: bool = True
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    resources: dict[str, ResourceSettings] = Field(default_factory=dict)
    # One of the partner's API versions, whatever its rollout says; None: the rollout decides.
    api_version: str | None = None
    # What authenticates this integration's webhooks, in its partner's scheme (a signing
    # secret, "login:password", a URL token); several during a rotation. None configured:
    # its webhook route answers 404.
    webhook_secrets: tuple[SecretStr, ...] = ()
    # For a lock partner's integration: what it pushes (required there, refused elsewhere).
    locks: LockSettings | None = None

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _drop_unset(cls, value: Any) -> Any:
        # "${HOOK_SECRET:-}" resolves to "" when unset: that means "no secret", not an empty one.
        return [v for v in value if v != ""] if isinstance(value, list | tuple) else value


class Settings(_Frozen):
    daemon: DaemonSettings = DaemonSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    secrets: SecretsSettings = SecretsSettings()
    partners: dict[str, PartnerSettings] = Field(default_factory=dict)
    integrations: tuple[IntegrationSettings, ...] = ()
    # The proxy and trust-store variables of the environment the file was loaded in
    # (``egress.ENVIRON_KEYS``); never from the file itself.
    _egress_environ: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def egress_environ(self) -> Mapping[str, str]:
        return self._egress_environ

    def partner(self, name: str) -> PartnerSettings:
        return self.partners.get(name) or PartnerSettings()


@dataclass(frozen=True)
class PartnerSchema:
    """What config validation needs to know about a partner (declared by its connector)."""

    resources: frozenset[str]
    # The accepted credential sets; an integration configures exactly one of them.
    credential_sets: tuple[frozenset[str], ...]
    # The API versions its connector speaks; the first is the default.
    versions: tuple[str, ...] = ()
    # Whether it sends webhooks, and why a configured webhook secret cannot work.
    webhooks: bool = False
    webhook_secret_problem: Callable[[str], str | None] | None = None
    # Whether its integrations push access codes (and so need a ``locks`` section).
    locks: bool = False


def load_settings(path: Path, environ: Mapping[str, str], partners: Mapping[str, PartnerSchema]) -> Settings:
    """Read, substitute and validate ``path``; raise ``ConfigError`` listing every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.ConfigError([(str(path), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.ConfigError([(str(path), f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigError([(str(path), f"not valid TOML: {exc}")]) from None
    return parse_settings(raw, environ, partners)


def parse_settings(
    raw: Mapping[str, Any], environ: Mapping[str, str], partners: Mapping[str, PartnerSchema]
) -> Settings:
    """Validate a parsed TOML document. ``SYNCD_DATABASE_URL`` fills an unset database URL."""
    problems: list[tuple[str, str]] = []
    resolved = _substitute(raw, environ, "", problems)
    database = resolved.setdefault("database", {})
    if isinstance(database, dict) and not database.get("url") and environ.get(DATABASE_URL_ENV):
        database["url"] = environ[DATABASE_URL_ENV]
    secrets = resolved.setdefault("secrets", {})
    if isinstance(secrets, dict) and not secrets.get("keys") and environ.get(SECRET_KEYS_ENV):
        secrets["keys"] = [k.strip() for k in environ[SECRET_KEYS_ENV].split(",") if k.strip()]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(resolved)
    except ValidationError as exc:
        reported = {path for path, _ in problems}
        problems.extend(
            (path, err["msg"]) for err in exc.errors() if (path := _loc_path(err["loc"])) not in reported
        )
    problems.extend(_cross_checks(resolved, partners))
    network = {k: environ[k] for k in egress.ENVIRON_KEYS if environ.get(k)}
    problems.extend(_environ_checks(network))
    if problems or settings is None:
        raise errors.ConfigError(problems)
    settings._egress_environ = network
    return settings


def _environ_checks(network: Mapping[str, str]) -> list[tuple[str, str]]:
    """A proxy or CA variable the daemon would fail on later is a configuration problem now."""
    problems: list[tuple[str, str]] = []
    for key, value in network.items():
        if key.lower().endswith("_proxy") and key.lower() != "no_proxy":
            reason = proxy_problem(value)
            if reason:
                problems.append((f"environment {key}", reason))
    for key, check in (("SSL_CERT_FILE", Path.is_file), ("SSL_CERT_DIR", Path.is_dir)):
        if key in network and not check(Path(network[key])):
            problems.append((f"environment {key}", f"{network[key]}: not found"))
    return problems


def _cross_checks(raw: Any, partners: Mapping[str, PartnerSchema]) -> list[tuple[str, str]]:
    """Checks that need the partner catalogue. They read the raw document, tolerating bad
    shapes (those are the model's to report), so they run even when validation failed."""
    problems: list[tuple[str, str]] = []
    known = ", ".join(sorted(partners))
    configured = raw.get("partners") if isinstance(raw, Mapping) else None
    for name, section in configured.items() if isinstance(configured, Mapping) else ():
        if name not in partners:
            problems.append((f"partners.{name}", f"unknown partner (known: {known})"))
            continue
        rollout = section.get("rollout") if isinstance(section, Mapping) else None
        if isinstance(rollout, Mapping):
            where = f"partners.{name}.rollout.version"
            problems.extend(_version_check(where, rollout.get("version"), partners[name]))
    integrations = raw.get("integrations") if isinstance(raw, Mapping) else None
    problems.extend(_lock_checks(integrations if isinstance(integrations, list) else [], partners))
    seen: set[str] = set()
    for i, integ in enumerate(integrations if isinstance(integrations, list) else ()):
        if not isinstance(integ, Mapping):
            continue
        where = f"integrations[{i}]"
        ident = integ.get("id")
        if isinstance(ident, str):
            if ident in seen:
                problems.append((f"{where}.id", f"duplicate integration id {ident!r}"))
            seen.add(ident)
        schema = partners.get(str(integ.get("partner")))
        if schema is None:
            if "partner" in integ:
                problems.append(
                    (f"{where}.partner", f"unknown partner {integ['partner']!r} (known: {known})")
                )
            continue
        problems.extend(_version_check(f"{where}.api_version", integ.get("api_version"), schema))
        problems.extend(_webhook_checks(f"{where}.webhook_secrets", integ.get("webhook_secrets"), schema))
        creds = integ.get("credentials")
        problems.extend(_credential_checks(f"{where}.credentials", creds, schema.credential_sets))
        resources = integ.get("resources")
        for res in sorted((resources.keys() if isinstance(resources, Mapping) else set()) - schema.resources):
            problems.append(
                (
                    f"{where}.resources.{res}",
                    f"unknown resource (known: {', '.join(sorted(schema.resources))})",
                )
            )
    return problems


def _lock_checks(integrations: list[Any], partners: Mapping[str, PartnerSchema]) -> list[tuple[str, str]]:
    """A lock partner's integration needs ``locks`` naming another configured integration
    that syncs reservations; no other integration may have one."""
    problems: list[tuple[str, str]] = []
    by_id = {i.get("id"): i for i in integrations if isinstance(i, Mapping)}
    for n, integ in enumerate(integrations):
        if not isinstance(integ, Mapping) or str(integ.get("partner")) not in partners:
            continue
        where = f"integrations[{n}].locks"
        locks = integ.get("locks")
        if not partners[str(integ["partner"])].locks:
            if locks is not None:
                problems.append((where, "this partner pushes no access codes"))
            continue
        if not isinstance(locks, Mapping):
            if locks is None:
                problems.append((where, "required: the integration it follows and its devices"))
            continue
        follows = locks.get("follows")
        if not isinstance(follows, str):
            continue  # the model reports it
        source = by_id.get(follows)
        if follows == integ.get("id"):
            problems.append((f"{where}.follows", "an integration cannot follow itself"))
        elif not isinstance(source, Mapping):
            problems.append((f"{where}.follows", f"no integration {follows!r} is configured"))
        else:
            schema = partners.get(str(source.get("partner")))
            resources = source.get("resources")
            if schema is not None and schema.locks:
                problems.append((f"{where}.follows", f"{follows!r} is a lock integration, not a source"))
            elif isinstance(resources, Mapping) and "reservations" not in resources:
                problems.append((f"{where}.follows", f"{follows!r} does not sync reservations"))
    return problems


def _webhook_checks(where: str, secrets: Any, schema: PartnerSchema) -> list[tuple[str, str]]:
    """Webhook secrets for a partner that sends no webhooks, or that its scheme cannot use
    (reported by position: the value is a secret)."""
    if not isinstance(secrets, list | tuple) or not [s for s in secrets if s != ""]:
        return []
    if not schema.webhooks:
        return [(where, "this partner sends no webhooks")]
    check = schema.webhook_secret_problem
    if check is None:
        return []
    return [
        (f"{where}[{i}]", problem)
        for i, secret in enumerate(secrets)
        if isinstance(secret, str) and secret and (problem := check(secret)) is not None
    ]


def _version_check(where: str, version: Any, schema: PartnerSchema) -> list[tuple[str, str]]:
    """A pinned or rolled-out API version the partner's connector does not speak."""
    if not isinstance(version, str) or version in schema.versions:
        return []  # absent (no pin), or not a string (the model reports that)
    return [(where, f"unknown API version {version!r} (known: {', '.join(schema.versions)})")]


def _credential_checks(where: str, creds: Any, sets: tuple[frozenset[str], ...]) -> list[tuple[str, str]]:
    """Problems with one integration's credentials: exactly one accepted set, no more, no
    less. Measured against the set it is closest to (most keys in common, then the first)."""
    given = frozenset(creds.keys() if isinstance(creds, Mapping) else ())
    if given in sets or not sets:
        return []
    closest = max(sets, key=lambda s: len(s & given))
    known = frozenset().union(*sets)
    choices = " | ".join("{" + ", ".join(sorted(s)) + "}" for s in sets)
    problems = []
    for key in sorted(closest - given):
        note = "" if len(sets) == 1 else f" (credential sets: {choices})"
        problems.append((f"{where}.{key}", f"required{note}"))
    for key in sorted(given - closest):
        if key in known:
            problems.append((f"{where}.{key}", f"belongs to another credential set (one of: {choices})"))
        else:
            problems.append((f"{where}.{key}", "not a credential of this partner"))
    return problems


def _substitute(node: Any, environ: Mapping[str, str], path: str, problems: list[tuple[str, str]]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string, recording missing variables."""
    if isinstance(node, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(repl, node)
    if isinstance(node, Mapping):
        return {k: _substitute(v, environ, f"{path}.{k}" if path else k, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, environ, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    return node


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"
