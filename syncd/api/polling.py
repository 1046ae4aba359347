"""Polling an object until it leaves a working state, at the pace the service asks for.

The service's answers to the calls clients poll carry ``openai-poll-after-ms``: how long to wait
before asking again (the official SDKs' polling helpers honour it, else wait 1 s).
:func:`poll_until` follows that under a deadline and returns the last state it saw when the
deadline comes, so a file that stays ``in_progress`` (it happens) is reported by the caller as
such rather than raised as a timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

#: Seconds between polls when the service gives no ``openai-poll-after-ms``.
DEFAULT_POLL_INTERVAL = 1.0


def poll_after(headers: Mapping[str, str]) -> float | None:
    """The ``openai-poll-after-ms`` hint of an answer, in seconds (``None`` if absent or bad)."""
    value = headers.get("openai-poll-after-ms")
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms / 1000 if ms >= 0 else None


def poll_until(
    fetch: Callable[[], tuple[T, float | None]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    default_interval: float = DEFAULT_POLL_INTERVAL,
) -> T:
    """Call ``fetch`` (returning a state and its poll hint in seconds) until ``done(state)`` or
    ``timeout`` seconds have passed; return the last state either way.

    Waits between calls as the hint says, else ``default_interval``; the last wait is cut short
    so that one more look is taken exactly at the deadline.
    """
    deadline = clock() + timeout
    while True:
        state, hint = fetch()
        if done(state):
            return state
        left = deadline - clock()
        if left <= 0:
            return state
        sleep(min(hint if hint is not None else default_interval, left))


__all__ = ["DEFAULT_POLL_INTERVAL", "poll_after", "poll_until"]
