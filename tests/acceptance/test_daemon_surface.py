"""The long-running daemon: health, readiness, Prometheus metrics that match the partner's
own request log, no secrets in logs, and a SIGTERM drain of a real process."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.app import Daemon
from syncd.connectors import registry
from syncd.observability import logging as syncd_logging
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import (
    assert_matches_truth,
    db_rows,
    guesty_config,
    open_daemon,
    poll_until,
    settings_of,
    write_config,
)

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


async def test_metrics_health_and_readiness_of_a_running_daemon(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty",
        ACCOUNT[1],
        ACCOUNT[2],
        GuestyAccount(seed=3, listings=1200, malformed_listings=frozenset({7})),
    )
    stream = io.StringIO()
    syncd_logging.configure("info", "json", stream=stream)
    try:
        async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
            document = guesty_config(
                server, database_url, [ACCOUNT], state_dir=tmp_path, web=True, interval_s=3600
            )
            daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)
            base = f"http://127.0.0.1:{daemon.web_port}"

            async def synced() -> bool:
                rows = await db_rows(
                    database_url, "SELECT count(*) FROM sync_state WHERE last_success_at IS NOT NULL"
                )
                return bool(rows[0][0] == 2)

            with anyio.fail_after(60):
                await poll_until(synced)
            async with httpx.AsyncClient(base_url=base) as client:
                health = await client.get("/healthz")
                ready = await client.get("/readyz")
                metrics = await client.get("/metrics")
                status = await client.get("/status")
                page = await client.get("/status", headers={"accept": "text/html"})
            daemon.request_stop()
    finally:
        syncd_logging.configure("info", "console")

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200 and ready.json() == {"ok": ["database", "scheduler"], "failing": {}}
    assert status.status_code == 200 and status.json()["integrations"] == 1
    # The partner API version each integration runs (the default: no pin, no rollout).
    assert status.json()["api_versions"] == {"acme": registry.partners()["guesty"].default_version}
    syncs = {row["resource"]: row for row in status.json()["syncs"]}
    assert syncs.keys() == {"properties", "reservations"}
    assert all(row["last_outcome"] == "ok" and row["last_success_at"] for row in syncs.values())
    # The malformed listing is an open dead letter: properties degraded, reservations healthy.
    assert syncs["properties"]["health"] == {"state": "degraded", "reason": "1 open dead letter"}
    assert syncs["reservations"]["health"]["state"] == "healthy"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="integration-acme"' in page.text and 'id="sync-acme-reservations"' in page.text
    assert "API legacy" in page.text  # the version, on the integration's card
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    versions = [(s.labels, s.value) for s in families["syncd_integration_api_version"].samples]
    assert versions == [({"integration": "acme", "partner": "guesty", "version": "legacy"}, 1.0)]

    # Every request the partner saw, we counted, by endpoint and status.
    calls: dict[tuple[str, str], float] = {}
    for sample in families["syncd_api_calls"].samples:
        if sample.name.endswith("_total"):
            calls[(sample.labels["endpoint"], sample.labels["status"])] = sample.value
    seen: dict[tuple[str, str], float] = {}
    for (_account, _method, path, status_code), count in sim.request_log.counters().items():
        path = path.removeprefix("/guesty")  # the simulator serves the partner below its name
        endpoint = path.removeprefix("/v1") if path.startswith("/v1") else path
        seen[(endpoint, str(status_code))] = seen.get((endpoint, str(status_code)), 0) + count
    assert calls == seen
    # The status board's window saw the same calls (the test is shorter than the window).
    partner = status.json()["partners"]["guesty"]
    assert partner["calls"] == sum(seen.values()) and partner["success_rate"] == 1.0
    assert partner["breaker"] == {"state": "closed", "retry_in_s": 0.0, "integrations": {}}
    assert seen[("/oauth2/token", "200")] == 1

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value for s in families[name].samples
            if s.name == name + "_total" and all(s.labels.get(k) == v for k, v in labels.items())
        )  # fmt: skip

    assert value("syncd_records_upserted", resource="properties", outcome="inserted") == 1199
    assert value("syncd_records_upserted", resource="properties", outcome="dead_lettered") == 1
    assert value("syncd_records_upserted", resource="reservations", outcome="inserted") == 2400
    last = {
        s.labels["resource"]: s.value
        for s in families["syncd_last_successful_sync_timestamp_seconds"].samples
    }
    assert set(last) == {"properties", "reservations"} and all(
        abs(v - time.time()) < 120 for v in last.values()
    )
    assert families["syncd_api_request_duration_seconds"].samples
    await assert_matches_truth(database_url, "acme", account)

    # One JSON event per API call and per applied batch; no secret anywhere.
    events = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    api_calls = [e for e in events if e["event"] == "api_call"]
    assert len(api_calls) == sum(seen.values())
    assert {e["event"] for e in events} >= {"page_applied", "sync_finished", "daemon_started"}
    text = stream.getvalue()
    assert ACCOUNT[2] not in text
    tokens = sim.issued_credentials()
    assert len(tokens) == 1 and tokens[0] not in text


@pytest.mark.slow
async def test_sigterm_drains_in_flight_pages_and_exits_zero(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=(20.0, 30.0))
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=5, listings=4000))
    async with SimulatorServer(sim) as server:
        document = guesty_config(
            server, database_url, [ACCOUNT], state_dir=tmp_path, batch_size=300, interval_s=3600
        )
        document["daemon"]["shutdown_grace_s"] = 20
        config = write_config(document, tmp_path)
        proc = await open_daemon(config, stderr=subprocess.PIPE)

        async def started_writing() -> bool:
            rows = await db_rows(database_url, "SELECT coalesce(sum(run_pages), 0) FROM sync_state")
            return bool(rows[0][0] >= 6)

        with anyio.fail_after(60):
            await poll_until(started_writing)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        with anyio.fail_after(25):
            code = await proc.wait()
        drain_s = time.monotonic() - started
        assert proc.stderr is not None
        log = (await proc.stderr.receive()).decode(errors="replace") if code != 0 else ""
        assert code == 0, log[-2000:]
        assert drain_s < 20

        state = await db_rows(database_url, "SELECT resource, last_success_at, run_pages FROM sync_state")
        assert any(r["last_success_at"] is None for r in state), "SIGTERM must land mid-sync for this test"
        # Nothing is held: no advisory locks of ours, no open sessions.
        locks = await db_rows(database_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert locks[0][0] == 0

        # A restart finishes the job from where the drain stopped (logging its start-up).
        document["daemon"]["log_level"] = "info"
        write_config(document, tmp_path)
        with anyio.fail_after(120):
            again = await anyio.run_process(
                [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)], check=False
            )
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        startup = [orjson.loads(line) for line in again.stderr.splitlines() if line.startswith(b"{")]
        assert {"event": "malloc_tuning", "applied": True}.items() <= startup[0].items()
    await assert_matches_truth(database_url, "acme", account)
