"""``rate_limits``: the service's published budgets, their headers, and 429 past them."""

from __future__ import annotations

import httpx2

from syncd.emulator.ratelimits import RateLimiter

from .conftest import Upload
from .support import error_of


def test_off_by_default_no_headers(http: httpx2.Client) -> None:
    response = http.get("files")
    assert "x-ratelimit-limit-requests" not in response.headers


def test_every_answer_carries_the_budget_headers(emulator, http: httpx2.Client) -> None:
    emulator.set_knobs(rate_limits=True, default_rpm=50)
    first = http.get("files")
    assert first.headers["x-ratelimit-limit-requests"] == "50"
    assert first.headers["x-ratelimit-remaining-requests"] == "49"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    second = http.get("vector_stores/vs_missing")  # an error answer too
    assert second.status_code == 404
    assert second.headers["x-ratelimit-remaining-requests"] == "48"


def test_uploads_past_the_budget_get_429_with_retry_after(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    emulator.set_knobs(rate_limits=True, upload_rpm=3)
    for _ in range(3):
        upload()
    refused = http.post("files", files={"file": ("a.txt", b"x")}, data={"purpose": "assistants"})
    assert refused.status_code == 429
    error = error_of(refused)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(http.get("files").json()["data"]) == 3  # other requests have their own budget
    upload_api = http.post(
        "uploads",
        json={"filename": "a.txt", "purpose": "assistants", "bytes": 1, "mime_type": "text/plain"},
    )
    assert upload_api.status_code == 429  # the Uploads API shares the upload budget


def test_attach_budget_is_per_store_files_and_batches_together(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    files = [upload()["id"] for _ in range(3)]
    one, other = (http.post("vector_stores", json={}).json()["id"] for _ in range(2))
    emulator.set_knobs(rate_limits=True, attach_rpm=2)
    assert http.post(f"vector_stores/{one}/files", json={"file_id": files[0]}).status_code == 200
    batch = http.post(f"vector_stores/{one}/file_batches", json={"file_ids": files[1:]})
    assert batch.status_code == 200
    third = http.post(f"vector_stores/{one}/files", json={"file_id": files[2]})
    assert third.status_code == 429
    assert http.post(f"vector_stores/{other}/files", json={"file_id": files[0]}).status_code == 200
    assert http.get(f"vector_stores/{one}/files").status_code == 200  # reads are not attaches


def test_the_window_renews_after_a_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.take("b", 1).allowed
    refused = limiter.take("b", 1)
    assert not refused.allowed and refused.reset_s == 60
    now[0] = 59.5
    assert not limiter.take("b", 1).allowed
    now[0] = 60.0
    assert limiter.take("b", 1).allowed
