"""Command line: argv -> settings -> logging -> uvloop -> the daemon (or a tool).

Exit codes (``EXIT_*`` below; ``syncd run --help`` lists them too):

    0    success; for ``run``: stopped by SIGTERM/SIGINT after draining, or with
         ``--once``, every due sync succeeded (or none was due, or the only others were
         "busy": running in another process, which reports them)
    1    runtime failure: the database unreachable at start, a partner refusing an
         operator command, ``dlq replay`` leaving records still bad
    2    bad configuration or usage: every problem on stderr, with its key path
    3    ``run --once`` only: at least one due sync failed (a circuit breaker refusing
         it counts as failed) or was interrupted; what the others synced is committed
    130  interrupted by Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import anyio

from syncd import errors
from syncd.config import Settings, load_settings
from syncd.connectors import registry
from syncd.engine import outcomes
from syncd.observability import logging as syncd_logging

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_RUNS_FAILED = 3

RUN_EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}  without --once: stopped by SIGTERM/SIGINT after draining.
     --once: every due sync succeeded, or none was due, or the only others were
     busy (running in another process right now, which reports them)
  {EXIT_RUNTIME}  runtime failure, e.g. the database unreachable at start
  {EXIT_CONFIG}  bad configuration: every problem on stderr, with its key path
  {EXIT_RUNS_FAILED}  --once: at least one due sync failed (a circuit breaker refusing it
     counts as failed) or was interrupted; what the others synced is committed
"""


def load(path: Path) -> Settings:
    return load_settings(path, os.environ, registry.schemas())


def _run_async(fn: Any, *args: Any) -> Any:
    return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": True})


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load(args.file)
    print(f"{args.file}: OK ({len(settings.integrations)} integration(s))")
    if args.versions:
        # What a rollout does before it is deployed: the same answer the daemon will reach.
        catalogue = registry.partners()
        for integ in settings.integrations:
            info = catalogue[integ.partner]
            version = registry.api_version(info, integ, settings.partner(integ.partner))
            if integ.api_version is not None:
                how = "pinned"
            else:
                how = "default" if version == info.default_version else "rollout"
            print(f"{integ.id}\t{integ.partner}\t{version}\t{how}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from syncd.app import Daemon
    from syncd.gc_tuning import tune_gc
    from syncd.malloc_tuning import tune_malloc

    settings = load(args.config)
    syncd_logging.configure(settings.daemon.log_level, settings.daemon.log_format)
    log = syncd_logging.get_logger()
    log.info("malloc_tuning", applied=tune_malloc())
    from syncd.observability.systemd import SystemdNotifier

    notifier = SystemdNotifier.from_environ(os.environ)
    log.info("gc_tuning", **tune_gc())  # last: what start-up built is frozen
    daemon = Daemon(settings, once=args.once, notifier=notifier)
    _run_async(daemon.run)
    # Without --once the daemon returns only after a drain that a signal asked for.
    return run_once_exit_code(daemon.summary()) if args.once else EXIT_OK


def run_once_exit_code(summary: outcomes.RunSummary) -> int:
    """What ``syncd run --once`` tells cron: ``EXIT_RUNS_FAILED`` if a due run failed or
    was interrupted, else ``EXIT_OK`` (nothing due included: nothing was left undone).

    A "busy" run is not a failure of this invocation: another process (the daemon, or the
    previous cron run still going) holds its lock and is syncing it now, and reports its
    own outcome. Failing here would alert on every overlap, and retrying would not help; a
    lock held for too long shows as a stale sync (``syncd_last_successful_sync_timestamp_seconds``).
    """
    return EXIT_RUNS_FAILED if summary.unfinished() else EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from syncd.app import database, open_store

    settings = load(args.config) if args.config else Settings()
    syncd_logging.configure(settings.daemon.log_level, settings.daemon.log_format)
    log = syncd_logging.get_logger()

    async def migrate() -> None:
        async with database(settings, log) as dsn, open_store(settings, dsn):
            log.info("schema_migrated")

    _run_async(migrate)
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret under the first configured key."""
    from syncd.app import cipher_for, database, open_store
    from syncd.store.credentials import CredentialStore

    settings = load(args.config)
    syncd_logging.configure(settings.daemon.log_level, settings.daemon.log_format)
    log = syncd_logging.get_logger()

    async def rotate() -> None:
        async with database(settings, log) as dsn, open_store(settings, dsn) as store:
            count = await CredentialStore(store, cipher_for(settings)).reencrypt_all()
            log.info("secrets_reencrypted", rows=count)

    _run_async(rotate)
    return 0


def _operator(args: argparse.Namespace) -> Settings:
    settings = load(args.config)
    # Operator commands print tables on stdout; their own logs only matter when they fail.
    syncd_logging.configure("warning", settings.daemon.log_format)
    return settings


def cmd_status(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    return int(_run_async(admin.status, settings, args.integration, args.json))


def cmd_sync_now(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    return int(_run_async(admin.sync_now, settings, args.integration, args.resource))


def cmd_tasks(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    a = args
    return int(_run_async(admin.tasks, settings, a.state, a.integration, a.limit, a.json))


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    a = args
    return int(_run_async(admin.dlq_list, settings, a.integration, a.resource, a.limit, a.payload, a.json))


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    a = args
    return int(_run_async(admin.dlq_replay, settings, a.integration, a.resource, a.id, a.limit, a.json))


def cmd_history(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    a = args
    return int(_run_async(admin.history, settings, a.integration, a.resource, a.external_id, a.json))


NEW_SECRET_ENV = "SYNCD_NEW_CLIENT_SECRET"


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    # Never from argv: other users of the machine can read a process's arguments.
    new_secret = os.environ.get(NEW_SECRET_ENV) or sys.stdin.readline().strip()
    if not new_secret:
        raise errors.ConfigError([(NEW_SECRET_ENV, "no new secret (set it, or pipe it on stdin)")])
    return int(_run_async(admin.rotate_secret, settings, args.integration, new_secret))


def cmd_authorize(args: argparse.Namespace) -> int:
    from syncd import admin

    settings = _operator(args)
    if args.url:
        if not args.redirect_uri:
            raise errors.ConfigError([("--redirect-uri", "required with --url (the app's registered one)")])
        state = secrets.token_urlsafe(16)
        return int(
            _run_async(
                admin.authorization_url, settings, args.integration, args.redirect_uri, state, args.scope
            )
        )
    if args.code_file is None:
        raise errors.ConfigError([("--code-file", "required (or --url to print the consent page first)")])
    # From a file (or stdin), never argv: other users of the machine can read arguments.
    try:
        text = sys.stdin.read() if str(args.code_file) == "-" else args.code_file.read_text()
    except OSError as exc:
        raise errors.ConfigError([("--code-file", f"cannot read it: {exc.strerror}")]) from None
    code = text.strip()
    if not code or len(code.split()) != 1:
        raise errors.ConfigError([("--code-file", "holds no authorization code (one word expected)")])
    return int(_run_async(admin.authorize, settings, args.integration, code))


def cmd_demo(args: argparse.Namespace) -> int:
    from syncd import demo

    return int(_run_async(demo.main, args))


def cmd_simulate(args: argparse.Namespace) -> int:
    from syncd.gc_tuning import tune_gc
    from syncd.simulator.__main__ import options_from_args
    from syncd.simulator.server import build_simulator, serve

    try:
        options = options_from_args(args)
        build_simulator(options)  # refuses an unknown --webhook account before serving
    except ValueError as exc:
        sys.stderr.write(f"syncd simulate: {exc}\n")
        return 2
    tune_gc()
    serve(options)
    return 0


# The states `syncd tasks --state` accepts (syncd.admin.TASK_STATES; not imported from
# there, which would load the daemon's modules for every command).
TASK_STATES = ("pending", "running", "done", "failed", "skipped", "expired", "dead", "lost")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run",
        help="run the daemon",
        epilog=RUN_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--once", action="store_true", help="run every due sync once, then exit (3 if any failed)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file; exit 2 listing every problem")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--versions",
        action="store_true",
        help="also list each integration's partner API version (pinned, or as the rollout decides)",
    )
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("migrate", help="apply schema.sql to the database")
    p.add_argument("--config", "-c", type=Path)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("rotate-keys", help="re-encrypt stored tokens and secrets under the first key")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.set_defaults(func=cmd_rotate_keys)

    p = sub.add_parser("status", help="per integration x resource: health, last success, next run")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--integration")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "rotate-secret",
        help=f"switch an integration to a new client secret (from ${NEW_SECRET_ENV} or stdin): "
        "tried, stored encrypted, verified, rolled back if refused",
    )
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--integration", required=True)
    p.set_defaults(func=cmd_rotate_secret)

    p = sub.add_parser(
        "authorize",
        help="exchange a one-time authorization code (from the partner's consent page) for the "
        "integration's refresh token, stored encrypted; exit 2 if the partner refuses it",
    )
    p.add_argument("integration", metavar="INTEGRATION")
    p.add_argument("--code-file", type=Path, help="a file holding the code ('-': stdin)")
    p.add_argument("--url", action="store_true", help="print the partner's consent page (and a state) first")
    p.add_argument("--redirect-uri", help="with --url: the redirect URI registered for the app")
    p.add_argument("--scope", help="with --url: the scopes to ask for")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.set_defaults(func=cmd_authorize)

    p = sub.add_parser("sync-now", help="queue a sync of an integration (or one resource) at user priority")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--integration", required=True)
    p.add_argument("--resource")
    p.set_defaults(func=cmd_sync_now)

    p = sub.add_parser("tasks", help="the task queue, newest first (pending, running, recently finished)")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--state", choices=TASK_STATES)
    p.add_argument("--integration")
    p.add_argument("--limit", type=_positive, default=100)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_tasks)

    dlq = sub.add_parser("dlq", help="dead letters: records the partner sent that failed validation")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    p = dlq_sub.add_parser("list", help="open dead letters, newest first")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--integration")
    p.add_argument("--resource")
    p.add_argument("--limit", type=_positive, default=100)
    p.add_argument("--payload", action="store_true", help="include the stored (redacted) payload")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_dlq_list)
    p = dlq_sub.add_parser(
        "replay", help="fetch each open dead letter's record again and apply it (exit 1 if some stay bad)"
    )
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument("--integration")
    p.add_argument("--resource")
    p.add_argument("--id", action="append", default=[], help="only this external id (repeatable)")
    p.add_argument("--limit", type=_positive, default=10_000)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_dlq_replay)

    p = sub.add_parser(
        "history",
        help="one record's change events, oldest first: field: old -> new (follows id merges; "
        "exit 1 if it has none)",
    )
    p.add_argument("integration", metavar="INTEGRATION")
    p.add_argument("resource", metavar="RESOURCE", help="properties, reservations, ...")
    p.add_argument("external_id", metavar="EXTERNAL_ID", help="the partner's id (a former id works too)")
    p.add_argument("--config", "-c", type=Path, required=True)
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line, changes as {field: [old, new]}"
    )
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("demo", help="embedded PostgreSQL + partner simulator + daemon, with live progress")
    p.add_argument("--listings", type=int, default=2000, help="listings per simulated account")
    p.add_argument("--accounts", type=int, default=3)
    p.add_argument("--port", type=int, default=8080, help="port of /metrics and /healthz")
    p.add_argument("--state-dir", type=Path, default=Path(".syncd/demo"))
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.add_argument(
        "--no-webhooks",
        dest="webhooks",
        action="store_false",
        help="changes arrive only by periodic syncs (by default the simulator also sends webhooks)",
    )
    p.set_defaults(func=cmd_demo)

    from syncd.simulator.__main__ import add_arguments

    p = sub.add_parser("simulate", help="run the partner simulator on 127.0.0.1 (every partner profile)")
    add_arguments(p)
    p.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except errors.ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        known = _known_error(exc)
        if known is None:
            raise  # a bug: the traceback is the useful report
        # An operational failure (database unreachable, partner refusing): one clear line.
        print(f"syncd: {type(known).__name__}: {known}", file=sys.stderr)
        return EXIT_RUNTIME


def _known_error(exc: BaseException) -> errors.SyncdError | None:
    """The SyncdError behind ``exc``, unwrapping task-group exception groups of one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, errors.SyncdError) else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
