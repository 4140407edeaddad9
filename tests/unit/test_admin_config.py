"""``web.admin_token``: from the environment, never shown, long enough or exit 2 naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncd import errors
from syncd.config import MIN_ADMIN_TOKEN_CHARS, Settings, load_settings
from syncd.connectors import registry

TOKEN = "0123456789abcdef" * 4


def load(tmp_path: Path, value: str, environ: dict[str, str]) -> Settings:
    path = tmp_path / "syncd.toml"
    path.write_text(f'[web]\nadmin_token = "{value}"\n')
    return load_settings(path, environ, registry.schemas())


def test_the_token_comes_from_the_environment_and_is_never_shown(tmp_path: Path) -> None:
    settings = load(tmp_path, "${SYNCD_ADMIN_TOKEN}", {"SYNCD_ADMIN_TOKEN": TOKEN})
    assert settings.web.admin_token is not None
    assert settings.web.admin_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    # "${VAR:-}" unset: no token, the admin routes are off.
    assert load(tmp_path, "${SYNCD_ADMIN_TOKEN:-}", {}).web.admin_token is None


@pytest.mark.parametrize(
    ("value", "environ", "reason"),
    [
        ("${SYNCD_ADMIN_TOKEN}", {}, "environment variable SYNCD_ADMIN_TOKEN is not set"),
        ("short-token", {}, f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters"),
        ("${SYNCD_ADMIN_TOKEN}", {"SYNCD_ADMIN_TOKEN": TOKEN[:31]}, "must be at least"),
    ],
)
def test_a_missing_or_short_token_is_reported_with_its_key_path(
    tmp_path: Path, value: str, environ: dict[str, str], reason: str
) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        load(tmp_path, value, environ)
    assert [path for path, _ in caught.value.problems] == ["web.admin_token"]
    assert reason in caught.value.problems[0][1]


def test_check_config_exits_2_naming_the_key_without_echoing_the_token(tmp_path: Path) -> None:
    guess = "hunter2-" + "x" * 20
    path = tmp_path / "syncd.toml"
    path.write_text(f'[web]\nadmin_token = "{guess}"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "web.admin_token: " in proc.stderr and guess not in proc.stderr + proc.stdout
