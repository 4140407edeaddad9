"""The way out, as an enterprise deployment has it: a partner served over TLS by a
certificate from a private CA, reached through a CONNECT proxy named by the environment
(``HTTPS_PROXY``) or the config, with ``NO_PROXY`` sending a host around it. Each case is
a whole run-once daemon syncing every record, or refusing to when the CA is unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncd.app import Daemon
from syncd.config import parse_settings
from syncd.connectors import registry
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.integration.http.scripted import connect_proxy, private_ca
from tests.support import assert_matches_truth, db_rows, guesty_config

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


@pytest.mark.parametrize(
    ("case", "environ", "partner", "tunnelled"),
    [
        ("HTTPS_PROXY, ca_bundle", {"HTTPS_PROXY": "{proxy}"}, {"ca_bundle": "{ca}"}, True),
        ("lower-case https_proxy", {"https_proxy": "{proxy}"}, {"ca_bundle": "{ca}"}, True),
        (
            "NO_PROXY bypasses",
            {"HTTPS_PROXY": "{proxy}", "NO_PROXY": "localhost,127.0.0.1"},
            {"ca_bundle": "{ca}"},
            False,
        ),
        ("configured proxy, SSL_CERT_FILE", {"SSL_CERT_FILE": "{ca}"}, {"proxy": "{proxy}"}, True),
        ("trust_env off", {"HTTPS_PROXY": "{proxy}"}, {"ca_bundle": "{ca}", "trust_env": False}, False),
        (
            "httpcore's own sockets",
            {"HTTPS_PROXY": "{proxy}"},
            {"ca_bundle": "{ca}", "network_backend": "anyio"},
            True,
        ),
    ],
)
async def test_a_sync_through_the_proxy_and_the_private_ca(
    database_url: str,
    tmp_path: Path,
    case: str,
    environ: dict[str, str],
    partner: dict[str, Any],
    tunnelled: bool,
) -> None:
    ca = private_ca(tmp_path)
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=3, listings=250))
    server = SimulatorServer(sim, certificate=(ca.cert_pem, ca.key_pem))
    async with server, connect_proxy() as proxy:
        values = {"proxy": proxy.url, "ca": str(ca.ca_pem)}
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=None)
        assert document["partners"]["guesty"]["base_url"].startswith("https://127.0.0.1:")
        document["partners"]["guesty"].update(
            {k: v.format(**values) if isinstance(v, str) else v for k, v in partner.items()}
        )
        env = {k: v.format(**values) for k, v in environ.items()}
        await Daemon(parse_settings(document, env, registry.schemas()), once=True).run()
    await assert_matches_truth(database_url, "acme", account)
    if tunnelled:
        assert proxy.tunnels, "every request went through the proxy"
        assert set(proxy.tunnels) == {f"127.0.0.1:{server.port}"}
    else:
        assert proxy.tunnels == []


async def test_a_partner_whose_ca_is_not_trusted_is_refused(database_url: str, tmp_path: Path) -> None:
    ca = private_ca(tmp_path)
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=3, listings=50))
    async with SimulatorServer(sim, certificate=(ca.cert_pem, ca.key_pem)) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=None)
        document["partners"]["guesty"]["max_attempts"] = 1
        await Daemon(parse_settings(document, {}, registry.schemas()), once=True).run()
    assert sim.request_log.entries() == []  # TLS failed before any request was made
    states = await db_rows(database_url, "SELECT last_error FROM sync_state WHERE integration_id = 'acme'")
    assert states and all("CERTIFICATE_VERIFY_FAILED" in s["last_error"] for s in states)
    assert await db_rows(database_url, "SELECT 1 FROM properties") == []
