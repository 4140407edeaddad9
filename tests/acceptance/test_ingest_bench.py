"""``bench/ingest.py`` end to end at a tiny size: the script the throughput targets are read
from keeps working (real PostgreSQL, simulator and daemon processes), and its last line
carries every figure and the issue's targets. No timing is asserted: CI machines vary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASE_FIGURES = {
    "records_per_s", "runs_records_per_s", "peak_rss_mb", "host_probe_ms", "hot_path_probe_us",
    "simulator_start_s", "daemon_cores_busy", "cores_busy", "wal_bytes_per_record",
    "wal_fpi_per_record", "checkpoints", "cpu_us_per_record",
}  # fmt: skip


def test_the_ingest_bench_syncs_both_sizes_and_prints_its_figures_last(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--sizes", "1500,3000"],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its data directory, removed when it ends
        capture_output=True,
        text=True,
        timeout=240,
    )
    # The bench itself raises unless every listing landed at the phase's version.
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert [r["listings"] for r in summary["results"]] == [1500, 3000]
    for result in summary["results"]:
        for phase in ("full", "changed"):
            figures = result[phase]
            assert set(figures) == PHASE_FIGURES
            assert figures["records_per_s"] > 0
            assert 10 < figures["peak_rss_mb"] < 1000
            assert set(figures["cpu_us_per_record"]) == {"daemon", "postgres", "simulator"}
            assert figures["wal_bytes_per_record"][0] > 100  # each record's row and event in the WAL
        # One line per phase before the JSON, as the phases ran.
        for phase in ("full", "changed"):
            assert any(line.split()[:2] == [f"{result['listings']:,}", phase] for line in lines), lines
    assert summary["targets"] == {
        "full_sync_records_per_s": 40_000,
        "changed_resync_records_per_s": 32_000,
        "peak_rss_mb": 100,
        "peak_rss_ratio": 1.10,
    }
    assert summary["meets_targets"] == (
        summary["full_sync_records_per_s_min"] >= 40_000
        and summary["changed_resync_records_per_s_min"] >= 32_000
        and summary["peak_rss_mb_max"] <= 100
        and summary["peak_rss_ratio_largest_to_smallest"] <= 1.10
    )
    assert not list(tmp_path.glob("syncd-bench-*")), "the bench left its data directory behind"
