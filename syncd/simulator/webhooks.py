"""The generic webhook sender: each account's change notifications, delivered as its partner would.

A profile turns its mutations into event bodies and authenticates each attempt
(``Profile.mutate_notify`` / ``webhook_request``); this module delivers them to the
account's configured hook over loopback HTTP, like a partner's delivery system:

* retries on anything but 2xx (a refused connection, a 5xx, a 401), with exponential
  backoff, up to ``attempts``; a message keeps its id across retries;
* faults a receiver must survive: ``duplicate`` (the share of messages delivered a
  second time, as retrying senders and cascading ones do), ``reorder`` (each batch sent
  in a shuffled order) and ``delay_s`` (each message held back a random while, so later
  changes can arrive first).

Counters (``stats``) say what happened: messages queued, attempts, delivered, failed.
Delivery targets must be loopback addresses: the simulator talks to nothing else.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx

from syncd.simulator.profile import Account, WebhookHook

if TYPE_CHECKING:
    from syncd.simulator.server import Simulator

QUEUE_SIZE = 100_000
CONCURRENCY = 32
# How often subscribed accounts are asked for changes their partner made on its own.
POLL_S = 0.25


def is_loopback_url(url: str) -> bool:
    from syncd.simulator.server import is_loopback

    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")


@dataclass(frozen=True)
class DeliveryFaults:
    duplicate: float = 0.0
    reorder: bool = False
    delay_s: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not 0 <= self.duplicate <= 1:
            raise ValueError("duplicate must be a share between 0 and 1")
        if not 0 <= self.delay_s[0] <= self.delay_s[1]:
            raise ValueError("delay_s must satisfy 0 <= low <= high")


@dataclass(frozen=True)
class Subscription:
    hook: WebhookHook
    faults: DeliveryFaults = DeliveryFaults()


@dataclass
class SenderStats:
    queued: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0  # the queue was full
    statuses: dict[int, int] = field(default_factory=dict)  # 0: no answer

    def to_json(self) -> dict[str, object]:
        return {
            "queued": self.queued,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


@dataclass(frozen=True)
class _Message:
    account: Account[Any]
    subscription: Subscription
    body: bytes
    message_id: str
    delay_s: float


class WebhookSender:
    def __init__(
        self,
        sim: Simulator,
        *,
        attempts: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        self._sim = sim
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._rng = random.Random(seed)
        self.subscriptions: dict[str, Subscription] = {}
        self.stats = SenderStats()
        self._sequence = 0
        self._queue: deque[_Message] = deque()
        # Set when messages wait; created by ``run`` (an event needs the running loop).
        self._waiting: anyio.Event | None = None
        self._in_flight = 0

    def subscribe(self, account_id: str, subscription: Subscription | None) -> None:
        """Send ``account_id``'s notifications as ``subscription`` says (None: stop)."""
        if subscription is None:
            self.subscriptions.pop(account_id, None)
            return
        account = self._sim.accounts.get(account_id)
        if account is None:
            raise ValueError(f"unknown account {account_id!r}")
        if not is_loopback_url(subscription.hook.url):
            raise ValueError("webhook URLs must be http(s) on a loopback address")
        if not subscription.hook.secrets:
            raise ValueError("a webhook hook needs at least one secret")
        # Fails now, not at the first delivery, for a partner without webhooks or a secret
        # its scheme cannot use.
        self._sim.profile(account.partner).webhook_request(subscription.hook, b"{}", "probe", 0.0)
        self.subscriptions[account_id] = subscription

    def notify(self, account: Account[Any], bodies: Sequence[bytes]) -> int:
        """Queues ``bodies`` for ``account``'s hook (none when it has no hook); how many."""
        subscription = self.subscriptions.get(account.id)
        if subscription is None or not bodies:
            return 0
        faults = subscription.faults
        order = list(bodies)
        if faults.reorder:
            self._rng.shuffle(order)
        queued = 0
        for body in order:
            self._sequence += 1
            copies = 2 if self._rng.random() < faults.duplicate else 1
            message_id = f"msg_{account.id}_{self._sequence:09d}"
            for _ in range(copies):
                delay = self._rng.uniform(*faults.delay_s) if faults.delay_s[1] > 0 else 0.0
                if len(self._queue) >= QUEUE_SIZE:
                    self.stats.dropped += 1
                    continue
                self._queue.append(_Message(account, subscription, body, message_id, delay))
                self._in_flight += 1
                queued += 1
        self.stats.queued += queued
        if queued and self._waiting is not None:
            self._waiting.set()
        return queued

    async def drained(self, poll_s: float = 0.01) -> None:
        """Returns once every queued message is delivered or given up (for tests and
        benchmarks; polls, as nothing else waits on it)."""
        while self._in_flight:  # noqa: ASYNC110
            await anyio.sleep(poll_s)

    async def run(self) -> None:
        """Delivers until cancelled, ``CONCURRENCY`` messages at a time."""
        # A semaphore, not a CapacityLimiter: the loop acquires, the delivery task releases.
        limiter = anyio.Semaphore(CONCURRENCY)
        async with (
            httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client,
            anyio.create_task_group() as tg,
        ):
            while True:
                self._waiting = anyio.Event()
                self._poll_partners()
                while self._queue:
                    await limiter.acquire()
                    tg.start_soon(self._deliver_and_release, client, self._queue.popleft(), limiter)
                if not self._queue:
                    with anyio.move_on_after(POLL_S):
                        await self._waiting.wait()

    def _poll_partners(self) -> None:
        """Queues what subscribed accounts' partners changed on their own (``Profile.
        pending_notifications``)."""
        for account_id in list(self.subscriptions):
            account = self._sim.accounts.get(account_id)
            if account is not None:
                self.notify(account, self._sim.profile(account.partner).pending_notifications(account.data))

    async def _deliver_and_release(
        self, client: httpx.AsyncClient, message: _Message, limiter: anyio.Semaphore
    ) -> None:
        try:
            if message.delay_s > 0:
                await anyio.sleep(message.delay_s)
            await self._deliver(client, message)
        finally:
            limiter.release()
            self._in_flight -= 1

    async def _deliver(self, client: httpx.AsyncClient, message: _Message) -> None:
        profile = self._sim.profile(message.account.partner)
        for attempt in range(self.attempts):
            if attempt:
                await anyio.sleep(self.backoff_s * 2 ** (attempt - 1))
            url, headers = profile.webhook_request(
                message.subscription.hook, message.body, message.message_id, self._sim.runtime.wall_clock()
            )
            self.stats.attempts += 1
            try:
                response = await client.post(url, content=message.body, headers=headers)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                self.stats.delivered += 1
                return
        self.stats.failed += 1
