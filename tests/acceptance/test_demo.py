"""The README's first command: ``syncd demo`` as a real process, on its embedded database."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_syncs_every_account_shows_progress_and_stops_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "syncd", "demo", "--seconds", "14", "--port", "0"),
            *("--listings", "300", "--accounts", "2", "--state-dir", str(tmp_path / "state")),
        ],
        cwd=tmp_path,  # not the checkout: the demo finds its config from the package
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"health: http://127\.0\.0\.1:\d+/healthz", out), out
    assert out.rstrip().endswith("syncd demo: stopped")
    # The simulator's mutations were announced by webhooks, and the daemon took every one.
    delivered = re.search(r"webhooks delivered (\d+), given up (\d+)", out)
    assert delivered and int(delivered[1]) > 0 and delivered[2] == "0", out
    # Progress lines come from what landed in PostgreSQL: both accounts, every listing.
    for account in ("acme-guesty", "beach-guesty"):
        counts = [
            int(n.replace(",", "")) for n in re.findall(rf"^{account}\s+properties\s+([\d,]+)", out, re.M)
        ]
        assert counts and max(counts) >= 299, out  # mutations may have deleted a few since
    # Every partner the demo configures is served and synced, the lock provider included,
    # whose progress lines (codes by state, never a PIN) follow the accounts'.
    served = re.search(r"simulator on \S+ \(([^)]*)\)", out)
    assert served, out
    partners = {part.split(" x")[0] for part in served[1].split(", ")}
    assert partners == {"airbnb", "booking_com", "cloudbeds", "guesty", "hostaway", "seam"}, out
    assert re.search(r"^acme-doors\s+access codes\s+setting\s+\d+\s+set\s+\d+", out, re.M), out
    assert (tmp_path / "state" / "pgdata").is_dir()
