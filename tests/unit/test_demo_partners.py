"""``syncd demo`` runs every partner that has both a simulator profile and a connector."""

from __future__ import annotations

import tomllib

from syncd import demo
from syncd.connectors import registry
from syncd.simulator.profile import discover
from syncd.simulator.server import Simulator


def test_demo_partners_are_the_simulated_partners_with_a_connector() -> None:
    partners = demo.demo_partners()
    assert "guesty" in partners
    assert set(partners) == set(discover()) & set(registry.schemas())


def test_demo_settings_keep_the_served_partners_first_accounts() -> None:
    raw = tomllib.loads(demo.demo_config_path().read_text(encoding="utf-8"))
    raw["partners"]["not-served"] = {"base_url": "http://127.0.0.1:1/x"}
    raw["integrations"].append({"id": "elsewhere", "partner": "not-served", "credentials": {}})
    environ = {"SYNCD_DEMO_URL": "http://127.0.0.1:8901"}
    settings = demo.demo_settings(raw, environ, ["guesty"], accounts=2)
    assert [i.partner for i in settings.integrations] == ["guesty", "guesty"]
    assert [i.credentials["client_id"].get_secret_value() for i in settings.integrations] == [
        "guesty-acct-1",
        "guesty-acct-2",
    ]
    assert str(settings.partners["guesty"].base_url).startswith("http://127.0.0.1:8901/guesty/")
    assert set(settings.partners) == {"guesty"}


def test_each_served_partner_s_demo_integrations_log_in_as_its_simulated_accounts() -> None:
    """The n-th demo integration of a partner carries the credentials of the simulator's
    n-th account of that partner (else the demo's daemon is refused from the start)."""
    raw = tomllib.loads(demo.demo_config_path().read_text(encoding="utf-8"))
    partners = demo.demo_partners()
    settings = demo.demo_settings(raw, {"SYNCD_DEMO_URL": "http://127.0.0.1:8901"}, partners, accounts=3)
    sim = Simulator()
    for partner in partners:
        profile = sim.profile(partner)
        mine = [i for i in settings.integrations if i.partner == partner]
        assert len(mine) == 3, partner
        for n, integration in enumerate(mine, 1):
            sent = {k: v.get_secret_value() for k, v in integration.credentials.items()}
            expected = profile.config_credentials(*profile.credentials(n))
            if profile.authorization_code(profile.credentials(n)[0]) is not None:
                # The grant (a one-time code) is the run's own: the demo adds it itself.
                expected = {k: v for k, v in expected.items() if k not in demo.GRANT_CREDENTIALS}
            assert sent == expected, (partner, n)


def test_the_demo_authorizes_an_authorization_code_partner_itself() -> None:
    """An integration configured with only its app's client gets a one-time code from the
    simulator's consent page (exchanged by the daemon on start); the others are untouched."""
    raw = tomllib.loads(demo.demo_config_path().read_text(encoding="utf-8"))
    partners = demo.demo_partners()
    settings = demo.demo_settings(raw, {"SYNCD_DEMO_URL": "http://127.0.0.1:8901"}, partners, accounts=1)
    sim = Simulator()
    for partner in partners:
        sim.add_accounts(partner, 1, seed=1, size=1)
    coded = 0
    for integration in settings.integrations:
        done = demo.authorized(sim, integration)
        account = sim.accounts_of(integration.partner)[0].id
        if sim.profile(integration.partner).authorization_code(account) is None:
            assert done == integration
            continue
        coded += 1
        assert (
            "authorization_code" in done.credentials and "authorization_code" not in integration.credentials
        )
    assert coded >= 1
