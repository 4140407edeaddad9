"""Assembly: the ``Simulator`` (accounts, limits, log, knobs) and the uvicorn runners.

``SimulatorServer`` runs uvicorn inside the caller's event loop, in its own task group,
so tests and ``syncd demo`` get a real loopback HTTP server without a subprocess.
``serve`` is the blocking entry behind ``syncd simulate`` and ``python -m syncd.simulator``.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import signal
import socket
import sys
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO, TypeVar

import anyio
import orjson
import uvicorn
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.middleware import Middleware

from syncd.simulator import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    control,
    fault_plan,
    fault_wire,
    gateway,
    limits,
    requestlog,
    webhooks,
)
from syncd.simulator.fault_spec import FaultSpec
from syncd.simulator.faults import NO_FAULTS, FaultPlan
from syncd.simulator.profile import (
    DOCUMENTED,
    Account,
    DatasetOptions,
    Profile,
    ProfileSettings,
    discover,
)

D = TypeVar("D")
_STARTUP_TIMEOUT_S = 10.0


class Simulator:
    """Every simulated partner account plus the knobs tests turn (limits, latency, faults).

    Serves every profile ``discover`` finds (or those given), each under ``/{name}``.
    Account ids are unique across partners, so the request log and fault rules can name
    an account without its partner.
    """

    def __init__(
        self,
        *,
        limit_settings: limits.LimitSettings | None = None,
        latency_ms: tuple[float, float] | None = None,
        token_ttl_s: int | Literal["documented"] = DOCUMENTED,
        max_tokens_per_day: int | Literal["documented"] | None = DOCUMENTED,
        faults: FaultPlan = NO_FAULTS,
        log_capacity: int = requestlog.DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        profiles: Iterable[type[Profile[Any]]] | None = None,
    ) -> None:
        self.limit_settings = limit_settings or limits.LimitSettings()
        self.runtime = gateway.Runtime(latency_ms, faults, clock, wall_clock)
        self.request_log = requestlog.RequestLog(log_capacity)
        settings = ProfileSettings(token_ttl_s, max_tokens_per_day)
        classes = discover().values() if profiles is None else profiles
        self.profiles: dict[str, Profile[Any]] = {cls.name: cls(settings, self.runtime) for cls in classes}
        self.accounts: dict[str, Account[Any]] = {}
        self._accounts_of: dict[str, dict[str, Account[Any]]] = {name: {} for name in self.profiles}
        # Delivers accounts' change notifications to their hooks (SimulatorServer runs it).
        self.webhooks = webhooks.WebhookSender(self)

    def profile(self, partner: str) -> Profile[Any]:
        try:
            return self.profiles[partner]
        except KeyError:
            raise ValueError(f"no simulator profile {partner!r}; have {', '.join(self.profiles)}") from None

    def add_account(self, partner: str, account_id: str, secret: str, data: D) -> D:
        """Serve ``data`` (built by the profile's dataset code) as ``account_id`` of ``partner``."""
        profile = self.profile(partner)
        if account_id in self.accounts:
            raise ValueError(f"account {account_id!r} already exists")
        limiter = limits.RateLimiter(
            self.runtime.clock(), profile.tiers, self.limit_settings, profile.max_concurrent
        )
        account = Account(partner, account_id, secret, data, limiter)
        self.accounts[account_id] = self._accounts_of[partner][account_id] = account
        return data

    def add_accounts(
        self, partner: str, count: int, seed: int, size: int, options: DatasetOptions | None = None
    ) -> list[Account[Any]]:
        """Accounts 1..``count`` with the profile's deterministic credentials, seeded ``seed + n - 1``."""
        profile = self.profile(partner)
        for n in range(1, count + 1):
            account_id, secret = profile.credentials(n)
            data = profile.dataset(seed + n - 1, size, options or DatasetOptions())
            self.add_account(partner, account_id, secret, data)
        return self.accounts_of(partner)

    def mutate(self, account_id: str, count: int, seed: int) -> dict[str, object]:
        """``count`` changes to the account's data, announced to its webhook hook if it has
        one; the profile's summary, with ``webhooks``: how many deliveries were queued."""
        account = self.accounts[account_id]
        summary, bodies = self.profile(account.partner).mutate_notify(account.data, count, seed)
        queued = self.webhooks.notify(account, bodies)
        return {**summary, "webhooks": queued} if queued else summary

    def accounts_of(self, partner: str) -> list[Account[Any]]:
        return list(self._accounts_of[partner].values())

    def account(self, account_id: str) -> Any:
        """The dataset behind ``account_id`` (its profile's type: the caller knows which)."""
        return self.accounts[account_id].data

    def issued_credentials(self) -> list[str]:
        """Every live token any profile handed out (tests check none leaks into logs)."""
        return [token for profile in self.profiles.values() for token in profile.issued_credentials()]

    def set_limits(
        self,
        *,
        enabled: bool | None = None,
        factor: float | None = None,
        advertise_documented: bool | None = None,
    ) -> limits.LimitSettings:
        """Change enforcement for every account from now on; None keeps a setting as is."""
        current = self.limit_settings
        settings = limits.LimitSettings(
            current.enabled if enabled is None else enabled,
            current.factor if factor is None else factor,
            current.advertise_documented if advertise_documented is None else advertise_documented,
        )
        now = self.runtime.clock()
        for account in self.accounts.values():
            account.limiter.configure(settings, now)
        self.limit_settings = settings
        return settings

    def set_latency(self, latency_ms: tuple[float, float] | None) -> None:
        if latency_ms is not None and not 0 <= latency_ms[0] <= latency_ms[1]:
            raise ValueError("latency must satisfy 0 <= min_ms <= max_ms")
        self.runtime.latency_ms = latency_ms

    def set_faults(self, plan: FaultPlan | FaultSpec | None) -> FaultPlan:
        """Install a plan (a ``FaultSpec`` becomes a fresh ``SeededFaultPlan``); None clears.

        Faults touch only partner routes, never the ``/_sim/`` control plane.
        """
        if plan is None:
            plan = NO_FAULTS
        elif isinstance(plan, FaultSpec):
            plan = fault_plan.SeededFaultPlan(plan)
        self.runtime.faults = plan
        return plan

    def create_app(self) -> Starlette:
        routes = [
            route
            for name, profile in self.profiles.items()
            for route in gateway.Gateway(profile, self._accounts_of[name], self.runtime).routes()
        ]
        return fault_wire.WiredStarlette(
            routes=[*routes, *control.routes(self)],
            middleware=[Middleware(requestlog.RequestLogMiddleware, log=self.request_log)],
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to its host and says when it is listening (also
    for tests serving an app of their own in their event loop)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _State(enum.Enum):
    UNOPENED = 1
    OPEN = 2
    CLOSED = 3


class SimulatorServer:
    """``async with SimulatorServer(sim) as server:`` serves ``sim`` on ``server.base_url``."""

    def __init__(
        self,
        sim: Simulator,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        allow_non_loopback: bool = False,
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        """``certificate``: (certificate chain, key) PEM files to serve HTTPS with, as a
        partner's sandbox with a private CA, or a TLS-inspecting proxy, presents."""
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(f"refusing to bind {host!r}: the simulator serves loopback only")
        self.sim = sim
        self.host = host
        self.port = port
        self.certificate = certificate
        self._state = _State.UNOPENED
        self._server: EmbeddedServer | None = None
        self._tg: TaskGroup | None = None
        self._sock: socket.socket | None = None
        self._sender_scope: anyio.CancelScope | None = None

    async def _send_webhooks(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self.sim.webhooks.run()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.certificate else 'http'}://{host}:{self.port}"

    def url(self, partner: str, path: str = "") -> str:
        """Where ``partner``'s profile is served: ``{base_url}/{partner}{path}``."""
        return f"{self.base_url}/{partner}{path}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it small responses wait ~40 ms on delayed ACKs.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def __aenter__(self) -> SimulatorServer:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a SimulatorServer can be opened only once")
        self._state = _State.OPEN
        sock = self._sock = self._bind()
        self.port = sock.getsockname()[1]  # the real port when 0 was asked for
        config = uvicorn.Config(
            self.sim.create_app(),
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=5,
            ssl_certfile=self.certificate[0] if self.certificate else None,
            ssl_keyfile=self.certificate[1] if self.certificate else None,
        )
        server = self._server = EmbeddedServer(config)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(server.serve, [sock])
        # Cancelled on exit (a scope cancelled before it is entered cancels at once).
        self._sender_scope = anyio.CancelScope()
        self._tg.start_soon(self._send_webhooks, self._sender_scope)
        try:
            with anyio.fail_after(_STARTUP_TIMEOUT_S):
                await server.ready.wait()
        except BaseException:
            server.should_exit = True
            try:
                await self._tg.__aexit__(*sys.exc_info())
            finally:
                sock.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = _State.CLOSED
        assert self._server is not None and self._tg is not None
        self._server.should_exit = True
        if self._sender_scope is not None:
            self._sender_scope.cancel()
        # Hung and trickling fault answers would hold the graceful shutdown for seconds.
        self.sim.runtime.hangs.cancel_all()
        try:
            if exc is None or isinstance(exc, Exception):
                # A failing body still gets uvicorn's graceful shutdown; its error propagates.
                await self._tg.__aexit__(None, None, None)
                return None
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            # Cancelled before uvicorn's own shutdown ran: release the port ourselves.
            for listener in getattr(self._server, "servers", []):
                listener.close()
            if self._sock is not None:
                self._sock.close()


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """Everything ``syncd simulate`` / ``python -m syncd.simulator`` can set.

    ``accounts``: how many accounts each partner gets; None serves one account of every
    discovered profile.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    seed: int = 1
    listings: int = 5000
    reservations_per_listing: int = 2
    accounts: Mapping[str, int] | None = None
    latency_ms: tuple[float, float] | None = None
    limits_enabled: bool = True
    limit_factor: float = 1.0
    token_ttl_s: int | Literal["documented"] = DOCUMENTED
    max_tokens_per_day: int | Literal["documented"] | None = DOCUMENTED
    allow_non_loopback: bool = False
    generation: int = 0
    faults: FaultSpec | None = None
    prerender: bool = False
    # Account id -> where its change notifications go (``syncd.simulator.webhooks``).
    webhooks: Mapping[str, webhooks.Subscription] = field(default_factory=dict)


def build_simulator(options: SimulateOptions) -> Simulator:
    """Each partner's accounts ``{partner}-acct-{n}`` (the profile's credentials), seeded ``seed + n - 1``."""
    sim = Simulator(
        limit_settings=limits.LimitSettings(options.limits_enabled, options.limit_factor),
        latency_ms=options.latency_ms,
        token_ttl_s=options.token_ttl_s,
        max_tokens_per_day=options.max_tokens_per_day,
    )
    counts = options.accounts if options.accounts is not None else dict.fromkeys(sim.profiles, 1)
    dataset = DatasetOptions(options.reservations_per_listing, options.generation, options.prerender)
    for partner, count in counts.items():
        sim.add_accounts(partner, count, options.seed, options.listings, dataset)
    if options.faults is not None and options.faults.rules:
        sim.set_faults(options.faults)
    for account_id, subscription in options.webhooks.items():
        sim.webhooks.subscribe(account_id, subscription)
    return sim


async def run(options: SimulateOptions, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT/SIGTERM, announcing the URLs and credentials on ``out``."""
    sim = build_simulator(options)
    server = SimulatorServer(sim, options.host, options.port, allow_non_loopback=options.allow_non_loopback)
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            out.write(f"simulator listening on {server.base_url}\n")
            if options.faults is not None and options.faults.rules:
                out.write(f"  faults: {orjson.dumps(options.faults.to_json()).decode()}\n")
            for partner, profile in sim.profiles.items():
                accounts = sim.accounts_of(partner)
                if not accounts:
                    continue
                out.write(f"  {partner}: {server.url(partner)}\n")
                for account in accounts:
                    sizes = " ".join(f"{k}={v}" for k, v in profile.describe(account.data).items())
                    out.write(f"    account id={account.id} secret={account.secret} {sizes}\n")
                    hook = sim.webhooks.subscriptions.get(account.id)
                    if hook is not None:
                        out.write(f"      webhooks -> {hook.hook.url}\n")
            out.flush()
            async for _ in signals:
                break


def serve(options: SimulateOptions, out: TextIO = sys.stdout) -> None:
    """Blocking entry point; runs its own event loop (uvloop when available)."""
    anyio.run(run, options, out, backend_options={"use_uvloop": sys.platform != "win32"})
