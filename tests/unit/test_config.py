"""Configuration: every problem reported with its key path; secrets stay secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncd import errors
from syncd.config import PartnerSchema, PartnerSettings, ResourceSettings, load_settings, parse_settings
from syncd.connectors import registry

GOOD = """
[daemon]
shard_count = 2
[partners.guesty]
base_url = "http://127.0.0.1:9/v1"
rate_limits = ["15/s", "120/min"]
[[integrations]]
id = "acme"
partner = "guesty"
credentials = { client_id = "cid", client_secret = "${ACME_SECRET}" }
resources.properties = { interval_s = 60 }
"""

BAD = """
[daemon]
shard_index = 3
shard_count = 2
worker_concurency = 4
[database]
url = "mysql://nope"
[partners.guesty]
rate_limits = ["15 per second"]
breaker = { failure_ratio = 2, cooldown_s = 0 }
adaptive = { decrease = 1.5 }
[partners.nosuch]
[[integrations]]
id = "Acme Corp"
partner = "guesty"
credentials = { client_id = "cid" }
resources.properties = { interval_s = -1 }
resources.payouts = {}
[[integrations]]
id = "b"
partner = "hotelx"
[[integrations]]
id = "c"
partner = "guesty"
credentials = { client_id = "cid", client_secret = "${MISSING_SECRET}" }
[[integrations]]
id = "c"
partner = "guesty"
credentials = { client_id = "cid", client_secret = "s" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return path


def test_good_config_resolves_secrets_without_exposing_them(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {"ACME_SECRET": "s3cr3t-value"}, registry.schemas())
    integ = settings.integrations[0]
    assert integ.credentials["client_secret"].get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings)
    assert settings.partner("guesty").rate_limits == ("15/s", "120/min")
    with pytest.raises(Exception):  # noqa: B017 - frozen: any attempt to mutate fails
        settings.daemon.shard_count = 3  # type: ignore[misc]


def test_database_url_from_environment_when_unset(tmp_path: Path) -> None:
    env = {"ACME_SECRET": "x", "SYNCD_DATABASE_URL": "postgresql://u@localhost/db"}
    settings = load_settings(write(tmp_path, GOOD), env, registry.schemas())
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == "postgresql://u@localhost/db"


def test_bad_config_lists_every_problem_with_its_key_path(tmp_path: Path) -> None:
    # Errors from several validation stages: the loader reports what it can at once.
    with pytest.raises(errors.ConfigError) as info:
        load_settings(write(tmp_path, BAD), {}, registry.schemas())
    paths = {path for path, _ in info.value.problems}
    assert {
        "daemon.shard_index",
        "daemon.worker_concurency",
        "database.url",
        "partners.guesty.rate_limits",
        "partners.guesty.breaker.failure_ratio",
        "partners.guesty.breaker.cooldown_s",
        "partners.guesty.adaptive.decrease",
        "integrations[0].id",
        "integrations[0].resources.properties.interval_s",
        "integrations[2].credentials.client_secret",
    } <= paths
    reasons = dict(info.value.problems)
    assert "MISSING_SECRET" in reasons["integrations[2].credentials.client_secret"]
    assert reasons["daemon.shard_index"].endswith("must be < shard_count (2)")
    # Catalogue checks run even though the document also had shape errors.
    known = ", ".join(sorted(registry.schemas()))
    assert ("integrations[1].partner", f"unknown partner 'hotelx' (known: {known})") in info.value.problems


def test_cross_checks_name_unknown_partner_resource_credential_and_duplicates(tmp_path: Path) -> None:
    text = BAD.replace("shard_index = 3", "shard_index = 0").replace("worker_concurency = 4", "")
    text = text.replace('url = "mysql://nope"', "").replace('rate_limits = ["15 per second"]', "")
    text = text.replace('id = "Acme Corp"', 'id = "a"').replace("interval_s = -1", "interval_s = 5")
    with pytest.raises(errors.ConfigError) as info:
        load_settings(write(tmp_path, text), {"MISSING_SECRET": "x"}, registry.schemas())
    known = ", ".join(sorted(registry.schemas()))
    assert set(info.value.problems) >= {
        ("partners.nosuch", f"unknown partner (known: {known})"),
        ("integrations[0].credentials.client_secret", "required"),
        ("integrations[0].resources.payouts", "unknown resource (known: photos, properties, reservations)"),
        ("integrations[1].partner", f"unknown partner 'hotelx' (known: {known})"),
        ("integrations[3].id", "duplicate integration id 'c'"),
    }


# A partner offering two ways in: an API key, or an OAuth client with its refresh token.
TWO_WAYS_IN = {
    "keyed": PartnerSchema(
        resources=frozenset({"reservations"}),
        credential_sets=(frozenset({"api_key"}), frozenset({"client_id", "client_secret", "refresh_token"})),
    )
}


def _integration(credentials: dict[str, str]) -> dict[str, object]:
    return {"integrations": [{"id": "a", "partner": "keyed", "credentials": credentials}]}


@pytest.mark.parametrize(
    "credentials", [{"api_key": "k"}, {"client_id": "c", "client_secret": "s", "refresh_token": "r"}]
)
def test_any_one_credential_set_of_the_partner_is_accepted(credentials: dict[str, str]) -> None:
    settings = parse_settings(_integration(credentials), {}, TWO_WAYS_IN)
    assert set(settings.integrations[0].credentials) == set(credentials)


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({}, {("integrations[0].credentials.api_key", "required")}),
        (
            {"client_id": "c", "client_secret": "s"},
            {("integrations[0].credentials.refresh_token", "required")},
        ),
        (
            {"api_key": "k", "refresh_token": "r"},
            {("integrations[0].credentials.refresh_token", "belongs to another credential set")},
        ),
        (
            {"api_key": "k", "token": "t"},
            {("integrations[0].credentials.token", "not a credential of this partner")},
        ),
    ],
)
def test_a_bad_credential_set_is_reported_with_its_key_path(
    credentials: dict[str, str], expected: set[tuple[str, str]]
) -> None:
    with pytest.raises(errors.ConfigError) as info:
        parse_settings(_integration(credentials), {}, TWO_WAYS_IN)
    assert {(path, reason.split(" (")[0]) for path, reason in info.value.problems} == expected


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", {}, registry.schemas())
    with pytest.raises(errors.ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[daemon\nx=1"), {}, registry.schemas())


@pytest.mark.parametrize("command", [["check-config"], ["run", "--once", "--config"]])
def test_cli_exits_2_naming_the_key_paths(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", *command, str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "integrations[0].resources.properties.interval_s" in proc.stderr
    assert "daemon.worker_concurency" in proc.stderr


def test_shipped_config_files_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "config"
    env = {"ACME_GUESTY_CLIENT_ID": "x", "ACME_GUESTY_CLIENT_SECRET": "y"}
    for name in ("syncd.example.toml", "demo.toml"):
        load_settings(root / name, env, registry.schemas())


def test_secret_keys_must_be_fernet_keys_and_empty_means_none(tmp_path: Path) -> None:
    base = GOOD + '[secrets]\nkeys = ["${K1:-}", "${K2:-}"]\n'
    settings = load_settings(write(tmp_path, base), {"ACME_SECRET": "x"}, registry.schemas())
    assert settings.secrets.keys == ()
    with pytest.raises(errors.ConfigError) as info:
        load_settings(write(tmp_path, base), {"ACME_SECRET": "x", "K1": "not-a-key"}, registry.schemas())
    assert info.value.problems[0][0] == "secrets.keys"
    good = "v" * 43 + "="
    settings = load_settings(write(tmp_path, base), {"ACME_SECRET": "x", "K2": good}, registry.schemas())
    assert [k.get_secret_value() for k in settings.secrets.keys] == [good]
    assert good not in repr(settings)


def test_example_config_documents_the_real_defaults() -> None:
    """Every literal value in syncd.example.toml is what syncd uses when the key is absent:
    the file an operator copies must not disagree with the code."""
    import tomllib

    from syncd.config import Settings
    from syncd.connectors import guesty

    example = tomllib.loads((Path(__file__).resolve().parents[2] / "config/syncd.example.toml").read_text())
    defaults = Settings.model_validate({}).model_dump(mode="json")
    info = guesty.PARTNER
    documented: dict[str, object] = {
        "base_url": info.base_url,
        "token_url": info.token_url,
        "page_size": info.page_size,
    }
    documented |= {"rate_limits": list(info.rate_limits), "max_concurrency": info.max_concurrency}
    partner_defaults = PartnerSettings().model_dump(mode="json") | documented

    def compare(section: dict[str, object], expected: dict[str, object], path: str) -> list[str]:
        wrong = []
        for key, value in section.items():
            if isinstance(value, dict):
                wrong += compare(value, expected[key], f"{path}.{key}")  # type: ignore[arg-type]
            elif not (isinstance(value, str) and "${" in value) and expected[key] != value:
                wrong.append(f"{path}.{key}: example {value!r}, default {expected[key]!r}")
        return wrong

    problems = []
    for name in ("daemon", "database", "web"):
        problems += compare(example[name], defaults[name], name)
    problems += compare(example["partners"]["guesty"], partner_defaults, "partners.guesty")
    resource = ResourceSettings().model_dump(mode="json")
    for name, settings in example["integrations"][0]["resources"].items():
        problems += compare({k: v for k, v in settings.items() if k != "interval_s"}, resource, name)
    assert problems == []


def test_an_unreachable_database_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    config = write(tmp_path, f'[database]\nurl = "postgresql://syncd@127.0.0.1:{port}/syncd"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--config", str(config)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("syncd: StoreUnavailable:") and "Traceback" not in proc.stderr


def test_proxy_and_ca_bundle_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    bad_pem = tmp_path / "not-a-ca.pem"
    bad_pem.write_text("hello")
    text = GOOD.replace(
        'rate_limits = ["15/s", "120/min"]',
        f'proxy = "socks5://user:hunter2@proxy:1080"\nca_bundle = "{bad_pem}"',
    )
    env = {"ACME_SECRET": "x", "HTTPS_PROXY": "ftp://p:21", "SSL_CERT_FILE": str(tmp_path / "absent.pem")}
    with pytest.raises(errors.ConfigError) as info:
        load_settings(write(tmp_path, text), env, registry.schemas())
    reasons = dict(info.value.problems)
    assert "http:// or https://" in reasons["partners.guesty.proxy"]
    assert "not a PEM bundle" in reasons["partners.guesty.ca_bundle"]
    assert "http:// or https://" in reasons["environment HTTPS_PROXY"]
    assert "not found" in reasons["environment SSL_CERT_FILE"]
    assert "hunter2" not in str(info.value)  # a proxy URL may carry its password


def test_the_proxy_environment_is_kept_and_nothing_else(tmp_path: Path) -> None:
    env = {"ACME_SECRET": "x", "https_proxy": "proxy:3128", "NO_PROXY": "internal", "HOME": "/root"}
    settings = load_settings(write(tmp_path, GOOD), env, registry.schemas())
    assert dict(settings.egress_environ) == {"https_proxy": "proxy:3128", "NO_PROXY": "internal"}
    egress = registry.egress(settings.partner("guesty"), settings.egress_environ)
    assert egress.proxy_for("https", "open-api.guesty.com") == "http://proxy:3128"
    assert egress.proxy_for("https", "api.internal") is None


# A partner whose connector speaks two API versions, the first its default.
VERSIONED = {
    "versioned": PartnerSchema(
        resources=frozenset({"reservations"}),
        credential_sets=(frozenset({"api_key"}),),
        versions=("v1", "v2"),
    )
}


def _versioned(rollout: object = None, *pins: str | None) -> dict[str, object]:
    integrations: list[dict[str, object]] = []
    for n, pin in enumerate(pins):
        integ: dict[str, object] = {"id": f"i{n}", "partner": "versioned", "credentials": {"api_key": "k"}}
        if pin is not None:
            integ["api_version"] = pin
        integrations.append(integ)
    partner: dict[str, object] = {} if rollout is None else {"rollout": rollout}
    return {"partners": {"versioned": partner}, "integrations": integrations}


def test_a_pin_and_a_rollout_of_declared_versions_are_accepted() -> None:
    settings = parse_settings(_versioned({"version": "v2", "percent": 30}, None, "v1"), {}, VERSIONED)
    rollout = settings.partner("versioned").rollout
    assert rollout is not None and (rollout.version, rollout.percent) == ("v2", 30)
    assert [i.api_version for i in settings.integrations] == [None, "v1"]


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [
        (_versioned(None, None, None, None, "v9"), "integrations[3].api_version", "unknown API version 'v9'"),
        (
            _versioned({"version": "v3", "percent": 10}),
            "partners.versioned.rollout.version",
            "unknown API version",
        ),
        (
            _versioned({"version": "v2", "percent": 101}),
            "partners.versioned.rollout.percent",
            "less than or equal",
        ),
        (
            _versioned({"version": "v2", "percent": -1}),
            "partners.versioned.rollout.percent",
            "greater than or equal",
        ),
        (_versioned({"version": "v2"}), "partners.versioned.rollout.percent", "Field required"),
    ],
)
def test_an_unknown_version_or_a_percent_outside_0_100_is_reported_with_its_key_path(
    document: dict[str, object], path: str, reason: str
) -> None:
    with pytest.raises(errors.ConfigError) as info:
        parse_settings(document, {}, VERSIONED)
    problems = dict(info.value.problems)
    assert path in problems, info.value.problems
    assert reason in problems[path]


def test_cli_exits_2_naming_a_bad_version_and_percent(tmp_path: Path) -> None:
    partner = next(name for name, info in registry.partners().items() if len(info.versions) > 1)
    keys = sorted(registry.partners()[partner].credential_keys)
    credentials = ", ".join(f'{k} = "x"' for k in keys)
    text = (
        f'[partners.{partner}]\nrollout = {{ version = "nope", percent = 130 }}\n'
        f'[[integrations]]\nid = "a"\npartner = "{partner}"\ncredentials = {{ {credentials} }}\n'
        f'[[integrations]]\nid = "b"\npartner = "{partner}"\napi_version = "v0"\n'
        f"credentials = {{ {credentials} }}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", str(write(tmp_path, text))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    for path in (
        f"partners.{partner}.rollout.version",
        f"partners.{partner}.rollout.percent",
        "integrations[1].api_version",
    ):
        assert path in proc.stderr, proc.stderr
