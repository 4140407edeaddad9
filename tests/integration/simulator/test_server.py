"""SimulatorServer lifecycle, the CLI entry and the standalone runner."""

from __future__ import annotations

import argparse
import contextlib
import io
import socket
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from syncd import cli as syncd_cli
from syncd.simulator import __main__ as cli
from syncd.simulator import server
from syncd.simulator.profile import discover
from syncd.simulator.server import SimulateOptions, Simulator, SimulatorServer

pytestmark = pytest.mark.anyio


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_port_zero_binds_a_real_port_and_releases_it() -> None:
    sim = Simulator()
    async with SimulatorServer(sim) as srv:
        assert srv.port > 0
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"
        assert srv.url("guesty", "/v1") == f"{srv.base_url}/guesty/v1"
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"{srv.base_url}/_sim/health")).json()
    assert health == {"status": "ok", "partners": list(discover()), "accounts": []}
    assert "guesty" in health["partners"]
    assert _refused(srv.port)


async def test_a_failing_body_still_shuts_the_server_down() -> None:
    srv = SimulatorServer(Simulator())
    with pytest.raises(ZeroDivisionError):
        async with srv:
            port = srv.port
            _ = 1 / 0
    assert _refused(port)
    with pytest.raises(RuntimeError):
        async with srv:
            pass


async def test_cancellation_releases_the_port() -> None:
    port = 0
    with anyio.CancelScope() as scope:
        async with SimulatorServer(Simulator()) as srv:
            port = srv.port
            scope.cancel()  # however long the start took on a busy machine
            await anyio.sleep(10)
    assert port and _refused(port)


def test_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatorServer(Simulator(), host="0.0.0.0")
    with pytest.raises(ValueError):
        SimulatorServer(Simulator(), host="example.com")
    assert SimulatorServer(Simulator(), host="0.0.0.0", allow_non_loopback=True).host == "0.0.0.0"
    assert server.is_loopback("127.0.0.2") and server.is_loopback("::1") and server.is_loopback("localhost")


def test_cli_refuses_non_loopback_and_parses_options() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--host", "0.0.0.0", "--port", "0"])
    assert exc.value.code == 2
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--seed",
            "4",
            "--listings",
            "10",
            "--accounts",
            "guesty=2",
            "--latency-ms",
            "50-200",
            "--no-limits",
            "--max-tokens-per-day",
            "0",
        ]
    )
    options = cli.options_from_args(args)
    assert options == SimulateOptions(
        port=0,
        seed=4,
        listings=10,
        accounts={"guesty": 2},
        latency_ms=(50.0, 200.0),
        limits_enabled=False,
        max_tokens_per_day=None,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--latency-ms", "200-50"])
    every = cli.options_from_args(parser.parse_args(["--accounts", "3"]))
    assert every.accounts == dict.fromkeys(discover(), 3)
    assert every.max_tokens_per_day == "documented" and every.token_ttl_s == "documented"
    with pytest.raises(ValueError, match="no simulator profile"):
        cli.options_from_args(parser.parse_args(["--accounts", "nosuchpartner=1"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--accounts", "guesty=many"])


def test_syncd_simulate_refuses_an_unknown_partner(capsys: pytest.CaptureFixture[str]) -> None:
    assert syncd_cli.main(["simulate", "--port", "0", "--accounts", "nosuchpartner=1"]) == 2
    assert "no simulator profile nosuchpartner" in capsys.readouterr().err


def test_build_simulator_uses_deterministic_credentials() -> None:
    sim = server.build_simulator(SimulateOptions(seed=7, listings=20, accounts={"guesty": 3}))
    assert list(sim.accounts) == ["guesty-acct-1", "guesty-acct-2", "guesty-acct-3"]
    assert sim.accounts["guesty-acct-2"].secret == "sim-secret-2"
    assert [a.data.seed for a in sim.accounts_of("guesty")] == [7, 8, 9]
    assert sim.profile("guesty").credentials(2) == ("guesty-acct-2", "sim-secret-2")
    every = server.build_simulator(SimulateOptions(listings=5))
    assert {a.partner for a in every.accounts.values()} == set(discover())


class _Announcements(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.ready = anyio.Event()

    def flush(self) -> None:
        super().flush()
        self.ready.set()


@contextlib.asynccontextmanager
async def _served(options: SimulateOptions) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """``server.run`` in the background: its announcement, and a client holding account 1's token."""
    out = _Announcements()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run, options, out)
        with anyio.fail_after(10):
            await out.ready.wait()
        text = out.getvalue()
        base_url = text.split("guesty: ")[1].split()[0]
        async with httpx.AsyncClient(base_url=base_url) as client:
            form = {
                "grant_type": "client_credentials",
                "scope": "open-api",
                "client_id": "guesty-acct-1",
                "client_secret": "sim-secret-1",
            }
            token = (await client.post("/oauth2/token", data=form)).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield text, client
        tg.cancel_scope.cancel()


async def test_run_announces_urls_and_credentials_then_serves() -> None:
    async with _served(SimulateOptions(port=0, listings=30, accounts={"guesty": 2})) as (text, client):
        assert "id=guesty-acct-2 secret=sim-secret-2 seed=2 listings=30" in text
        page = await client.get("/v1/listings")
        assert page.json()["count"] == 30


async def _first_pages(options: SimulateOptions) -> list[bytes]:
    async with _served(options) as (_, client):
        return [
            (await client.get(path, params=params)).content
            for path, params in (
                ("/v1/listings", {"limit": "100", "skip": "100", "sort": "lastUpdatedAt"}),
                ("/v1/listings", {"limit": "100", "skip": "200"}),
                ("/v1/reservations", {"limit": "100", "skip": "300"}),
            )
        ]


async def test_a_prerendering_simulator_serves_the_bytes_it_would_render() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = cli.options_from_args(parser.parse_args(["--port", "0", "--listings", "250", "--prerender"]))
    assert options.prerender
    prerendered = await _first_pages(options)
    live = await _first_pages(SimulateOptions(port=0, listings=250))
    assert prerendered == live
    assert [page.count(b'"lastUpdatedAt"') for page in live] == [100, 50, 100]
