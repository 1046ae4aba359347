"""Pacing by the service's ``x-ratelimit-*`` headers — UNIT tests over ``httpx2.MockTransport``
with a fake (or, for threads, a real) clock. Against the emulator's ``--rate-limits`` in
test_api_vector_stores.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from syncd.api import Client, RetryPolicy
from syncd.api.pacing import Pacer, bucket_of, parse_duration

from .fakes import FakeTime, mock_client

FILE = {
    "id": "file-1",
    "object": "file",
    "bytes": 1,
    "created_at": 1,
    "filename": "a.txt",
    "purpose": "assistants",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("1.2s", 1.2),
        ("1m3s", 63.0),
        ("6m0s", 360.0),
        ("1m", 60.0),
        ("2h0m0s", 7200.0),
        ("1m500ms", 60.5),
        ("7", 7.0),
        ("0s", 0.0),
        ("", None),
        ("soon", None),
        ("3d", None),
    ],
)
def test_reset_durations_are_read_as_the_service_writes_them(text, seconds):
    result = parse_duration(text)
    assert result == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("method", "path", "bucket"),
    [
        ("POST", "/files", "uploads"),
        ("POST", "/uploads", "uploads"),
        ("POST", "/uploads/upload_1/parts", "uploads"),
        ("POST", "/vector_stores/vs_1/files", "attach:vs_1"),
        ("POST", "/vector_stores/vs_1/file_batches", "attach:vs_1"),
        ("POST", "/vector_stores/vs_2/files", "attach:vs_2"),
        ("POST", "/vector_stores/vs_1/files/file-1", None),  # attribute update
        ("POST", "/vector_stores/vs_1/search", None),
        ("GET", "/files", None),
        ("GET", "/vector_stores/vs_1/files", None),
        ("DELETE", "/files/file-1", None),
    ],
)
def test_what_each_request_spends(method, path, bucket):
    assert bucket_of(method, path) == bucket


def headers(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def test_holds_back_when_only_the_reserve_is_left_and_goes_at_the_reset():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, reserve=1, reset_slack=0)
    pacer.acquire("uploads")  # nothing known yet: goes
    pacer.release("uploads", headers(10, 3, "2s"))
    pacer.acquire("uploads")
    pacer.release("uploads", headers(10, 2, "2s"))
    assert fake.sleeps == []
    pacer.acquire("uploads")  # 2 left, one in flight would leave the reserve: still goes
    pacer.acquire("uploads")  # 2 left, 1 in flight: only the reserve is left
    assert fake.sleeps == [2.0]
    assert pacer.waited == {"uploads": 2.0}


def test_an_answer_overtaken_by_a_newer_one_does_not_raise_the_budget():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, reserve=1, reset_slack=0)
    pacer.acquire("uploads")
    pacer.acquire("uploads")
    # The second request's answer (2 left) arrives before the first's (3 left).
    pacer.release("uploads", headers(10, 2, "10s"))
    pacer.release("uploads", headers(10, 3, "10.05s"))
    assert pacer.budget("uploads") == (2, 10, pytest.approx(10.05))
    pacer.acquire("uploads")  # 2 left: one goes...
    assert fake.sleeps == []
    pacer.acquire("uploads")  # ...and the next would spend the reserve
    assert fake.sleeps == [pytest.approx(10.05)]


def test_a_new_budget_period_replaces_the_old_one():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, reserve=1, reset_slack=0)
    pacer.acquire("uploads")
    pacer.release("uploads", headers(10, 1, "2s"))
    pacer.acquire("uploads")  # waits for the reset
    assert fake.sleeps == [2.0]
    pacer.release("uploads", headers(10, 9, "60s"))
    assert pacer.budget("uploads") == (9, 10, 60.0)


def test_buckets_are_independent():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, reserve=0)
    pacer.acquire("attach:vs_1")
    pacer.release("attach:vs_1", headers(300, 0, "10s"))
    pacer.acquire("attach:vs_2")
    pacer.acquire("uploads")
    assert fake.sleeps == []
    pacer.acquire("attach:vs_1")
    assert fake.sleeps == [pytest.approx(10.1)]  # the announced reset, and the slack for rounding


def test_a_429_closes_the_bucket_for_every_caller_for_the_retry_after():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    pacer.acquire("uploads")
    pacer.release("uploads", None, retry_after=4.0)
    pacer.acquire("uploads")
    assert fake.sleeps == [4.0]


def test_an_answer_without_usable_headers_changes_nothing():
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, reserve=0)
    pacer.acquire("uploads")
    pacer.release("uploads", {"x-ratelimit-remaining-requests": "0"})  # no reset: ignored
    pacer.acquire("uploads")
    pacer.release("uploads", {"x-ratelimit-remaining-requests": "x", **headers(5, 0, "1s")})
    assert fake.sleeps == []


class WindowService:
    """A fake service with a fixed window: ``limit`` uploads per ``window`` seconds of
    ``clock``, answering 429 with Retry-After past it, and the rate-limit headers always."""

    def __init__(self, limit: int, window: float, clock) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.start = clock()
        self.used = 0
        self.refused = 0
        self.accepted = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        with self.lock:
            now = self.clock()
            if now - self.start >= self.window:
                self.start += self.window * ((now - self.start) // self.window)
                self.used = 0
            reset = self.start + self.window - now
            ms = f"{max(reset, 0.0) * 1000:.0f}ms"
            if self.used >= self.limit:
                self.refused += 1
                return httpx2.Response(
                    429,
                    json={"error": {"message": "slow down", "type": "requests", "code": None}},
                    headers={**headers(self.limit, 0, ms), "retry-after-ms": f"{reset * 1000:.0f}"},
                )
            self.used += 1
            self.accepted += 1
            return httpx2.Response(
                200, json=FILE, headers=headers(self.limit, self.limit - self.used, ms)
            )


def test_a_burst_of_uploads_is_paced_to_the_window_with_no_429(tmp_path: Path):
    fake = FakeTime()
    service = WindowService(limit=10, window=60.0, clock=fake.clock)
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    with mock_client(service, fake) as client:
        for _ in range(35):
            client.create_file(path, "assistants")
    assert service.refused == 0
    assert service.accepted == 35
    # 9 per window (one kept in reserve): the 35th upload goes in the fourth window, 0.1 s
    # (the slack for the service's rounding) after it opens.
    assert fake.now - 1000.0 == pytest.approx(180.1)


def test_threads_sharing_a_client_stay_within_the_budget(tmp_path: Path):
    """Eight threads, 60 uploads, a real 0.25 s window of 8: the in-flight count keeps them from
    all spending the same last request."""
    service = WindowService(limit=8, window=0.25, clock=time.monotonic)
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    retry = RetryPolicy(base_delay=0.01, max_delay=0.05)
    client = Client(
        "http://127.0.0.1:9/v1", "sk-test", retry=retry, transport=httpx2.MockTransport(service)
    )
    with client, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.create_file(path, "assistants"), range(60)))
    assert service.accepted == 60
    assert service.refused <= 2
