"""The alerting kit (config/prometheus, config/grafana) against the daemon it watches:
promtool accepts the rules and proves every alert fires on synthetic series (and stays
quiet on healthy look-alikes), promtool accepts a live /metrics, and every metric the
rules and the dashboard name is one the daemon exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

from syncd.app import Daemon
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import db_rows, guesty_config, poll_until, require_tool, settings_of

pytestmark = pytest.mark.anyio

PROMETHEUS = Path(__file__).resolve().parents[2] / "config" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULES_TEST = PROMETHEUS / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
DASHBOARD = PROMETHEUS.parent / "grafana" / "syncd.json"
GOOD = ("acme", "guesty-acct-1", "sim-secret-1")
REVOKED = ("umbrella", "guesty-acct-2", "not-the-secret")  # the simulator knows another secret

# A metric name in PromQL or prose: ours, or the process_* ones the registry also exports
# (the kit's only other name is Prometheus's own `up`).
_NAME = re.compile(r"\b(?:syncd|process)_[a-z0-9_]+\b")
_SERIES_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def promtool(*args: str, stdin: bytes | None = None, cwd: Path = PROMETHEUS) -> str:
    """promtool's output; fails the test, showing it, unless promtool exits 0."""
    done = subprocess.run(
        [require_tool("promtool"), *args], input=stdin, cwd=cwd, capture_output=True, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    return output


def series_names(families: dict[str, str]) -> set[str]:
    """The series names a query may use, from family name (as exposed) -> type."""
    return {name + suffix for name, kind in families.items() for suffix in _SERIES_SUFFIXES.get(kind, ("",))}


def exposed_families(text: str) -> dict[str, str]:
    """Family name -> type from an exposition's ``# TYPE`` lines (present with or without samples)."""
    return {m[1]: m[2] for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)}


def registry_families() -> dict[str, str]:
    """Family name -> type as the exposition names them (counters end in ``_total``)."""
    return {f.name + ("_total" if f.type == "counter" else ""): f.type for f in Metrics().registry.collect()}


def kit_names() -> set[str]:
    return {name for path in (RULES, RULES_TEST, DASHBOARD) for name in _NAME.findall(path.read_text())}


def alert_blocks() -> dict[str, str]:
    """Alert name -> the text of its rule in alerts.yml."""
    parts = re.split(r"^\s+- alert: (\w+)\n", RULES.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_rules_pass_promtool_and_every_alert_is_actionable() -> None:
    alerts = alert_blocks()
    assert len(alerts) >= 12
    assert f"SUCCESS: {len(alerts)} rules found" in promtool("check", "rules", RULES.name)
    for name, rule in alerts.items():
        assert re.search(r"^\s+for: \d+[smh]$", rule, flags=re.MULTILINE), name
        assert re.search(r"^\s+severity: (critical|warning)$", rule, flags=re.MULTILINE), name
        for annotation in ("summary", "description", "runbook"):
            assert re.search(rf"^\s+{annotation}: \S", rule, flags=re.MULTILINE), (name, annotation)
        runbook = re.search(r"^\s+runbook: (.+)$", rule, flags=re.MULTILINE)
        assert runbook is not None and re.search(r"syncd \w|:8080/|/status|[Dd]ashboard", runbook[1]), name
    # The example scrape configuration loads these rules.
    assert "SUCCESS: 1 rule files found" in promtool("check", "config", SCRAPE_CONFIG.name)


def test_every_alert_fires_on_synthetic_series_and_stays_quiet_otherwise() -> None:
    tested = set(re.findall(r"^\s+alertname: (\w+)$", RULES_TEST.read_text(), flags=re.MULTILINE))
    assert tested == set(alert_blocks())
    assert "SUCCESS" in promtool("test", "rules", RULES_TEST.name)


def test_dashboard_is_importable_and_its_queries_parse(tmp_path: Path) -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert {"partner", "integration", "instance"} <= variables.keys()
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == source and panel["targets"], panel["title"]
        assert all(t["datasource"] == source for t in panel["targets"]), panel["title"]
    # A template variable's values: the labels of one of our metrics (Grafana's function).
    for name in ("instance", "partner", "integration"):
        assert re.fullmatch(rf"label_values\(syncd_[a-z_]+, {name}\)", variables[name]["query"]["query"])
    # Each panel's query, with Grafana's variables filled in, as a recording rule promtool parses.
    queries = [t["expr"] for p in panels for t in p["targets"]]
    assert len(queries) >= 20
    filled = [
        q.replace("$__rate_interval", "5m").replace("$partner", ".*").replace("$integration", ".*")
        for q in queries
    ]
    filled = [q.replace("$instance", ".*") for q in filled]
    assert not [q for q in filled if "$" in q]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(filled)],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_bytes(orjson.dumps(rules))  # JSON is YAML
    assert f"SUCCESS: {len(filled)} rules found" in promtool(
        "check", "rules", "dashboard_rules.yml", cwd=tmp_path
    )


def test_every_metric_the_kit_names_is_in_the_registry() -> None:
    names = kit_names()
    assert len(names) >= 20
    assert names - series_names(registry_families()) == set()


async def test_live_metrics_pass_promtool_and_carry_every_name_the_kit_uses(
    database_url: str, tmp_path: Path
) -> None:
    require_tool("promtool")
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account(
        "guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=300, malformed_listings=frozenset({7}))
    )
    sim.add_account("guesty", REVOKED[1], "sim-secret-2", GuestyAccount(seed=4, listings=10))
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server,
            database_url,
            [GOOD, REVOKED],
            state_dir=tmp_path,
            web=True,
            interval_s=3600,
            rate_limits=["100/s", "6000/min"],  # far above what 20 pages need: no waits to time
        )
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)

        async def settled() -> bool:
            synced = await db_rows(
                database_url,
                "SELECT count(*) FROM sync_state WHERE integration_id = $1 AND last_success_at IS NOT NULL",
                GOOD[0],
            )
            parked = await db_rows(database_url, "SELECT status FROM integrations WHERE id = $1", REVOKED[0])
            return bool(synced[0][0] == 2 and parked[0][0] == "auth_failed")

        with anyio.fail_after(60):
            await poll_until(settled)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
            body = (await client.get("/metrics")).text
        daemon.request_stop()
    (tmp_path / "metrics.txt").write_text(body)  # for a failing run's post-mortem

    # promtool's linter says nothing: no naming, help or type problem in any series.
    assert promtool("check", "metrics", stdin=body.encode()) == ""
    assert kit_names() - series_names(exposed_families(body)) == set()

    # The signals added for the alerts, fed by real runs.
    def sample(name: str, **labels: str) -> float:
        found = re.findall(rf"^{name}{{([^}}]*)}} (\S+)$", body, flags=re.MULTILINE)
        values = [float(v) for lbls, v in found if all(f'{k}="{x}"' in lbls for k, x in labels.items())]
        assert len(values) == 1, (name, labels, found)
        return values[0]

    assert sample("syncd_token_requests_total", partner="guesty", outcome="ok") == 1
    assert sample("syncd_token_requests_total", partner="guesty", outcome="auth") >= 1
    assert sample("syncd_integration_auth_failed", integration=REVOKED[0]) == 1
    assert sample("syncd_integration_auth_failed", integration=GOOD[0]) == 0
    assert sample("syncd_dead_letters_open", integration=GOOD[0], resource="properties") == 1
    assert sample("syncd_dead_letters_open", integration=GOOD[0], resource="reservations") == 0
    assert sample("syncd_sync_interval_seconds", integration=GOOD[0], resource="properties") == 3600
    assert re.search(r"^syncd_scheduler_last_tick_timestamp_seconds [1-9]", body, flags=re.MULTILINE)
    assert re.search(r"^process_resident_memory_bytes [1-9]", body, flags=re.MULTILINE)

    # A restarted daemon starts from the database's facts, not from blank gauges: nothing
    # is due, so no run sets them (and it calls no partner). A restart also un-parks.
    await db_rows(database_url, "UPDATE schedules SET next_due_at = now() + interval '1 hour'")
    document["web"]["enabled"] = False
    async with anyio.create_task_group() as tg:
        restarted: Daemon = await tg.start(Daemon(settings_of(document)).run)
        restarted.request_stop()
    seeded = restarted.metrics.registry.get_sample_value
    success = await db_rows(
        database_url,
        "SELECT resource, extract(epoch FROM last_success_at) FROM sync_state WHERE integration_id = $1",
        GOOD[0],
    )
    assert len(success) == 2
    for resource, at in success:
        labels = {"integration": GOOD[0], "resource": resource}
        last = seeded("syncd_last_successful_sync_timestamp_seconds", labels)
        assert last == pytest.approx(float(at), abs=1e-3)
        assert seeded("syncd_sync_interval_seconds", labels) == 3600
    assert seeded("syncd_dead_letters_open", {"integration": GOOD[0], "resource": "properties"}) == 1
    assert seeded("syncd_integration_auth_failed", {"integration": REVOKED[0]}) == 0
    never = {"integration": REVOKED[0], "resource": "properties"}
    assert seeded("syncd_last_successful_sync_timestamp_seconds", never) is None
