"""The partner client against the real simulator (loopback HTTP) enforcing Guesty's limits.

Two accounts run side by side so the test stays short: ``steady`` for the documented
limits, ``halved`` for a partner that silently halves them mid-run (its headers keep
advertising the documented ones). Tiers are Guesty's second and minute ones.
"""

from __future__ import annotations

import contextlib
import time

import anyio
import httpx
import orjson
import pytest

from syncd import errors
from syncd.http.auth import HeaderAuth
from syncd.http.breaker import BreakerPolicy
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.guards import Guards, LimitSpec
from syncd.http.tiers import parse_tier
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import fault_presets, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.testing import RecordingTransport

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TIERS = [parse_tier("15/s"), parse_tier("120/min")]
SAFETY = 0.8
WORKERS = 8


async def client_for(
    server: SimulatorServer,
    account: str,
    guards: Guards,
    stack: contextlib.AsyncExitStack,
    max_attempts: int = 5,
) -> tuple[PartnerClient, RecordingTransport]:
    async with httpx.AsyncClient() as http:
        form = {"grant_type": "client_credentials", "client_id": account, "scope": "open-api"}
        response = await http.post(
            server.url("guesty", "/oauth2/token"), data={**form, "client_secret": f"{account}-s"}
        )
        token = response.json()["access_token"]
    throttle, breakers = guards.for_integration(
        "guesty", account, LimitSpec(tiers=TIERS, safety_factor=SAFETY, max_concurrency=15)
    )
    recording = await stack.enter_async_context(RecordingTransport())
    client = PartnerClient(
        recording,
        ClientOptions(
            partner="guesty",
            integration_id=account,
            base_url=server.url("guesty", "/v1"),
            max_attempts=max_attempts,
        ),
        throttle=throttle,
        breakers=breakers,
        metrics=Metrics(),
        log=get_logger(),
        auth=HeaderAuth("Authorization", f"Bearer {token}"),
    )
    return client, recording


async def drive(client: PartnerClient, ids: list[str], seconds: float, swallow: bool = False) -> None:
    """``WORKERS`` coroutines GET listings for ``seconds``; ``swallow`` keeps them going
    through failures (a sync would fail and be rescheduled)."""

    async def worker(n: int) -> None:
        for i in range(n, 10**9, WORKERS):
            try:
                await client.get("/listings/{id}", f"/listings/{ids[i % len(ids)]}", decode=orjson.loads)
            except (errors.PartnerError, errors.CircuitOpen):
                if not swallow:
                    raise
                await anyio.sleep(0.01)  # a rescheduled sync, not a tight loop

    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tg:
            for n in range(WORKERS):
                tg.start_soon(worker, n)


async def test_no_429s_at_the_documented_limits_and_a_silent_halving_absorbed_within_10s() -> None:
    sim = Simulator()
    for account in ("steady", "halved"):
        sim.add_account("guesty", account, f"{account}-s", GuestyAccount(seed=3, listings=40))
    ids = [t.id for t in sim.account("steady").truth_listings()]
    guards = Guards(Metrics(), get_logger())
    async with SimulatorServer(sim) as server, contextlib.AsyncExitStack() as stack:
        steady, steady_log = await client_for(server, "steady", guards, stack)
        halved, halved_log = await client_for(server, "halved", guards, stack)
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive, steady, ids, 8.5)
            await anyio.sleep(5.5)
            # The second account has 3 s of history (its minute counter below the new limit).
            tg.start_soon(drive, halved, ids, 15.5)
            await anyio.sleep(3.2)
            sim.set_limits(factor=0.5, advertise_documented=True)
            halved_at = time.monotonic()

    first = steady_log.sent[0][0]
    statuses = [s for _, s in steady_log.sent]
    assert 429 not in statuses
    window = steady_log.sent[-1][0] - first
    budget = min(t.limit * SAFETY * (1 + window / t.period_s) for t in TIERS)
    assert statuses.count(200) >= 0.95 * budget

    refused = [t - halved_at for t, s in halved_log.sent if s == 429]
    assert all(t >= 0 for t in refused)  # none before the partner changed its limits
    assert not refused or refused[-1] <= 10.0
    end = halved_log.sent[-1][0]
    assert any(s == 200 and t >= end - 3.0 for t, s in halved_log.sent)  # still syncing


async def test_a_429_storm_is_waited_out_never_undercutting_retry_after() -> None:
    """RELIABILITY row 7, shortened: 100 % 429s for 2 s (Retry-After alternating seconds
    and HTTP-date), then 30 %: no request of the account arrives before a promise expires."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", "storm", "storm-s", GuestyAccount(seed=3, listings=40))
    sim.set_faults(fault_presets.storm_429(2.0, 30.0, retry_after_s=1.0))
    ids = [t.id for t in sim.account("storm").truth_listings()]
    async with SimulatorServer(sim) as server, contextlib.AsyncExitStack() as stack:
        client, log = await client_for(server, "storm", Guards(Metrics(), get_logger()), stack)
        await drive(client, ids, 5.0, swallow=True)
    assert sim.request_log.retry_violations(slack_s=0.05) == []
    first = log.sent[0][0]
    # During the storm: the first wave (one per worker), then one request per Retry-After
    # (an HTTP-date one may be shorter: the date has whole seconds).
    in_storm = [s for t, s in log.sent if t - first < 2.0]
    assert len(in_storm) <= WORKERS + 5 and set(in_storm) == {429}
    assert any(s == 200 for _, s in log.sent)  # and it got through afterwards


async def test_an_outage_sends_one_probe_per_cool_down_then_recovers() -> None:
    """RELIABILITY row 17, shortened: a 2 s outage behind a breaker with a 0.5 s cool-down."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", "down", "down-s", GuestyAccount(seed=3, listings=40))
    sim.set_faults(fault_presets.outage(2.0, statuses=(503,), paths=("/v1/*",)))
    ids = [t.id for t in sim.account("down").truth_listings()]
    policy = BreakerPolicy(failure_threshold=5, cooldown_s=0.5, probe_timeout_s=0.5)
    guards = Guards(Metrics(), get_logger(), integration_breaker=policy, partner_breaker=policy)
    async with SimulatorServer(sim) as server, contextlib.AsyncExitStack() as stack:
        client, log = await client_for(server, "down", guards, stack, max_attempts=1)
        started = time.monotonic()
        await drive(client, ids, 4.5, swallow=True)
    failed = sum(1 for _, s in log.sent if s == 503)
    # The trip costs the threshold (plus what was already in flight), then at most one
    # probe per cool-down while the partner is down.
    assert failed <= policy.failure_threshold + WORKERS + 2.0 / policy.cooldown_s + 1
    assert sum(1 for t, s in log.sent if s == 200 and t - started > 3.0) >= 5  # closed again
