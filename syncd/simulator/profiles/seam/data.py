"""One simulated Seam workspace: lock devices and their access codes, with ground truth.

Codes settle asynchronously, as on real locks: a created or updated code is ``setting``
until ``settle_s`` has passed on the simulator's clock, then ``set`` (or, on a device
scripted to fail, still ``setting`` with ``errors: [failed_to_set_on_device]``). Settling is
evaluated whenever the workspace is read, and each settled code leaves an event
(``access_code.set_on_device`` / ``access_code.failed_to_set_on_device``) for the webhook
sender.

Per-device limits (partners.md section 8): 10 creations, 10 updates and 20 deletions per
minute per device; beyond them the call is refused with 429 before anything is done.

Counters tests read: ``creations_by_key`` (how many codes each idempotency key created: a
retried create that made a second code shows as 2) and the live codes per device and per
name (one per reservation).

[assumption] partners.md does not say whether Seam honours an idempotency key. The
simulator accepts an ``Idempotency-Key`` header and, when ``honour_idempotency`` is on,
answers a repeated key with the code it already made; tests turn it off to prove the
daemon never relies on it.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

import orjson

DEVICE_PREFIX: Final = "device_"
# (action, per minute) per device: partners.md section 8.
DEVICE_LIMITS: Final = {"create": 10, "update": 10, "delete": 20}
FAILED_TO_SET: Final = "failed_to_set_on_device"
MAX_EVENTS: Final = 10_000


def device_id(n: int) -> str:
    return f"{DEVICE_PREFIX}{n}"


@dataclass
class Code:
    id: str
    device_id: str
    name: str | None
    # The PIN: the guest's secret. Rendered in API answers (as Seam does), never in truth.
    pin: str
    starts_at: str | None
    ends_at: str | None
    changed_at: float  # when it was last created or updated (simulator clock)
    status: str = "setting"
    errors: list[dict[str, str]] = field(default_factory=list)
    idempotency_key: str | None = None
    created_at: str = ""

    def render(self) -> bytes:
        return orjson.dumps(
            {
                "access_code_id": self.id,
                "device_id": self.device_id,
                "name": self.name,
                "code": self.pin,
                "type": "time_bound" if self.starts_at else "ongoing",
                "status": self.status,
                "starts_at": self.starts_at,
                "ends_at": self.ends_at,
                "errors": self.errors,
                "warnings": [],
                "is_managed": True,
                "created_at": self.created_at,
            }
        )


class RateRefused(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("rate limited")
        self.retry_after_s = retry_after_s


class SeamWorkspace:
    """The dataset behind one simulated API key."""

    def __init__(
        self,
        seed: int,
        devices: int,
        *,
        settle_s: float = 1.0,
        failing_devices: frozenset[str] = frozenset(),
        honour_idempotency: bool = True,
        limits_per_min: dict[str, int] | None = None,
    ) -> None:
        self.seed = seed
        self.devices = [device_id(n) for n in range(1, devices + 1)]
        self.settle_s = settle_s
        self.failing_devices = set(failing_devices)
        self.honour_idempotency = honour_idempotency
        self.limits_per_min = dict(DEVICE_LIMITS if limits_per_min is None else limits_per_min)
        self.codes: dict[str, Code] = {}
        self.creations_by_key: Counter[str] = Counter()
        self.deleted = 0
        self.updated = 0
        self.events: list[bytes] = []
        self._calls: dict[tuple[str, str], deque[float]] = {}
        self._sequence = 0

    # -- limits --------------------------------------------------------------------------

    def admit(self, device: str, action: str, now: float) -> None:
        """Counts a call against the device's per-minute limit; RateRefused beyond it."""
        limit = self.limits_per_min.get(action)
        if not limit:
            return
        window = self._calls.setdefault((device, action), deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            raise RateRefused(max(0.1, window[0] + 60.0 - now))
        window.append(now)

    # -- codes ---------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Codes whose time has come become ``set`` (or fail on a failing device)."""
        for code in self.codes.values():
            if code.status != "setting" or code.errors or now - code.changed_at < self.settle_s:
                continue
            if code.device_id in self.failing_devices:
                code.errors = [{"error_code": FAILED_TO_SET, "message": "Failed to set code on device"}]
                self._event("access_code.failed_to_set_on_device", code)
            else:
                code.status = "set"
                self._event("access_code.set_on_device", code)

    def _event(self, kind: str, code: Code) -> None:
        self._sequence += 1
        if len(self.events) >= MAX_EVENTS:  # nobody subscribed: keep the latest only
            del self.events[0]
        self.events.append(
            orjson.dumps(
                {
                    "event_id": f"evt_{self.seed}_{self._sequence:08d}",
                    "event_type": kind,
                    "access_code_id": code.id,
                    "device_id": code.device_id,
                    "created_at": code.created_at,
                }
            )
        )

    def take_events(self, now: float) -> list[bytes]:
        self.settle(now)
        out, self.events = self.events, []
        return out

    def create(
        self,
        device: str,
        name: str | None,
        starts_at: str | None,
        ends_at: str | None,
        key: str | None,
        now: float,
        wall: str,
    ) -> Code:
        if key is not None and self.honour_idempotency:
            for code in self.codes.values():
                if code.idempotency_key == key:
                    return code
        ident = f"ac_{self.seed}_{len(self.codes) + self.deleted + 1:06d}_{secrets.token_hex(3)}"
        pin = f"{secrets.randbelow(10**6):06d}"
        code = Code(ident, device, name, pin, starts_at, ends_at, now, idempotency_key=key, created_at=wall)
        self.codes[ident] = code
        self.creations_by_key[key or f"(no key) {ident}"] += 1
        return code

    def update(self, code: Code, starts_at: str | None, ends_at: str | None, now: float) -> Code:
        if (code.starts_at, code.ends_at) != (starts_at, ends_at):
            code.starts_at, code.ends_at = starts_at, ends_at
            code.status, code.errors, code.changed_at = "setting", [], now
            self.updated += 1
        return code

    def delete(self, code_id: str) -> bool:
        """[assumption] A deleted code is gone at once (real locks pass through ``removing``;
        partners.md does not say how long, and the daemon treats both alike)."""
        if self.codes.pop(code_id, None) is None:
            return False
        self.deleted += 1
        return True

    def listed(self, device: str) -> list[Code]:
        return sorted((c for c in self.codes.values() if c.device_id == device), key=lambda c: c.id)

    # -- ground truth ----------------------------------------------------------------------

    def truth(self) -> list[bytes]:
        """NDJSON lines of every code on the locks now (never the PIN)."""
        return [
            orjson.dumps(
                {
                    "id": c.id,
                    "payload": {
                        "device_id": c.device_id,
                        "name": c.name,
                        "starts_at": c.starts_at,
                        "ends_at": c.ends_at,
                        "status": "failed" if c.errors else c.status,
                        "idempotency_key": c.idempotency_key,
                    },
                }
            )
            + b"\n"
            for c in sorted(self.codes.values(), key=lambda c: c.id)
        ]

    def active_by_name(self) -> Counter[str | None]:
        return Counter(c.name for c in self.codes.values())
