"""systemd's notify protocol: READY=1 once serving, WATCHDOG=1 while healthy, STOPPING=1.

With ``Type=notify`` and ``WatchdogSec=`` in the unit, systemd starts dependants only once
the daemon is really up, and restarts it when the event loop stops answering (a watchdog
ping is sent from the loop itself, and only while it is healthy).

Our own ~30 lines rather than a dependency: the protocol is one datagram per message
on the socket named by $NOTIFY_SOCKET. python-systemd needs libsystemd headers to build,
and the small pure-Python packages (sdnotify) add nothing beyond this and are unmaintained.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class SystemdNotifier:
    """No-op when not started by systemd (no NOTIFY_SOCKET)."""

    address: str | None = None
    watchdog_s: float | None = None  # WatchdogSec, when the unit sets one

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        address = environ.get("NOTIFY_SOCKET") or None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process the watchdog is for (not a child of it).
        mine = not pid or pid == str(os.getpid())
        watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else None
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one message; False (never an exception) when there is no socket or it fails:
        a notification problem must not take the daemon down."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(lines).encode(), target)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "draining") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")
