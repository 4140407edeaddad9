"""TOML configuration -> frozen, validated settings.

Validation happens once, at start (or in ``syncd check-config``), and reports *every*
problem with its key path, so an operator fixes a file in one pass. Secrets are written
as ``${ENV_VAR}`` and resolved here; deep code never reads ``os.environ``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from syncd import errors
from syncd.http.tiers import parse_tier

DEFAULT_STATE_DIR = Path(".syncd")
DEFAULT_WORKER_CONCURRENCY = 8
DEFAULT_SHUTDOWN_GRACE_S = 30.0
DEFAULT_BATCH_SIZE = 5000
DEFAULT_SAFETY_FACTOR = 0.8
DEFAULT_OVERLAP_S = 30.0
DEFAULT_INTERVAL_S = 900.0

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SLUG = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DaemonSettings(_Frozen):
    state_dir: Path = DEFAULT_STATE_DIR
    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    worker_concurrency: int = Field(default=DEFAULT_WORKER_CONCURRENCY, ge=1, le=1024)
    shutdown_grace_s: float = Field(default=DEFAULT_SHUTDOWN_GRACE_S, ge=0)
    scheduler_tick_s: float = Field(default=1.0, gt=0, le=60)
    retry_failed_after_s: float = Field(default=60.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @model_validator(mode="after")
    def _shard_in_range(self) -> DaemonSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} must be < shard_count {self.shard_count}")
        return self


class DatabaseSettings(_Frozen):
    url: SecretStr | None = None
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000)
    pipeline_depth: int = Field(default=2, ge=1, le=32)
    command_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// URL")
        return value


class WebSettings(_Frozen):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class PartnerSettings(_Frozen):
    """Per-partner overrides; unset fields take the connector's documented defaults."""

    base_url: AnyHttpUrl | None = None
    token_url: AnyHttpUrl | None = None
    rate_limits: tuple[str, ...] | None = None
    safety_factor: float = Field(default=DEFAULT_SAFETY_FACTOR, gt=0, le=1)
    max_concurrency: int | None = Field(default=None, ge=1)
    page_size: int | None = Field(default=None, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    request_deadline_s: float = Field(default=120.0, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    token_refresh_buffer_s: float = Field(default=300.0, ge=0)

    @field_validator("rate_limits")
    @classmethod
    def _tiers_parse(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tier in value or ():
            parse_tier(tier)
        return value


class ResourceSettings(_Frozen):
    enabled: bool = True
    interval_s: float = Field(default=DEFAULT_INTERVAL_S, gt=0)
    jitter: float = Field(default=0.1, ge=0, le=1, description="fraction of the interval")
    overlap_s: float = Field(default=DEFAULT_OVERLAP_S, ge=0)
    deletion_sweep_interval_s: float | None = Field(default=86_400.0, ge=0)


class IntegrationSettings(_Frozen):
    id: Annotated[str, Field(pattern=_SLUG)]
    partner: str
    enabled: bool = True
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    resources: dict[str, ResourceSettings] = Field(default_factory=dict)


class Settings(_Frozen):
    daemon: DaemonSettings = DaemonSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    partners: dict[str, PartnerSettings] = Field(default_factory=dict)
    integrations: tuple[IntegrationSettings, ...] = ()

    def partner(self, name: str) -> PartnerSettings:
        return self.partners.get(name) or PartnerSettings()


@dataclass(frozen=True)
class PartnerSchema:
    """What config validation needs to know about a partner (declared by its connector)."""

    resources: frozenset[str]
    credential_keys: frozenset[str]


def load_settings(
    path: Path, environ: Mapping[str, str], partners: Mapping[str, PartnerSchema]
) -> Settings:
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
    problems: list[tuple[str, str]] = []
    resolved = _substitute(raw, environ, "", problems)
    try:
        settings = Settings.model_validate(resolved)
    except ValidationError as exc:
        problems.extend((_loc_path(err["loc"]), err["msg"]) for err in exc.errors())
        raise errors.ConfigError(problems) from None
    problems.extend(_cross_checks(settings, partners))
    if problems:
        raise errors.ConfigError(problems)
    return settings


def _cross_checks(settings: Settings, partners: Mapping[str, PartnerSchema]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name in settings.partners:
        if name not in partners:
            problems.append((f"partners.{name}", f"unknown partner (known: {', '.join(sorted(partners))})"))
    seen: set[str] = set()
    for i, integ in enumerate(settings.integrations):
        where = f"integrations[{i}]"
        if integ.id in seen:
            problems.append((f"{where}.id", f"duplicate integration id {integ.id!r}"))
        seen.add(integ.id)
        schema = partners.get(integ.partner)
        if schema is None:
            problems.append((f"{where}.partner", f"unknown partner {integ.partner!r}"))
            continue
        for key in sorted(schema.credential_keys - integ.credentials.keys()):
            problems.append((f"{where}.credentials.{key}", "required"))
        for key in sorted(integ.credentials.keys() - schema.credential_keys):
            problems.append((f"{where}.credentials.{key}", "not a credential of this partner"))
        for res in sorted(integ.resources.keys() - schema.resources):
            problems.append(
                (f"{where}.resources.{res}", f"unknown resource (known: {', '.join(sorted(schema.resources))})")
            )
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
