"""/status in a real browser: a daemon syncing three accounts from the simulator, one
healthy, one with malformed records (open dead letters: degraded) and one whose secret the
partner refuses (auth failed: down), rendered by headless Chromium at phone and desktop
sizes. The verdicts come from what the daemon did, not from rows written by hand, and
the partner panel's figures from its calls, counted against the simulator's own log."""

from __future__ import annotations

import re
import struct
import subprocess
from html import unescape
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.fault_spec import API_PATHS, FaultSpec, RateLimitParams, Rule, StatusParams
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import db_rows, guesty_config, poll_until, require_tool, settings_of

pytestmark = pytest.mark.anyio
HEALTHY = ("acme", "guesty-acct-1", "sim-secret-1")
DEGRADED = ("beach", "guesty-acct-2", "sim-secret-2")
DOWN = ("cove", "guesty-acct-3", "not-the-secret")
MALFORMED = frozenset({3, 7})
SYNC_TIMEOUT_S = 30.0
BROWSER_TIMEOUT_S = 30.0
PHONE, DESKTOP = (390, 844), (1280, 1000)
# Chromium as root in a closed network: no sandbox, GPU, QUIC, first-run or phoning home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


async def chromium(binary: str, profile: Path, *args: str) -> str:
    """One headless Chromium run with a fresh profile (``profile`` must not exist); its stdout."""
    with anyio.fail_after(BROWSER_TIMEOUT_S):
        done = await anyio.run_process(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            check=False,
            stderr=subprocess.PIPE,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def card(dom: str, ident: str) -> tuple[str, str]:
    """The class and the text (tags dropped, spaces collapsed) of the card ``ident``."""
    found = re.search(rf'<article class="([^"]*)" id="{re.escape(ident)}">(.*?)</article>', dom, re.S)
    assert found is not None, f"no card {ident} in the page"
    return found.group(1), " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def test_status_board_in_headless_chromium(database_url: str, tmp_path: Path) -> None:
    browser = require_tool("chromium")
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account(
        "guesty", HEALTHY[1], HEALTHY[2], GuestyAccount(seed=1, listings=60, reservations_per_listing=1)
    )
    sim.add_account(
        "guesty",
        DEGRADED[1],
        "sim-secret-2",
        GuestyAccount(seed=2, listings=60, reservations_per_listing=1, malformed_listings=MALFORMED),
    )
    sim.add_account(
        "guesty", DOWN[1], "sim-secret-3", GuestyAccount(seed=3, listings=60, reservations_per_listing=1)
    )
    # Two 503s and a 429 for the degraded account's data requests: retried, so its runs
    # succeed, but the partner panel counts them.
    beach = (DEGRADED[1],)
    sim.set_faults(
        FaultSpec(
            (
                Rule(
                    "status", 1.0, API_PATHS, beach, from_request=1, to_request=3, params=StatusParams((503,))
                ),
                Rule(
                    "rate_limit",
                    1.0,
                    API_PATHS,
                    beach,
                    from_request=4,
                    to_request=5,
                    params=RateLimitParams(),
                ),
            )
        )
    )
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server,
            database_url,
            [HEALTHY, DEGRADED, DOWN],
            state_dir=tmp_path,
            web=True,
            interval_s=3600,
        )
        # Guesty's documented limits (15/s, 120/min, 5000/h), not the helper's "none".
        del document["partners"]["guesty"]["rate_limits"]
        # No second run while the test looks: the board must show the first runs' outcome.
        document["daemon"]["retry_failed_after_s"] = 3600
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)
        url = f"http://127.0.0.1:{daemon.web_port}/status"

        async def all_ran() -> bool:
            rows = await db_rows(
                database_url,
                "SELECT count(*) FROM schedules"
                " WHERE last_finished_at IS NOT NULL AND last_started_at <= last_finished_at",
            )
            return bool(rows[0][0] == 6)

        with anyio.fail_after(SYNC_TIMEOUT_S):
            await poll_until(all_ran)
        async with httpx.AsyncClient() as client:
            status = (await client.get(url)).json()
            metrics = (await client.get(url.replace("/status", "/metrics"))).text
        dom = await chromium(browser, tmp_path / "p1", "--dump-dom", url)
        phone, desktop = tmp_path / "status.png", tmp_path / "status-desktop.png"
        for path, (width, height) in ((phone, PHONE), (desktop, DESKTOP)):
            await chromium(
                browser, tmp_path / path.stem, f"--screenshot={path}", f"--window-size={width},{height}", url
            )
        daemon.request_stop()

    # The JSON body: a verdict and reason per sync, the partner's figures.
    health = {(s["integration_id"], s["resource"]): s["health"] for s in status["syncs"]}
    assert health[("acme", "properties")]["state"] == "healthy"
    assert health[("acme", "reservations")]["state"] == "healthy"
    assert health[("beach", "properties")] == {"state": "degraded", "reason": "2 open dead letters"}
    assert health[("beach", "reservations")]["state"] == "healthy"
    for resource in ("properties", "reservations"):
        state, reason = health[("cove", resource)]["state"], health[("cove", resource)]["reason"]
        assert state == "down" and reason.startswith("auth failed: 401 authentication failed"), reason
        assert DOWN[2] not in reason
    counts = sim.request_log.counters()
    total = sum(counts.values())
    by_status = {
        code: sum(n for (_, _, _, s), n in counts.items() if s == code) for code in (200, 401, 429, 503)
    }
    assert by_status[429] == 1 and by_status[503] == 2 and by_status[401] >= 1
    partner = status["partners"]["guesty"]
    assert partner["calls"] == total and partner["window_s"] == 300
    assert (partner["rate_limited"], partner["server_errors"], partner["no_answer"]) == (1, 2, 0)
    assert partner["success_rate"] == round(by_status[200] / total, 4)
    # The budget: each account's slowest tier, as the effective-rate gauges say.
    rates: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name == "syncd_ratelimit_effective_rate":
            for sample in family.samples:
                rates.setdefault(sample.labels["scope"], []).append(sample.value)
    assert rates.keys() == {"acme", "beach", "cove"}
    assert partner["budget_per_min"] == pytest.approx(60 * sum(min(r) for r in rates.values()), abs=0.1)
    assert partner["budget_per_min"] < 3 * 5000 / 60  # at most 5000/h per account
    assert partner["p95_ms"] > 0 and partner["breaker"]["state"] == "closed"

    # The page the browser rendered: the same verdicts, reasons and figures.
    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in dom
    assert "<script" not in dom
    kind, text = card(dom, "integration-acme")
    assert kind == "card healthy" and text.count("✓ healthy") == 3, text
    kind, text = card(dom, "integration-beach")
    assert kind == "card degraded" and "▲ degraded properties 2 open dead letters" in text, text
    assert "dead letters 2" in text and "✓ healthy reservations" in text
    kind, text = card(dom, "integration-cove")
    assert kind == "card down" and text.count("auth failed: 401 authentication failed") == 2, text
    assert "last run failed just now" in text
    assert "last success never" in text and "failures in a row 1" in text
    # Worst first: down, then degraded, then healthy.
    assert (
        dom.index('id="integration-cove"')
        < dom.index('id="integration-beach"')
        < dom.index('id="integration-acme"')
    )
    kind, text = card(dom, "partner-guesty")
    assert kind == "card degraded" and "1 call rate-limited (429)" in text, text
    assert f"{partner['calls']:,} calls" in text and re.search(r"of [\d,]+ budget", text), text
    assert f"{partner['success_rate'] * 100:.1f} % success" in text
    assert "1 429s" in text and "2 5xx" in text and "0 no answer" in text and "ms p95 latency" in text
    assert "breakers closed" in text
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", dom)).split())
    assert "✕ 2 down ▲ 1 degraded ✓ 3 healthy" in page and "Partners last 5 min" in page
    assert DOWN[2] not in dom

    # Screenshots at a phone's and a desktop's size, with something drawn in them.
    assert png_size(phone) == PHONE and png_size(desktop) == DESKTOP
    assert phone.stat().st_size > 20_000 and desktop.stat().st_size > 30_000
