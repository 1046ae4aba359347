"""systemd's service notification protocol, spoken directly over ``NOTIFY_SOCKET``.

A ``Type=notify`` service tells the service manager how it is doing by sending small
datagrams of ``KEY=value`` lines to the ``AF_UNIX`` socket named in ``$NOTIFY_SOCKET``
(see sd_notify(3)). It takes a few lines, so syncd needs no libsystemd binding:

* ``READY=1`` once start-up is complete (for syncd: after the first full pass),
* ``STATUS=…`` a one-line summary that ``systemctl status`` shows,
* ``WATCHDOG=1`` a keep-alive, due every half of ``$WATCHDOG_USEC``,
* ``RELOADING=1`` / ``STOPPING=1`` around a reload and at shutdown.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so callers never check.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


def _socket_address(value: str) -> str | bytes:
    """The address to send to: a path, or an abstract socket when it starts with ``@``."""
    if value.startswith("@"):
        # Linux abstract namespace: a leading NUL byte instead of the '@'.
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends notifications to the service manager, or does nothing when there is none.

    >>> Notifier.from_environ({}).ready()   # not under systemd: a no-op
    False
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` as systemd sets them.

        The watchdog applies only to this process: when ``WATCHDOG_PID`` names another
        process (the variables were inherited), it is ignored, as sd_watchdog_enabled(3) says.
        """
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC") and (not pid or pid == str(os.getpid())):
            try:
                usec = int(env["WATCHDOG_USEC"])
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", env["WATCHDOG_USEC"])
            else:
                usec = usec if usec > 0 else None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the configured timeout), or None."""
        if self._address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram. Returns True if it was sent.

        A failure to notify is logged once and otherwise ignored: the service manager
        going away must not take the daemon's work down with it.
        """
        if self._address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("could not notify systemd (%s); carrying on without it", exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete."""
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """Replace the one-line status shown by ``systemctl status``."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive: the main loop is still turning."""
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A configuration reload begins; ``ready()`` ends it.

        ``MONOTONIC_USEC`` is required with ``RELOADING=1`` since systemd 253, and harmless before.
        """
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.send("STOPPING=1")

    def close(self) -> None:
        """Release the socket (notifications after this reopen it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    """STATUS is one line: a newline would start a new assignment."""
    return " ".join(text.split())
