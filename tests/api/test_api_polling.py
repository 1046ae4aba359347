"""Polling at the service's pace under a deadline — UNIT tests over ``httpx2.MockTransport``
with a fake clock (end to end against the emulator in test_api_vector_stores.py)."""

from __future__ import annotations

import httpx2
import pytest

from syncd.api.polling import poll_after

from .fakes import FakeTime, mock_client

STORE_FILE = {
    "id": "file-1",
    "object": "vector_store.file",
    "usage_bytes": 0,
    "created_at": 1,
    "vector_store_id": "vs_1",
    "last_error": None,
}
BATCH = {
    "id": "vsfb_1",
    "object": "vector_store.files_batch",
    "created_at": 1,
    "vector_store_id": "vs_1",
    "file_counts": {"in_progress": 2, "completed": 0, "failed": 0, "cancelled": 0, "total": 2},
}


def answers(body: dict, statuses: list[str], hint_ms: str | None):
    """A handler answering ``body`` with each status in turn (the last one repeats)."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        status = statuses[min(len(seen), len(statuses)) - 1]
        headers = {"openai-poll-after-ms": hint_ms} if hint_ms is not None else {}
        return httpx2.Response(200, json={**body, "status": status}, headers=headers)

    return handler, seen


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("250", 0.25), ("0", 0.0), ("1500.5", 1.5005), ("-1", None), ("soon", None)],
)
def test_poll_after_reads_milliseconds(value, seconds):
    assert poll_after(httpx2.Headers({"openai-poll-after-ms": value})) == seconds
    assert poll_after(httpx2.Headers()) is None


def test_waits_as_the_service_says_until_the_file_leaves_in_progress():
    fake = FakeTime()
    handler, seen = answers(STORE_FILE, ["in_progress", "in_progress", "completed"], "250")
    with mock_client(handler, fake) as client:
        done = client.wait_vector_store_file("vs_1", "file-1", timeout=60)
    assert done.status == "completed"
    assert fake.sleeps == [0.25, 0.25]
    assert {r.url.path for r in seen} == {"/v1/vector_stores/vs_1/files/file-1"}


def test_waits_one_second_without_a_hint():
    fake = FakeTime()
    handler, _ = answers(BATCH, ["in_progress", "failed"], None)
    with mock_client(handler, fake) as client:
        assert client.wait_file_batch("vs_1", "vsfb_1", timeout=60).status == "failed"
    assert fake.sleeps == [1.0]


def test_returns_the_last_state_at_the_deadline_after_a_last_look():
    fake = FakeTime()
    handler, seen = answers(STORE_FILE, ["in_progress"], "400")
    with mock_client(handler, fake) as client:
        last = client.wait_vector_store_file("vs_1", "file-1", timeout=1.0)
    assert last.status == "in_progress"
    # 0.4 + 0.4, then the wait is cut to the 0.2 s left, and one more look at the deadline.
    assert fake.sleeps == pytest.approx([0.4, 0.4, 0.2])
    assert len(seen) == 4


def test_a_batch_already_done_is_not_waited_for():
    fake = FakeTime()
    handler, seen = answers(BATCH, ["cancelled"], "100")
    with mock_client(handler, fake) as client:
        assert client.wait_file_batch("vs_1", "vsfb_1", timeout=0).status == "cancelled"
    assert fake.sleeps == []
    assert len(seen) == 1
