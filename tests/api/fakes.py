"""Helpers for the API client's UNIT tests over ``httpx2.MockTransport``: a clock that only moves
when something sleeps, and a client wired to a handler with it."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import httpx2

from syncd.api import Client, RetryPolicy

Handler = Callable[[httpx2.Request], httpx2.Response]


class FakeTime:
    """A monotonic clock that only moves when something sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def mock_client(handler: Handler, fake: FakeTime, **options: object) -> Client:
    """A client sending every request to ``handler``, waiting on ``fake``'s clock."""
    return Client(
        "http://127.0.0.1:9/v1",
        "sk-test",
        retry=RetryPolicy(rng=random.Random(7), base_delay=0.01, max_delay=0.05),
        sleep=fake.sleep,
        clock=fake.clock,
        transport=httpx2.MockTransport(handler),
        **options,  # type: ignore[arg-type]
    )


def multipart_field(request: httpx2.Request, name: str) -> bytes:
    """The raw value of the multipart form field ``name`` of ``request``."""
    body = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    for part in body.split(b"--" + boundary):
        head, _, value = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return value[: -len(b"\r\n")]
    raise AssertionError(f"no field {name!r} in the request")
