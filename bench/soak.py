"""Soak: does the daemon's memory grow with uptime? (DESIGN.md invariant 5)

    python bench/soak.py                    # 10 minutes
    python bench/soak.py --minutes 3

A real `syncd run` (not run-once) against the simulator in its own process: three Guesty
accounts with the documented rate limits, mutated every few seconds, every resource due
every second, web endpoints scraped every 5 s like Prometheus would. RSS is sampled from
/proc every 5 s. After a warm-up (the first fifth of the run, when caches, pools and
the allocator settle), the growth and its slope per hour are reported. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest import free_port  # noqa: E402 - bench/ is this script's directory

from syncd.store.embedded import EmbeddedPostgres  # noqa: E402 - after the path tweak

ACCOUNTS = 3
SAMPLE_S = 5.0
TARGET_GROWTH_MB_PER_HOUR = 5.0


def runs_by_outcome(metrics_text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "syncd_sync_runs":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels["outcome"]
                    out[outcome] = out.get(outcome, 0) + sample.value
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def config(path: Path, dsn: str, sim_port: int, web_port: int) -> None:
    base = f"http://127.0.0.1:{sim_port}"
    integrations = "".join(
        f"""
[[integrations]]
id = "soak-{n}"
partner = "guesty"
credentials = {{ client_id = "guesty-acct-{n}", client_secret = "sim-secret-{n}" }}
resources.properties = {{ interval_s = 1, jitter = 0, overlap_s = 5, deletion_sweep_interval_s = 30 }}
resources.reservations = {{ interval_s = 1, jitter = 0, overlap_s = 5 }}
"""
        for n in range(1, ACCOUNTS + 1)
    )
    path.write_text(
        f"""
[daemon]
state_dir = "{path.parent}"
log_level = "warning"
scheduler_tick_s = 0.5
[database]
url = "{dsn}"
[web]
port = {web_port}
[partners.guesty]
base_url = "{base}/guesty/v1"
token_url = "{base}/guesty/oauth2/token"
"""
        + integrations
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--listings", type=int, default=2000, help="listings per account")
    args = parser.parse_args()
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="syncd-soak-") as tmp:
        workdir = Path(tmp)
        pg = EmbeddedPostgres(workdir)
        dsn = pg.start()
        sim_port, web_port = free_port(), free_port()
        sim = subprocess.Popen(
            [
                sys.executable, "-m", "syncd", "simulate", "--port", str(sim_port),
                "--accounts", f"guesty={ACCOUNTS}", "--listings", str(args.listings),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert sim.stdout is not None
        sim.stdout.readline()
        config(workdir / "soak.toml", dsn, sim_port, web_port)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(workdir / "soak.toml")],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "daemon.log").open("wb"),
        )
        samples: list[tuple[float, float]] = []
        mutations = 0
        runs: dict[str, float] = {}
        try:
            started = time.monotonic()
            with httpx.Client(timeout=10) as client:
                while (elapsed := time.monotonic() - started) < duration:
                    if daemon.poll() is not None:
                        raise RuntimeError(f"daemon exited ({daemon.returncode}); see its log")
                    for n in range(1, ACCOUNTS + 1):
                        client.post(
                            f"http://127.0.0.1:{sim_port}/_sim/guesty/guesty-acct-{n}/mutate",
                            json={"count": 10, "seed": mutations},
                        ).raise_for_status()
                        mutations += 1
                    for path in ("/metrics", "/healthz", "/readyz", "/status"):
                        try:
                            response = client.get(f"http://127.0.0.1:{web_port}{path}")
                        except httpx.TransportError:
                            continue  # not listening yet
                        if path == "/metrics":
                            runs = runs_by_outcome(response.text)
                    samples.append((elapsed, rss_mb(daemon.pid)))
                    print(f"{elapsed:7.0f} s  RSS {samples[-1][1]:6.1f} MB", flush=True)
                    time.sleep(SAMPLE_S)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
            sim.terminate()
            sim.wait(10)
            pg.stop()
    warm = [s for s in samples if s[0] >= duration / 5]
    growth = warm[-1][1] - warm[0][1]
    hours = (warm[-1][0] - warm[0][0]) / 3600
    slope = _slope(warm) * 3600
    summary = {
        "bench": "soak",
        "minutes": args.minutes,
        "accounts": ACCOUNTS,
        "mutations": mutations * 10,
        "sync_runs": {k: int(v) for k, v in sorted(runs.items())},
        "rss_mb_after_warmup": round(warm[0][1], 1),
        "rss_mb_end": round(warm[-1][1], 1),
        "rss_mb_max": round(max(s[1] for s in samples), 1),
        "growth_mb": round(growth, 1),
        "slope_mb_per_hour": round(slope, 2),
        "measured_hours": round(hours, 3),
        "target_slope_mb_per_hour": TARGET_GROWTH_MB_PER_HOUR,
        "meets_target": slope <= TARGET_GROWTH_MB_PER_HOUR,
        "exit_code": daemon.returncode,
    }
    print(json.dumps(summary))


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares MB per second: robust to the allocator's step-wise growth."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    num = sum((t - mean_t) * (m - mean_m) for t, m in points)
    den = sum((t - mean_t) ** 2 for t, _ in points) or 1.0
    return num / den


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
