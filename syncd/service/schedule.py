"""When the daemon runs a pass of its own accord: the next full pass, the next retry of failed
uploads, idling after the key was refused, and backing off while the service is unreachable.

Batches of settled paths are the watchers' business; this is the rest of the daemon's clock.
All times are on ``clock`` (monotonic seconds) except a manifest's retry time, which is wall
time; both clocks and the jitter are injected so that the rules are tested without waiting.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Literal

__all__ = [
    "FULL_PASS_MAX_DELAY",
    "RETRY_MIN_WAIT",
    "SERVICE_RETRY_SECONDS",
    "FullPass",
    "Schedule",
]

#: After the service could not be reached, the first retry of a full pass; doubles up to
#: the rescan interval.
SERVICE_RETRY_SECONDS = 10.0
#: The shortest wait before a pass for failed uploads whose backoff is over.
RETRY_MIN_WAIT = 5.0
#: How long a due full pass waits for files being written to settle.
FULL_PASS_MAX_DELAY = 60.0

#: Whether a full pass is to run now (``due``), waits for files being written (``held``), or
#: is not due yet.
FullPass = Literal["not_due", "held", "due"]


class Schedule:
    """The daemon's timetable. ``rescan_interval``: seconds between full passes (±10 %
    jitter, so that several daemons do not beat in step)."""

    def __init__(
        self,
        rescan_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.interval = rescan_interval
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self.next_full = 0.0  # the first full pass is due at once
        self.next_retry: float | None = None  # failed uploads are due again
        self.idle_until: float | None = None  # after the API key was refused
        self._service_retry = SERVICE_RETRY_SECONDS
        self._started = False

    def start(self) -> None:
        """The first full pass is done: the next one comes an interval later — or sooner,
        if that pass failed and brought it forward (:meth:`pass_failed`)."""
        interval = self._next_interval()
        self.next_full = interval if not self._started else min(self.next_full, interval)
        self._started = True

    def reconfigure(self, rescan_interval: float) -> None:
        """A new configuration: a shorter interval takes effect at once, and a refused key
        may have been replaced, so idling ends."""
        self.interval = rescan_interval
        self.idle_until = None
        self.next_full = min(self.next_full, self._next_interval())

    def wake_at(self) -> float:
        """The earliest time something here is due."""
        return min(self.next_full, math.inf if self.next_retry is None else self.next_retry)

    def idle(self) -> bool:
        """Whether the daemon idles because its key was refused. When the wait is over, a full
        pass is due at once."""
        if self.idle_until is None:
            return False
        if self._clock() < self.idle_until:
            return True
        self.idle_until = None
        self.next_full = 0.0
        return False

    def full_pass(self, *, writing: bool) -> FullPass:
        """Whether a full pass is due. One due while files are being written (``writing``)
        waits for them, up to :data:`FULL_PASS_MAX_DELAY`: a full scan could read one
        half-written. When it is due the next one is scheduled already, so that a pass the
        service cuts short can bring the next one forward."""
        now = self._clock()
        if now < self.next_full:
            return "not_due"
        if writing and now - self.next_full < FULL_PASS_MAX_DELAY:
            return "held"
        self.next_full = self._next_interval()
        return "due"

    def retry_due(self) -> bool:
        """Whether failed uploads are due again (then the retry is taken off the timetable)."""
        if self.next_retry is None or self._clock() < self.next_retry:
            return False
        self.next_retry = None
        return True

    def retry_at(self, due: float | None) -> None:
        """The manifest's earliest retry (wall time), or None. It is kept at least
        :data:`RETRY_MIN_WAIT` away, so that a file the engine holds back for a reason of its
        own cannot spin the loop."""
        if due is None:
            self.next_retry = None
        else:
            self.next_retry = self._clock() + max(RETRY_MIN_WAIT, due - self._wall_clock())

    def pass_failed(self) -> float:
        """A pass failed (the service unreachable, the state directory full, …) and what it
        was to do is not done: the next full pass, which covers it, comes forward. Returns
        the wait, which doubles each time, up to the rescan interval."""
        wait = self._service_retry
        self._started = True  # the first pass's failure: start() keeps this time
        self.next_full = min(self.next_full if self.next_full else math.inf, self._clock() + wait)
        self._service_retry = min(2 * wait, self.interval)
        return wait

    def pass_succeeded(self) -> None:
        """A pass did its work: the back-off starts over."""
        self._service_retry = SERVICE_RETRY_SECONDS

    def key_refused(self) -> None:
        """The key was refused: idle for an interval (or until the configuration is reloaded)."""
        self.idle_until = self._clock() + self.interval

    def _next_interval(self) -> float:
        return self._clock() + self.interval * self._jitter(0.9, 1.1)
