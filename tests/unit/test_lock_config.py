"""A lock integration's ``locks`` section: validated at start, every problem named by its key
path, exit 2 and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncd import errors
from syncd.config import parse_settings
from syncd.connectors import registry

SOURCE = {"id": "pms", "partner": "hostaway", "credentials": {"client_id": "1", "client_secret": "s"},
          "resources": {"reservations": {}}}  # fmt: skip


def lock(**locks: Any) -> dict[str, Any]:
    section = {"follows": "pms", "devices": {"40000": "device_1"}, **locks}
    return {"id": "doors", "partner": "seam", "credentials": {"api_key": "k"}, "locks": section}


def problems(*integrations: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(errors.ConfigError) as info:
        parse_settings({"integrations": list(integrations)}, {}, registry.schemas())
    return dict(info.value.problems)


def test_a_valid_lock_integration() -> None:
    settings = parse_settings(
        {"integrations": [SOURCE, lock(timezone="Europe/Paris")]}, {}, registry.schemas()
    )
    locks = settings.integrations[1].locks
    assert locks is not None and locks.follows == "pms" and locks.devices == {"40000": "device_1"}
    assert (locks.check_in_time, locks.check_out_time) == ("15:00", "11:00")


@pytest.mark.parametrize(
    ("integrations", "path", "says"),
    [
        ([SOURCE, {**lock(), "locks": None}], "integrations[1].locks", "required"),
        ([SOURCE, lock(follows="nowhere")], "integrations[1].locks.follows", "no integration 'nowhere'"),
        ([SOURCE, lock(follows="doors")], "integrations[1].locks.follows", "cannot follow itself"),
        ([SOURCE, lock(devices={})], "integrations[1].locks.devices", "at least 1"),
        ([SOURCE, lock(check_in_time="3pm")], "integrations[1].locks.check_in_time", "pattern"),
        ([SOURCE, lock(timezone="Mars/Olympus")], "integrations[1].locks.timezone", "unknown time zone"),
        ([SOURCE, lock(statuses=["booked"])], "integrations[1].locks.statuses", "unknown statuses"),
        ([SOURCE, lock(colour="red")], "integrations[1].locks.colour", "Extra inputs"),
        ([{**SOURCE, "locks": lock()["locks"]}], "integrations[0].locks", "pushes no access codes"),
        (
            [{**SOURCE, "resources": {"properties": {}}}, lock()],
            "integrations[1].locks.follows",
            "does not sync reservations",
        ),
        (
            [SOURCE, lock(), {**lock(follows="doors"), "id": "more"}],
            "integrations[2].locks.follows",
            "lock integration",
        ),
    ],
)
def test_each_bad_locks_section_is_named_by_its_key_path(
    integrations: list[dict[str, Any]], path: str, says: str
) -> None:
    found = problems(*integrations)
    assert path in found, found
    assert says in found[path]


def test_check_config_exits_2_naming_the_key_path(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[[integrations]]\nid = "doors"\npartner = "seam"\ncredentials = { api_key = "k" }\n'
        '[integrations.locks]\nfollows = "gone"\n[integrations.locks.devices]\n"L1" = "device_1"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "integrations[0].locks.follows" in proc.stderr and "no integration 'gone'" in proc.stderr
