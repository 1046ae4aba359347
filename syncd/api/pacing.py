"""Pacing: spend the service's request budgets without running into them.

The service limits some requests per budget ("bucket"): uploads (1,000 a minute per user) and
attaches to each vector store (300 a minute per store, files and batches together). Every answer
in a bucket carries ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests`` and
``x-ratelimit-reset-requests`` (the time until the budget is whole again, like ``12ms``,
``1.2s`` or ``1m3s``). A :class:`Pacer` remembers the last such answer per bucket and holds a
request back while the budget left — less the requests still in flight, which the service may
not have counted yet — is down to the ``reserve``; it goes when the budget resets. So a cold sync
of thousands of files waits where it must instead of collecting hundreds of 429s.

A 429 in spite of that (another client spending the same budget) closes the bucket for the
``Retry-After`` the service gave, so every thread waits, not only the one that was refused; the
refused request itself is retried by the retry policy.

The pacer is shared by all threads of a client; clock and sleep are injected for tests.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("syncd.api")

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?$"
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
#: Answers whose resets fall within this many seconds of each other describe the same budget
#: period (the service rounds resets, and each answer measures from its own moment).
SAME_WINDOW = 1.0
_VECTOR_STORE_ATTACH = re.compile(r"^/vector_stores/(?P<store>[^/]+)/(?:files|file_batches)$")


def parse_duration(text: str) -> float | None:
    """Seconds in a reset value such as ``12ms``, ``1.2s``, ``1m3s``, ``2h0m0s`` or ``7``
    (plain seconds); ``None`` if it is none of those."""
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    match = _DURATION.match(text)
    if match is None:
        return None
    return sum(float(v) * _UNIT_SECONDS[unit] for unit, v in match.groupdict().items() if v)


def bucket_of(method: str, path: str) -> str | None:
    """The budget a request spends, or ``None`` for requests the service does not pace.

    ``POST /files`` and the Uploads calls spend ``uploads``; attaching files to a store, one by
    one or as a batch, spends that store's ``attach:<store id>``.
    """
    if method != "POST":
        return None
    if path == "/files" or path == "/uploads" or path.startswith("/uploads/"):
        return "uploads"
    match = _VECTOR_STORE_ATTACH.match(path)
    if match:
        return f"attach:{match['store']}"
    return None


@dataclass
class _Bucket:
    limit: int | None = None
    remaining: int | None = None  # as the service last reported it
    reset_at: float = 0.0  # when the budget is whole again (our clock)
    in_flight: int = 0


class Pacer:
    """Holds requests back per bucket so that the service's budgets are not overrun.

    ``reserve`` requests of each budget are left unspent, for the answers that are still on
    their way and for other clients of the same key. ``reset_slack`` seconds are added to every
    reset the service announces, because it rounds them (``1.2s``): going a little late costs
    less than a 429. Thread-safe.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        reserve: int = 1,
        reset_slack: float = 0.1,
    ) -> None:
        if reserve < 0:
            raise ValueError(f"reserve must not be negative, not {reserve}")
        if reset_slack < 0:
            raise ValueError(f"reset_slack must not be negative, not {reset_slack}")
        self.reserve = reserve
        self.reset_slack = reset_slack
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        #: Seconds spent waiting per bucket, summed over threads (for benchmarks and tests).
        self.waited: dict[str, float] = {}

    def acquire(self, bucket: str) -> None:
        """Wait until a request in ``bucket`` may go, and count it as in flight.

        Every :meth:`acquire` must be followed by one :meth:`release`.
        """
        while True:
            with self._lock:
                state = self._buckets.setdefault(bucket, _Bucket())
                wait = self._wait_needed(state)
                if wait <= 0:
                    state.in_flight += 1
                    return
                self.waited[bucket] = self.waited.get(bucket, 0.0) + wait
                left, limit = state.remaining, state.limit
            log.info(
                "pacing %s: %s of %s requests left, waiting %.2f s for the budget to reset",
                bucket,
                left,
                limit,
                wait,
            )
            self._sleep(wait)

    def _wait_needed(self, state: _Bucket) -> float:
        """Seconds to wait before the next request of ``state`` (0: go now). Lock held."""
        if state.remaining is None:
            return 0.0  # no answer seen yet: nothing known to spend
        now = self._clock()
        if now >= state.reset_at:
            # The budget is whole again; the next answer says what is really left.
            state.remaining = state.limit
            return 0.0
        if state.remaining - state.in_flight > self.reserve:
            return 0.0
        return state.reset_at - now

    def budget(self, bucket: str) -> tuple[int, int | None, float] | None:
        """What the service last said of ``bucket``: requests remaining, the limit, and seconds
        until the budget is whole again; ``None`` before any answer said so."""
        with self._lock:
            state = self._buckets.get(bucket)
            if state is None or state.remaining is None:
                return None
            return state.remaining, state.limit, max(0.0, state.reset_at - self._clock())

    def release(
        self,
        bucket: str,
        headers: Mapping[str, str] | None,
        *,
        retry_after: float | None = None,
    ) -> None:
        """A request of ``bucket`` is over; ``headers`` are its answer's (``None``: no answer).

        ``retry_after`` is set when the service refused it with 429 and said how long to wait.
        """
        with self._lock:
            state = self._buckets.setdefault(bucket, _Bucket())
            state.in_flight = max(0, state.in_flight - 1)
            now = self._clock()
            if headers is not None:
                self._observe(state, headers, since=now + self.reset_slack)
            if retry_after is not None:
                state.remaining = 0
                state.reset_at = max(state.reset_at, now + retry_after)

    @staticmethod
    def _observe(state: _Bucket, headers: Mapping[str, str], *, since: float) -> None:
        """Take the budget an answer reports; its reset counts from ``since``."""
        limit = _int(headers.get("x-ratelimit-limit-requests"))
        remaining = _int(headers.get("x-ratelimit-remaining-requests"))
        reset = parse_duration(headers.get("x-ratelimit-reset-requests", ""))
        if remaining is None or reset is None:
            return  # this answer says nothing usable about the budget
        state.limit = limit if limit is not None else state.limit
        reset_at = since + reset
        if state.remaining is not None and reset_at <= state.reset_at + SAME_WINDOW:
            # The same budget period as what we know: answers overtake each other on parallel
            # connections, so an older answer may report more left than a newer one did.
            state.remaining = min(state.remaining, remaining)
            state.reset_at = max(state.reset_at, reset_at)
        else:
            state.remaining = remaining
            state.reset_at = reset_at


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


__all__ = ["Pacer", "bucket_of", "parse_duration"]
