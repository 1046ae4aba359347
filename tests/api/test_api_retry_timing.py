"""Retry timing and classification — UNIT tests over ``httpx2.MockTransport``.

These are the only tests of syncd.api that do not talk HTTP to the emulator: they script exact
status/header sequences and inject a fake clock and sleep, so backoff, Retry-After handling,
caps and deadlines are checked to the millisecond without sleeping. End-to-end behaviour under
faults is tested against the emulator in test_api_faults.py.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx2
import pytest

from syncd.api import (
    APIError,
    AuthenticationError,
    BadRequestError,
    Client,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TimeoutError,
    TransportError,
    UploadOutcomeUnknown,
)

from .fakes import FakeTime

FILE = {
    "id": "file-abc",
    "object": "file",
    "bytes": 3,
    "created_at": 1700000000,
    "filename": "a.txt",
    "purpose": "assistants",
    "status": "processed",
}


Step = httpx2.Response | Exception


def scripted(steps: Iterable[Step]) -> tuple[httpx2.MockTransport, list[httpx2.Request]]:
    """A transport answering each request with the next step; the last one repeats."""
    steps = list(steps)
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    return httpx2.MockTransport(handler), seen


def error(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    body = {"error": {"message": f"boom {status}", "type": "t", "param": None, "code": None}}
    return httpx2.Response(status, json=body, headers={"x-request-id": "req_1", **(headers or {})})


def ok(body: dict | None = None) -> httpx2.Response:
    return httpx2.Response(200, json=body or FILE)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake: FakeTime) -> Callable[..., tuple[Client, list[httpx2.Request]]]:
    def make(steps: Iterable[Step], **policy: object) -> tuple[Client, list[httpx2.Request]]:
        transport, seen = scripted(steps)
        retry = RetryPolicy(**{"rng": random.Random(7), **policy})  # type: ignore[arg-type]
        client = Client(
            "http://127.0.0.1:9/v1",
            "sk-test",
            retry=retry,
            sleep=fake.sleep,
            clock=fake.clock,
            transport=transport,
        )
        return client, seen

    return make


def test_full_jitter_backoff_grows_exponentially_up_to_max_delay(make_client, fake):
    client, seen = make_client([error(503)] * 6 + [ok()], base_delay=1.0, max_delay=5.0)
    assert client.retrieve_file("file-abc").id == "file-abc"
    assert len(seen) == 7
    expected_rng = random.Random(7)
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert fake.sleeps == pytest.approx([expected_rng.uniform(0, c) for c in ceilings])
    assert all(0 <= s <= c for s, c in zip(fake.sleeps, ceilings, strict=True))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        (
            {
                "retry-after": "Wed, 21 Oct 2015 07:28:07 GMT",
                "date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            7.0,
        ),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past: go now
        ({"retry-after": "120"}, 120.0),  # the longest the service may ask to be waited for
    ],
)
def test_retry_after_is_honoured(make_client, fake, headers, expected):
    client, seen = make_client([error(429, headers), ok()])
    client.retrieve_file("file-abc")
    assert len(seen) == 2
    assert fake.sleeps == [pytest.approx(expected)]


def test_retry_after_is_waited_for_at_most_the_cap(make_client, fake):
    client, seen = make_client([error(429, {"retry-after": "90"}), ok()], retry_after_cap=30.0)
    client.retrieve_file("file-abc")
    assert len(seen) == 2
    assert fake.sleeps == [30.0]


@pytest.mark.parametrize("headers", [{"retry-after": "121"}, {"retry-after-ms": "600000"}])
def test_a_retry_after_beyond_two_minutes_is_not_waited_for(make_client, fake, headers):
    client, seen = make_client([error(429, headers), ok()])
    with pytest.raises(RateLimitError) as caught:
        client.retrieve_file("file-abc")
    assert caught.value.retry_after is not None and caught.value.retry_after > 120
    assert len(seen) == 1
    assert fake.sleeps == []


def test_unparseable_retry_after_falls_back_to_backoff(make_client, fake):
    client, _ = make_client([error(503, {"retry-after": "soon"}), ok()], base_delay=2.0)
    client.retrieve_file("file-abc")
    assert fake.sleeps == [pytest.approx(random.Random(7).uniform(0, 2.0))]


def test_gives_up_after_max_attempts_with_the_last_error(make_client, fake):
    client, seen = make_client([error(503)], max_attempts=4)
    with pytest.raises(ServerError) as caught:
        client.retrieve_file("file-abc")
    assert len(seen) == 4
    assert len(fake.sleeps) == 3
    assert caught.value.status == 503
    assert caught.value.request_id == "req_1"
    assert str(caught.value) == "503 boom 503 (request req_1)"


def test_deadline_stops_before_a_wait_that_would_end_past_it(make_client, fake):
    # Every wait is 4 s (Retry-After); the deadline of 10 s allows two of them, not a third.
    client, seen = make_client([error(429, {"retry-after": "4"})], deadline=10.0)
    with pytest.raises(RateLimitError):
        client.retrieve_file("file-abc")
    assert fake.sleeps == [4.0, 4.0]
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (413, BadRequestError),
        (422, BadRequestError),
    ],
)
def test_other_4xx_are_final(make_client, fake, status, exc):
    client, seen = make_client([error(status), ok()])
    with pytest.raises(exc) as caught:
        client.retrieve_file("file-abc")
    assert caught.value.status == status
    assert len(seen) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(make_client, status):
    client, seen = make_client([error(status), ok()])
    assert client.retrieve_file("file-abc").id == "file-abc"
    assert len(seen) == 2


def test_x_should_retry_overrides_the_status(make_client):
    client, seen = make_client([error(503, {"x-should-retry": "false"}), ok()])
    with pytest.raises(ServerError):
        client.retrieve_file("file-abc")
    assert len(seen) == 1

    client, seen = make_client([error(400, {"x-should-retry": "true"}), ok()])
    assert client.retrieve_file("file-abc").id == "file-abc"
    assert len(seen) == 2


def test_x_should_retry_does_not_make_auth_failures_hammer(make_client):
    client, seen = make_client([error(401, {"x-should-retry": "true"}), ok()])
    with pytest.raises(AuthenticationError):
        client.retrieve_file("file-abc")
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("exc", "ours"),
    [
        (httpx2.ConnectError("refused"), TransportError),
        (httpx2.ReadError("reset"), TransportError),
        (httpx2.RemoteProtocolError("server disconnected"), TransportError),
        (httpx2.ReadTimeout("slow"), TimeoutError),
        (httpx2.ConnectTimeout("slow"), TimeoutError),
    ],
)
def test_transport_failures_are_retried_then_raised(make_client, exc, ours):
    client, seen = make_client([exc, ok()])
    assert client.retrieve_file("file-abc").id == "file-abc"
    assert len(seen) == 2

    client, seen = make_client([exc], max_attempts=3)
    with pytest.raises(ours) as caught:
        client.retrieve_file("file-abc")
    assert caught.value.status is None
    assert len(seen) == 3


# --- uploads: not blindly re-sent -------------------------------------------------------------


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc")
    return path


@pytest.mark.parametrize(
    "failure",
    [
        error(500),
        error(503, {"retry-after": "1"}),
        httpx2.ReadTimeout("no answer"),
        httpx2.WriteTimeout("stalled"),
        httpx2.RemoteProtocolError("server disconnected without a response"),
        httpx2.ReadError("connection reset"),
    ],
)
def test_upload_with_unknown_outcome_is_reported_not_resent(make_client, fake, upload, failure):
    client, seen = make_client([failure, ok()])
    with pytest.raises(UploadOutcomeUnknown) as caught:
        client.create_file(upload, "assistants")
    assert len(seen) == 1
    assert fake.sleeps == []
    unknown = caught.value
    assert (unknown.filename, unknown.size, unknown.purpose) == ("a.txt", 3, "assistants")
    assert unknown.sent_at > 1_600_000_000
    assert unknown.cause.__class__.__name__ in ("ServerError", "TransportError", "TimeoutError")
    assert "a.txt" in str(unknown)


@pytest.mark.parametrize(
    "failure",
    [
        httpx2.ConnectError("refused"),
        httpx2.ConnectTimeout("no route"),
        error(429, {"retry-after-ms": "10"}),
        error(408),
    ],
)
def test_upload_is_retried_when_nothing_was_stored(make_client, upload, failure):
    client, seen = make_client([failure, ok()])
    assert client.create_file(upload, "assistants").id == "file-abc"
    assert len(seen) == 2
    # The second attempt carries the whole file again, not what was left of the first read.
    assert b"abc" in seen[1].read()


def test_upload_4xx_is_raised_as_is(make_client, upload):
    client, seen = make_client([error(400), ok()])
    with pytest.raises(BadRequestError):
        client.create_file(upload, "assistants")
    assert len(seen) == 1


# --- idempotent callers: delete after an uncertain attempt ------------------------------------


def test_delete_that_404s_after_an_uncertain_attempt_counts_as_deleted(make_client):
    client, seen = make_client([httpx2.ReadTimeout("lost answer"), error(404)])
    assert client.delete_file("file-abc") is True
    assert len(seen) == 2


def test_delete_of_a_missing_file_needs_missing_ok(make_client):
    client, _ = make_client([error(404)])
    with pytest.raises(NotFoundError):
        client.delete_file("file-abc")
    client, _ = make_client([error(404)])
    assert client.delete_file("file-abc", missing_ok=True) is False


# --- attach and download retries --------------------------------------------------------------


def test_attach_refused_after_an_uncertain_attempt_is_looked_up(make_client):
    attachment = {
        "id": "file-abc",
        "object": "assistant.file",
        "created_at": 1,
        "assistant_id": "a",
    }
    client, seen = make_client(
        [httpx2.ReadTimeout("lost answer"), error(400), httpx2.Response(200, json=attachment)]
    )
    assert client.create_assistant_file("a", "file-abc").id == "file-abc"
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/assistants/a/files"),
        ("POST", "/v1/assistants/a/files"),
        ("GET", "/v1/assistants/a/files/file-abc"),
    ]


def test_attach_refused_without_an_uncertain_attempt_is_raised(make_client):
    client, seen = make_client([error(400)])
    with pytest.raises(BadRequestError):
        client.create_assistant_file("a", "file-abc")
    assert len(seen) == 1


class BreaksMidway(httpx2.SyncByteStream):
    """A response body that sends some bytes, then loses the connection."""

    def __iter__(self):
        yield b"partial-"
        raise httpx2.ReadError("connection reset mid-body")


def test_download_broken_midway_restarts_from_the_beginning(make_client, tmp_path):
    client, seen = make_client(
        [
            httpx2.Response(200, stream=BreaksMidway()),
            httpx2.Response(200, content=b"whole content"),
        ]
    )
    dest = tmp_path / "out.bin"
    assert client.download_file("file-abc", dest) == len(b"whole content")
    assert dest.read_bytes() == b"whole content"
    assert len(seen) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_download_broken_midway_into_an_unseekable_stream_is_not_retried(make_client):
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = b""

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.data += bytes(b)
            return len(b)

        def tell(self) -> int:
            raise OSError("not seekable")

    client, seen = make_client([httpx2.Response(200, stream=BreaksMidway())])
    with pytest.raises(APIError, match="cannot be rewound"):
        client.download_file("file-abc", Pipe())
    assert len(seen) == 1
