"""``syncd demo``: embedded PostgreSQL + partner simulator + the daemon, on one machine.

Everything stays on 127.0.0.1. The simulator serves a few accounts of every partner that
has both a simulator profile and a registered connector, and keeps mutating them
(updates, inserts, deletions) so incremental syncs have work to show; a progress line per
integration is redrawn every second from what landed in PostgreSQL. ``config/demo.toml``
lists each partner's integrations; those of partners not served are left out.

Webhooks are on for every partner that sends them: each integration gets a secret of its
partner's scheme (configured in ``demo.toml``, else generated for this run), and the
simulator delivers every mutation's notifications to the daemon's
``/webhooks/{partner}/{integration}``, so a change lands seconds after it happens rather
than at the next sync (``--no-webhooks`` to compare).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from pydantic import SecretStr

from syncd import errors
from syncd.app import Daemon
from syncd.config import IntegrationSettings, Settings, parse_settings
from syncd.connectors import registry
from syncd.observability import logging as syncd_logging
from syncd.simulator.profile import WebhookHook, discover
from syncd.simulator.server import SimulateOptions, Simulator, SimulatorServer, build_simulator
from syncd.simulator.webhooks import Subscription
from syncd.store import access

MUTATE_EVERY_S = 5.0
MUTATIONS_PER_ACCOUNT = 12


def demo_config_path() -> Path:
    for candidate in (Path("config/demo.toml"), Path(__file__).resolve().parents[1] / "config" / "demo.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("config/demo.toml not found (run from the syncd checkout)")


def _ago(ts: datetime | None) -> str:
    if ts is None:
        return "never"
    return f"{(datetime.now(UTC) - ts).total_seconds():.0f}s ago"


def demo_partners() -> list[str]:
    """Partners the demo can run: a simulator profile and a registered connector each."""
    connectors = registry.schemas()
    return [name for name in discover() if name in connectors]


def demo_settings(
    raw: Mapping[str, Any], environ: Mapping[str, str], partners: list[str], accounts: int
) -> Settings:
    """The demo config cut to ``partners`` and their first ``accounts`` integrations each."""
    taken: dict[str, int] = {}
    integrations = []
    for integration in raw.get("integrations", []):
        partner = integration.get("partner")
        if partner in partners and taken.get(partner, 0) < accounts:
            taken[partner] = taken.get(partner, 0) + 1
            integrations.append(integration)
    sections = {k: v for k, v in raw.get("partners", {}).items() if k in partners}
    return parse_settings(
        {**raw, "partners": sections, "integrations": integrations}, environ, registry.schemas()
    )


async def main(args: argparse.Namespace) -> int:
    partners = demo_partners()
    counts = dict.fromkeys(partners, args.accounts)
    sim = build_simulator(SimulateOptions(port=0, listings=args.listings, accounts=counts))
    async with SimulatorServer(sim) as server:
        environ = {**os.environ, "SYNCD_DEMO_URL": server.base_url}
        raw = tomllib.loads(demo_config_path().read_text(encoding="utf-8"))
        settings = demo_settings(raw, environ, partners, args.accounts)
        ids = [i.id for i in settings.integrations]
        settings = settings.model_copy(
            update={
                "daemon": settings.daemon.model_copy(update={"state_dir": args.state_dir}),
                "web": settings.web.model_copy(update={"port": args.port}),
                "integrations": tuple(
                    authorized(
                        sim,
                        with_webhook_secret(i)
                        if args.webhooks
                        else i.model_copy(update={"webhook_secrets": ()}),
                    )
                    for i in settings.integrations
                ),
            }
        )
        syncd_logging.configure(settings.daemon.log_level, settings.daemon.log_format)
        daemon = Daemon(settings)
        served = ", ".join(f"{p} x{args.accounts}" for p in partners)
        print(f"syncd demo: simulator on {server.base_url} ({served})")
        print(f"  PostgreSQL (embedded) data directory: {(args.state_dir / 'pgdata').resolve()}")
        finished = anyio.Event()

        async def run_daemon(
            *, task_status: anyio.abc.TaskStatus[Daemon] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await daemon.run(task_status=task_status)
            finally:
                finished.set()

        async with anyio.create_task_group() as tg:
            await tg.start(run_daemon)
            base = f"http://{settings.web.host}:{daemon.web_port}"
            print(f"  metrics: {base}/metrics   health: {base}/healthz   ready: {base}/readyz")
            print(f"  status page (open it in a browser): {base}/status")
            hooked = subscribe_webhooks(sim, settings, base)
            if hooked:
                print(f"  webhooks: {base}/webhooks/{{partner}}/{{integration}} ({hooked} integrations)")
            print("  Ctrl-C stops (the daemon drains, then the embedded PostgreSQL stops).\n")
            tg.start_soon(_mutate, sim)
            locks = [i.id for i in settings.integrations if i.locks is not None]
            tg.start_soon(_progress, daemon, [i for i in ids if i not in locks], locks)
            if args.seconds is not None:
                tg.start_soon(_stop_after, daemon, args.seconds)
            await finished.wait()  # SIGINT/SIGTERM (or --seconds) drains the daemon, then it returns
            tg.cancel_scope.cancel()
    sent = sim.webhooks.stats
    print(f"\nsyncd demo: webhooks delivered {sent.delivered}, given up {sent.failed}")
    print("syncd demo: stopped")
    return 0


def with_webhook_secret(integration: IntegrationSettings) -> IntegrationSettings:
    """The integration with a webhook secret of its partner's scheme: the configured one,
    else one made for this run (none for a partner without webhooks)."""
    scheme = registry.partners()[integration.partner].webhooks
    if scheme is None or integration.webhook_secrets:
        return integration
    return integration.model_copy(update={"webhook_secrets": (SecretStr(scheme.new_secret()),)})


# Credentials that already carry a grant; the others of an authorization-code partner
# get a code from the simulator's consent page, exchanged once by the daemon on start.
GRANT_CREDENTIALS = frozenset({"authorization_code", "refresh_token"})


def authorized(sim: Simulator, integration: IntegrationSettings) -> IntegrationSettings:
    """The integration with a one-time authorization code from the simulator, when its
    partner uses that grant and the configuration carries none (as an operator would
    after the partner's consent page)."""
    account = _account_of(sim, integration)
    if account is None or GRANT_CREDENTIALS & integration.credentials.keys():
        return integration
    code = sim.profile(integration.partner).authorization_code(account)
    if code is None:
        return integration
    credentials = {**integration.credentials, "authorization_code": SecretStr(code)}
    return integration.model_copy(update={"credentials": credentials})


def subscribe_webhooks(sim: Simulator, settings: Settings, base: str) -> int:
    """Points each demo account's webhooks at its integration's route; how many."""
    hooked = 0
    for integration in settings.integrations:
        account = _account_of(sim, integration)
        if account is None or not integration.webhook_secrets:
            continue
        secrets = tuple(s.get_secret_value() for s in integration.webhook_secrets)
        url = f"{base}/webhooks/{integration.partner}/{integration.id}"
        sim.webhooks.subscribe(account, Subscription(WebhookHook(url, secrets)))
        hooked += 1
    return hooked


def _account_of(sim: Simulator, integration: IntegrationSettings) -> str | None:
    """The simulator account whose credentials the integration is configured with."""
    configured = {k: v.get_secret_value() for k, v in integration.credentials.items()}
    for account in sim.accounts_of(integration.partner):
        expected = sim.profile(integration.partner).config_credentials(account.id, account.secret)
        # A grant (a one-time code) is the run's own: the account is named by the rest.
        if all(expected.get(k) == v for k, v in configured.items() if k not in GRANT_CREDENTIALS):
            return account.id
    return None


def _finished(daemon: Daemon) -> bool:
    return (
        daemon.runner is None
        or not any(daemon.runner.progress)
        or daemon.metrics.syncs_in_flight._value.get() == 0
    )


async def _stop_after(daemon: Daemon, seconds: float) -> None:
    await anyio.sleep(seconds)
    daemon.request_stop()


async def _mutate(sim: Simulator) -> None:
    round_no = 0
    while True:
        await anyio.sleep(MUTATE_EVERY_S)
        round_no += 1
        for n, account in enumerate(sim.accounts.values(), 1):
            sim.mutate(account.id, MUTATIONS_PER_ACCOUNT, round_no * 100 + n)


async def _progress(daemon: Daemon, ids: list[str], locks: list[str]) -> None:
    tty = sys.stdout.isatty()
    drawn = 0
    last_plain = 0.0
    while True:
        await anyio.sleep(1.0)
        if daemon.store is None:
            continue
        try:
            rows = await daemon.store.progress(ids)
            codes = await access.counts(daemon.store, locks) if locks else {}
        except errors.StoreUnavailable:
            if daemon.stop.is_set():
                return  # the daemon is draining and has closed its pool: nothing to show
            continue  # the database is restarting: the daemon rides it out, and so do we
        lines = [
            f"{r['id']:<14} properties {r['properties']:>7,}  changed {r['changed']:>5,}  "
            f"deleted {r['deleted']:>4,}  reservations {r['reservations']:>7,}  "
            f"dead letters {r['dead_letters']:>3}  last sync {_ago(r['last_success_at'])}"
            for r in rows
        ] + [
            f"{lock:<14} access codes  "
            + "  ".join(f"{s} {codes.get(lock, {}).get(s, 0):>4,}" for s in access.STATES)
            for lock in locks
        ]
        if tty:
            sys.stdout.write("\x1b[F\x1b[2K" * drawn + "\n".join(lines) + "\n")
            drawn = len(lines)
        elif time.monotonic() - last_plain >= 5:
            sys.stdout.write("\n".join(lines) + "\n")
            last_plain = time.monotonic()
        sys.stdout.flush()
