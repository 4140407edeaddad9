"""``python -m syncd.simulator``: serve simulated partner accounts on loopback.

``add_arguments``/``options_from_args`` are shared with ``syncd simulate`` so the two
entry points accept the same flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from syncd.simulator import DEFAULT_HOST, DEFAULT_PORT, fault_presets
from syncd.simulator.fault_spec import FaultSpec, SpecError
from syncd.simulator.profile import WebhookHook
from syncd.simulator.webhooks import DeliveryFaults, Subscription

if TYPE_CHECKING:
    from syncd.simulator import server


def _latency(value: str) -> tuple[float, float]:
    low, sep, high = value.partition("-")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"latency must look like 50-200 (ms), got {value!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError("latency needs 0 <= min <= max")
    return bounds


def _accounts(value: str) -> dict[str, int] | int:
    """``3`` (every partner) or ``acme=3,other=2`` (only those partners)."""
    try:
        if "=" not in value:
            return _count(int(value))
        counts: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, sep, n = part.partition("=")
            counts[name.strip()] = _count(int(n) if sep else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"accounts must look like 3 or NAME=3,NAME=2, got {value!r}"
        ) from None
    return counts


def _count(n: int) -> int:
    if n < 0:
        raise ValueError(n)
    return n


def _faults(value: str) -> FaultSpec:
    try:
        return fault_presets.from_preset(value)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address (loopback only by default)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1, help="dataset seed of the first account")
    parser.add_argument("--listings", type=int, default=5000, help="listings per account")
    parser.add_argument("--reservations-per-listing", type=int, default=2)
    parser.add_argument(
        "--accounts",
        type=_accounts,
        default=1,
        metavar="N|PARTNER=N,...",
        help="accounts {partner}-acct-1..N of every partner (N), or of the named partners only",
    )
    parser.add_argument("--latency-ms", type=_latency, default=None, metavar="MIN-MAX")
    parser.add_argument("--no-limits", action="store_true", help="do not enforce rate limits")
    parser.add_argument("--limit-factor", type=float, default=1.0, help="scale the documented limits")
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="token lifetime (default: each partner's documented one)",
    )
    parser.add_argument(
        "--max-tokens-per-day",
        type=int,
        default=None,
        help="token cap per client per trailing 24 h (default: each partner's); 0 disables the cap",
    )
    parser.add_argument(
        "--allow-non-loopback", action="store_true", help="allow binding a non-loopback address"
    )
    parser.add_argument(
        "--generation",
        type=int,
        default=0,
        help="serve every record as rewritten this many times (newer timestamps, new content)",
    )
    parser.add_argument(
        "--prerender",
        action="store_true",
        help="render every record before listening, so that serving a full sync costs no rendering "
        "(throughput benchmarks: a partner renders on its own servers); about 1.4 KB per record "
        "in a temporary file",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        action="append",
        default=None,
        metavar="PRESET[:N]",
        help="inject faults (repeatable; windows start at the first request): "
        + fault_presets.PRESET_HELP.replace("%", "%%"),
    )
    parser.add_argument(
        "--webhook",
        type=_webhook,
        action="append",
        default=[],
        metavar="ACCOUNT=URL",
        help="deliver ACCOUNT's change notifications (on each /_sim/.../mutate) to URL, signed or "
        "authenticated with --webhook-secret as its partner does (repeatable)",
    )
    parser.add_argument(
        "--webhook-secret",
        action="append",
        default=[],
        metavar="SECRET",
        help="what --webhook deliveries are authenticated with: a Svix whsec_ secret, a Basic "
        "login:password, a URL token (repeatable: a Svix sender signs with each, as in a rotation)",
    )
    parser.add_argument(
        "--webhook-faults",
        type=_delivery_faults,
        default=DeliveryFaults(),
        metavar="SPEC",
        help="delivery faults, e.g. duplicate=0.2,reorder,delay-ms=0-500",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the fault draws (same seed, same faults)",
    )


def _webhook(value: str) -> tuple[str, str]:
    account, sep, url = value.partition("=")
    if not sep or not account or not url:
        raise argparse.ArgumentTypeError("expected ACCOUNT=URL")
    return account, url


def _delivery_faults(value: str) -> DeliveryFaults:
    """``duplicate=0.2,reorder,delay-ms=0-500``."""
    duplicate, reorder, delay = 0.0, False, (0.0, 0.0)
    try:
        for part in filter(None, value.split(",")):
            key, _, arg = part.partition("=")
            if key == "duplicate":
                duplicate = float(arg)
            elif key == "reorder" and not arg:
                reorder = True
            elif key == "delay-ms":
                low, high = _latency(arg)
                delay = (low / 1000, high / 1000)
            else:
                raise ValueError(f"unknown {part!r}")
        return DeliveryFaults(duplicate, reorder, delay)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc} (expected duplicate=SHARE,reorder,delay-ms=MIN-MAX)"
        ) from None


def options_from_args(args: argparse.Namespace) -> server.SimulateOptions:
    from syncd.simulator import server  # only where the simulator runs (see DEFAULT_HOST)
    from syncd.simulator.profile import DOCUMENTED, discover

    partners = list(discover())
    if isinstance(args.accounts, int):
        accounts = dict.fromkeys(partners, args.accounts)
    else:
        unknown = set(args.accounts) - set(partners)
        if unknown:
            raise ValueError(f"no simulator profile {', '.join(sorted(unknown))}; have {', '.join(partners)}")
        accounts = args.accounts
    cap = args.max_tokens_per_day
    return server.SimulateOptions(
        host=args.host,
        port=args.port,
        seed=args.seed,
        listings=args.listings,
        reservations_per_listing=args.reservations_per_listing,
        accounts=accounts,
        latency_ms=args.latency_ms,
        limits_enabled=not args.no_limits,
        limit_factor=args.limit_factor,
        token_ttl_s=DOCUMENTED if args.token_ttl is None else args.token_ttl,
        max_tokens_per_day=DOCUMENTED if cap is None else cap or None,
        allow_non_loopback=args.allow_non_loopback,
        generation=args.generation,
        prerender=args.prerender,
        faults=_combined(args.faults, args.fault_seed),
        webhooks=_subscriptions(args),
    )


def _subscriptions(args: argparse.Namespace) -> dict[str, Subscription]:
    if args.webhook and not args.webhook_secret:
        raise ValueError("--webhook needs at least one --webhook-secret")
    hooks = {account: WebhookHook(url, tuple(args.webhook_secret)) for account, url in args.webhook}
    return {account: Subscription(hook, args.webhook_faults) for account, hook in hooks.items()}


def _combined(specs: list[FaultSpec] | None, seed: int) -> FaultSpec | None:
    if not specs:
        return None
    combined = FaultSpec((), seed)
    for spec in specs:
        combined = combined + spec
    return combined


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncd.simulator", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    from syncd.simulator import server

    if not args.allow_non_loopback and not server.is_loopback(args.host):
        parser.error(f"refusing to bind {args.host!r}: pass --allow-non-loopback to expose the simulator")
    try:
        options = options_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server.serve(options)
    except ValueError as exc:  # from building the accounts (an unknown --webhook account)
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
