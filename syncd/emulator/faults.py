"""Fault injection: 5xx answers, 429 with ``Retry-After``, latency and dropped connections.

A ``Faults`` value says how often each fault happens; a ``FaultInjector`` draws, per request,
from a random generator that ``seed`` makes repeatable (for one client sending requests one at a
time, the same seed gives the same faults in the same places). ``FaultMiddleware`` applies the
draw in front of the API. The admin paths under ``/_emulator`` are never faulted, so a test can
always switch faults off again.

A dropped connection is closed without any answer, either before the request is processed or
*after* it was (the upload stored, the attachment made): the case that makes a client that
simply retries create duplicates.

A slow commit (``slow_commit_ms``) holds a request for that long once its body has arrived, then
processes it whether or not the client is still there — as the service stores an upload its
client gave up waiting for. (``latency_ms`` is different: it delays the request *before* its
body is read, so a client that leaves meanwhile leaves nothing behind.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.emulator import errors

#: Where the ASGI scope carries the callable that closes the request's connection (set by the
#: emulator's HTTP protocol, see ``server.py``).
ABORT_EXTENSION = "syncd.abort"
#: Where the fault middleware notes what it injected, for the request log.
FAULT_SCOPE_KEY = "syncd.fault"

DropPhase = Literal["random", "before", "after"]
Outcome = Literal["fail", "rate_limit", "drop_before", "drop_after"]
OUTCOMES: tuple[Outcome, ...] = ("fail", "rate_limit", "drop_before", "drop_after")


@dataclass(frozen=True, slots=True)
class Faults:
    """How often, and which, faults the emulator injects. The default injects none.

    ``fail_rate``, ``rate_limit_rate`` and ``drop_rate`` are shares of requests (they may add up
    to at most 1): answered 500/502/503, answered 429, or dropped without an answer.
    ``drop_phase`` chooses whether a drop comes before the request is processed, after it, or
    either at random. ``latency_ms`` delays every request. ``slow_commit_ms`` holds every
    request that long after its body arrived, then processes it even if the client has gone.
    ``match`` (a regular expression searched in ``"METHOD /v1/path"``) limits all of this to
    some requests; ``max_faults`` stops injecting after that many faults. ``retry_after_ms`` is
    what a 429 asks the client to wait.
    """

    fail_rate: float = 0.0
    rate_limit_rate: float = 0.0
    latency_ms: int = 0
    drop_rate: float = 0.0
    seed: int | None = None
    drop_phase: DropPhase = "random"
    retry_after_ms: int = 1000
    match: str | None = None
    max_faults: int | None = None
    slow_commit_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("fail_rate", "rate_limit_rate", "drop_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        total = self.fail_rate + self.rate_limit_rate + self.drop_rate
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"fail_rate + rate_limit_rate + drop_rate must be at most 1, not {total:g}"
            )
        for name in ("latency_ms", "retry_after_ms", "slow_commit_ms"):
            _check_count(name, getattr(self, name), optional=False)
        _check_count("max_faults", self.max_faults, optional=True)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError(f"seed must be an integer or null, not {self.seed!r}")
        if self.drop_phase not in ("random", "before", "after"):
            raise ValueError(
                f"drop_phase must be 'random', 'before' or 'after', not {self.drop_phase!r}"
            )
        if self.match is not None:
            try:
                re.compile(self.match)
            except (re.error, TypeError) as exc:
                raise ValueError(f"match must be a regular expression: {exc}") from None

    def updated(self, **changes: Any) -> Faults:
        """A copy with some fields changed; unknown names are a ValueError."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return dataclasses.asdict(self)


def _check_count(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")


_NO_FAULTS = Faults()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request."""

    latency_s: float = 0.0
    commit_delay_s: float = 0.0
    outcome: Outcome | None = None
    status: int | None = None  # for "fail": 500, 502 or 503


class FaultInjector:
    """The current ``Faults``, the random generator they draw from, and what was injected.

    Safe to use from several threads: tests change faults from their own thread while the server
    draws on its event loop.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._inactive = self._faults == _NO_FAULTS
        self._rng = random.Random(self._faults.seed)
        self._counts = dict.fromkeys(OUTCOMES, 0)

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def inactive(self) -> bool:
        """True when no fault setting is made: every draw would inject nothing, and no seed
        makes the sequence of draws matter, so a request may skip it (the server's direct
        path does)."""
        return self._inactive

    def update(self, **changes: Any) -> Faults:
        """Change some settings (a ValueError leaves them as they were).

        Giving ``seed`` (even the same one) restarts the random sequence; giving ``max_faults``
        restarts its count.
        """
        with self._lock:
            self._faults = self._faults.updated(**changes)
            self._inactive = self._faults == _NO_FAULTS
            if "seed" in changes:
                self._rng = random.Random(self._faults.seed)
            if "max_faults" in changes:
                self._counts = dict.fromkeys(OUTCOMES, 0)
            return self._faults

    def replace(self, faults: Faults) -> None:
        """Install ``faults`` from scratch: new random sequence, counts back to zero."""
        with self._lock:
            self._faults = faults
            self._inactive = faults == _NO_FAULTS
            self._rng = random.Random(faults.seed)
            self._counts = dict.fromkeys(OUTCOMES, 0)

    def counts(self) -> dict[str, int]:
        """How many of each fault were injected since the settings were last replaced."""
        with self._lock:
            return {outcome: count for outcome, count in self._counts.items()}

    def decide(self, method: str, path: str) -> Decision:
        """Draw the fate of one request."""
        with self._lock:
            faults = self._faults
            if faults.match is not None and not re.search(faults.match, f"{method} {path}"):
                return Decision()
            latency_s = faults.latency_ms / 1000
            commit_delay_s = faults.slow_commit_ms / 1000
            if faults.max_faults is not None and sum(self._counts.values()) >= faults.max_faults:
                return Decision(latency_s=latency_s, commit_delay_s=commit_delay_s)
            draw = self._rng.random()
            outcome: Outcome | None = None
            status = None
            if draw < faults.fail_rate:
                outcome = "fail"
                status = self._rng.choice((500, 502, 503))
            elif draw < faults.fail_rate + faults.rate_limit_rate:
                outcome = "rate_limit"
            elif draw < faults.fail_rate + faults.rate_limit_rate + faults.drop_rate:
                phase = faults.drop_phase
                if phase == "random":
                    phase = "after" if self._rng.random() < 0.5 else "before"
                outcome = "drop_after" if phase == "after" else "drop_before"
            if outcome is not None:
                self._counts[outcome] += 1
            return Decision(
                latency_s=latency_s, commit_delay_s=commit_delay_s, outcome=outcome, status=status
            )


class _Dropped(Exception):
    """Raised into the app when its answer is to be dropped: the connection is already closed."""


class FaultMiddleware:
    """ASGI middleware that applies the injector's decision to each API request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, *, admin_prefix: str) -> None:
        self.app = app
        self.injector = injector
        self.admin_prefix = admin_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.admin_prefix):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(scope["method"], scope["path"])
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        scope[FAULT_SCOPE_KEY] = decision.outcome
        if decision.outcome is None and decision.commit_delay_s:
            await self._commit_slowly(scope, receive, send, decision.commit_delay_s)
        elif decision.outcome is None:
            await self.app(scope, receive, send)
        elif decision.outcome == "fail":
            assert decision.status is not None
            await drain(receive)
            await _server_error(decision.status)(scope, receive, send)
        elif decision.outcome == "rate_limit":
            await drain(receive)
            limited = errors.rate_limited(self.injector.faults.retry_after_ms)
            await limited.response()(scope, receive, send)
        elif decision.outcome == "drop_before":
            _abort(scope)
            await _wait_for_disconnect(receive)
        else:
            await self._process_then_drop(scope, receive, send)

    async def _commit_slowly(
        self, scope: Scope, receive: Receive, send: Send, delay_s: float
    ) -> None:
        """Wait ``delay_s`` once the body is in, then let the app process the request.

        The app never hears of a client that left during the wait (it is handed the last body
        chunk as if nothing happened, and never reads again); uvicorn discards the answer to a
        closed connection.
        """
        if not _has_body(scope):
            await asyncio.sleep(delay_s)
            await self.app(scope, receive, send)
            return

        async def receive_then_wait() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                await asyncio.sleep(delay_s)
            return message

        await self.app(scope, receive_then_wait, send)

    async def _process_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_nothing(message: Message) -> None:
            if message["type"] == "http.response.start":
                _abort(scope)
            raise _Dropped

        with contextlib.suppress(_Dropped):
            await self.app(scope, receive, send_nothing)
        await _wait_for_disconnect(receive)


def _abort(scope: Scope) -> None:
    abort: Callable[[], None] | None = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is None:
        raise RuntimeError("dropping connections needs the emulator's own HTTP server (server.py)")
    abort()


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


async def drain(receive: Receive) -> None:
    """Read the request body to its end, so the client is not cut off while still sending."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


async def _wait_for_disconnect(receive: Receive) -> None:
    # Returning only once the server has seen the connection go keeps it from answering 500
    # on our behalf ("ASGI callable returned without starting response").
    while (await receive())["type"] != "http.disconnect":
        pass


def _server_error(status: int) -> Response:
    if status == 502:
        # In front of the real API a 502 comes from the proxy, as HTML: clients must not assume
        # every error body is JSON.
        body = (
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        return Response(body, status_code=502, headers={"content-type": "text/html"})
    return errors.server_error(status).response()
