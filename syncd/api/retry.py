"""When and how long to wait before trying a call again.

The policy is data (:class:`RetryPolicy`); :func:`retrying` turns it into a ``tenacity.Retrying``
for one call. Clock and sleep are injected, so the timing is tested without sleeping.

What is retried: no response at all (connection errors, timeouts), 408, 409, 429 and 5xx. The
service's ``x-should-retry`` header overrides that both ways, as in the official SDK — except
that 401/403 are never retried, because hammering with a bad key helps nobody. The wait is
exponential backoff with full jitter (uniform between 0 and ``min(max_delay, base_delay·2ⁿ)``),
unless the service said how long to wait (``retry-after-ms`` / ``Retry-After``): then that, up
to ``retry_after_cap``. A service that asks for more than :data:`RETRY_AFTER_LIMIT` (120 s) is
not retried at all, as the official SDK does: such a wait belongs to the caller's next pass,
not to a call in progress. Retrying stops after ``max_attempts`` or when the next wait would end
past ``deadline`` seconds from the first attempt; the last error is raised as it was.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from syncd.api.errors import APIError, AuthenticationError, TransportError, UploadOutcomeUnknown

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger("syncd.api")

RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: The longest ``Retry-After`` a call waits for; a longer one ends the call (service facts).
RETRY_AFTER_LIMIT = 120.0


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and deadline for one call.

    ``rng`` makes the jitter reproducible (tests); ``None`` uses the ``random`` module.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float = 300.0
    retry_after_cap: float = RETRY_AFTER_LIMIT
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        for name in ("base_delay", "max_delay", "deadline", "retry_after_cap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (self.rng or random).uniform(0, ceiling)

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """How long to wait after failed attempt ``attempt`` that raised ``error``."""
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            return min(hint, self.retry_after_cap)
        return self.backoff(attempt)


def is_retryable(error: BaseException) -> bool:
    """Whether a call that failed with ``error`` may simply be sent again."""
    if isinstance(error, UploadOutcomeUnknown | AuthenticationError):
        return False
    if isinstance(error, TransportError):
        return True
    if not isinstance(error, APIError) or error.status is None:
        return False
    if error.should_retry is not None:
        return error.should_retry
    return error.status in RETRYABLE_STATUSES or error.status >= 500


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    what: str = "request",
    start: float | None = None,
) -> tenacity.Retrying:
    """A ``tenacity.Retrying`` that applies ``policy`` to one call, whose first attempt began
    at ``start`` (by ``clock``; default: now).

    ``what`` names the call in the log line written before each wait.
    """
    # Imported here: most calls succeed at once, and a command need not load it to start.
    import tenacity

    start = clock() if start is None else start

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.delay(state.attempt_number, error)

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None)
        if hint is not None and hint > RETRY_AFTER_LIMIT:
            return True
        return clock() - start + state.upcoming_sleep > policy.deadline

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            "retrying %s in %.1f s (attempt %d of %d failed: %s)",
            what,
            state.upcoming_sleep,
            state.attempt_number,
            policy.max_attempts,
            error,
        )

    return tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
