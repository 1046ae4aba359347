"""The service's published request budgets, enforced when the ``rate_limits`` setting is on.

Budgets (per minute, adjustable): ``upload_rpm`` for ``POST /files`` and the Uploads API
("1,000 upload requests a minute per user"), ``attach_rpm`` per vector store for attaching
files and batches together ("300 requests a minute per store"), and ``default_rpm`` for
everything else (an emulator choice: the service's other budgets depend on the account).

Each budget is a window of one minute starting with its first request. Every answer then carries
``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests`` and
``x-ratelimit-reset-requests`` (like ``12ms`` or ``1.2s``, as the service writes them); past the
budget the answer is the service's 429 (type ``requests``, code ``rate_limit_exceeded``) with
``Retry-After``. The admin paths are never limited.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.emulator import errors
from syncd.emulator.faults import drain
from syncd.emulator.knobs import KnobHolder, Knobs

__all__ = ["RateLimitMiddleware", "RateLimiter", "budget_for"]

WINDOW_S = 60.0
_ATTACH = re.compile(r"^/v1/vector_stores/([^/]+)/(?:files|file_batches)$")


def budget_for(method: str, path: str, knobs: Knobs) -> tuple[str, int]:
    """The bucket a request counts against, and its budget per minute."""
    if path.startswith("/v1/uploads") or (method == "POST" and path == "/v1/files"):
        return "uploads", knobs.upload_rpm
    attach = _ATTACH.match(path)
    if method == "POST" and attach:
        return f"attach:{attach.group(1)}", knobs.attach_rpm
    return "default", knobs.default_rpm


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one request is told: its budget, what is left of it, and when it renews."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float


class RateLimiter:
    """Counts requests per bucket in one-minute windows (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def take(self, bucket: str, limit: int) -> Verdict:
        """Count one request against ``bucket``, unless its budget is spent."""
        now = self._clock()
        with self._lock:
            start, used = self._windows.get(bucket, (now, 0))
            if now - start >= WINDOW_S:
                start, used = now, 0
            allowed = used < limit
            if allowed:
                used += 1
            self._windows[bucket] = (start, used)
        reset_s = max(0.0, start + WINDOW_S - now)
        return Verdict(allowed, limit, max(0, limit - used), reset_s)

    def clear(self) -> None:
        """Forget every window (``/_emulator/reset``)."""
        with self._lock:
            self._windows.clear()


def _duration(seconds: float) -> str:
    """``12ms`` below a second, else ``1.2s`` — the service's way of writing resets."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:.1f}s".replace(".0s", "s")


class RateLimitMiddleware:
    """ASGI middleware applying ``RateLimiter`` to the API paths when the setting is on."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, knobs: KnobHolder, *, admin_prefix: str
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.knobs = knobs
        self.admin_prefix = admin_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        knobs = self.knobs.knobs
        if (
            scope["type"] != "http"
            or not knobs.rate_limits
            or scope["path"].startswith(self.admin_prefix)
        ):
            await self.app(scope, receive, send)
            return
        bucket, limit = budget_for(scope["method"], scope["path"], knobs)
        verdict = self.limiter.take(bucket, limit)
        headers = {
            "x-ratelimit-limit-requests": str(verdict.limit),
            "x-ratelimit-remaining-requests": str(verdict.remaining),
            "x-ratelimit-reset-requests": _duration(verdict.reset_s),
        }
        if not verdict.allowed:
            await drain(receive)
            error = errors.rate_limited(max(1, round(verdict.reset_s * 1000)))
            error.headers.update(headers)
            await error.response()(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    answer_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
