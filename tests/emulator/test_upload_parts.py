"""The Uploads API: parts in any order and in parallel, completion checks, cancel and expiry."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from .support import error_of


def _create(http: httpx2.Client, size: int, **extra: Any) -> dict[str, Any]:
    body = {
        "filename": "big.txt",
        "purpose": "assistants",
        "bytes": size,
        "mime_type": "text/plain",
    }
    response = http.post("uploads", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _part(http: httpx2.Client, upload_id: str, data: bytes) -> httpx2.Response:
    return http.post(f"uploads/{upload_id}/parts", files={"data": ("blob", data)})


def test_parts_sent_in_parallel_are_joined_in_part_ids_order(http: httpx2.Client) -> None:
    chunks = [bytes([65 + i]) * (1000 + i) for i in range(8)]
    content = b"".join(chunks)
    upload = _create(http, len(content))
    assert (upload["status"], upload["object"], upload["file"]) == ("pending", "upload", None)
    assert upload["id"].startswith("upload_")
    with ThreadPoolExecutor(4) as pool:
        # Sent in reverse, concurrently: arrival order must not matter.
        parts = list(pool.map(lambda c: _part(http, upload["id"], c).json(), chunks[::-1]))
    part_ids = [p["id"] for p in parts][::-1]
    done = http.post(
        f"uploads/{upload['id']}/complete",
        json={"part_ids": part_ids, "md5": hashlib.md5(content, usedforsecurity=False).hexdigest()},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed"
    assert body["file"]["bytes"] == len(content)
    assert body["file"]["filename"] == "big.txt"
    stored = http.get(f"files/{body['file']['id']}").json()
    assert stored == body["file"]
    # Downloading an assistants file is refused, so compare through a batch-purpose copy below.
    batch = _create(http, len(content), purpose="batch")
    ids = [_part(http, batch["id"], c).json()["id"] for c in chunks]
    file = http.post(f"uploads/{batch['id']}/complete", json={"part_ids": ids}).json()["file"]
    assert http.get(f"files/{file['id']}/content").content == content


def test_a_wrong_byte_count_or_md5_is_refused(http: httpx2.Client) -> None:
    upload = _create(http, 10)
    part = _part(http, upload["id"], b"12345").json()
    short = http.post(f"uploads/{upload['id']}/complete", json={"part_ids": [part["id"]]})
    assert (short.status_code, error_of(short)["param"]) == (400, "part_ids")
    second = _part(http, upload["id"], b"67890").json()
    wrong_md5 = http.post(
        f"uploads/{upload['id']}/complete",
        json={"part_ids": [part["id"], second["id"]], "md5": "0" * 32},
    )
    assert (wrong_md5.status_code, error_of(wrong_md5)["param"]) == (400, "md5")
    # Still pending: the right md5 completes it.
    right = http.post(
        f"uploads/{upload['id']}/complete", json={"part_ids": [part["id"], second["id"]]}
    )
    assert right.json()["status"] == "completed"
    again = _part(http, upload["id"], b"x")
    assert again.status_code == 400


def test_unknown_parts_are_refused(http: httpx2.Client) -> None:
    upload = _create(http, 1)
    response = http.post(f"uploads/{upload['id']}/complete", json={"part_ids": ["part_nope"]})
    assert (response.status_code, error_of(response)["param"]) == (400, "part_ids")


def test_cancel(http: httpx2.Client) -> None:
    upload = _create(http, 3)
    _part(http, upload["id"], b"abc")
    cancelled = http.post(f"uploads/{upload['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert _part(http, upload["id"], b"abc").status_code == 400
    assert http.post(f"uploads/{upload['id']}/cancel").status_code == 400


def test_an_upload_expires(emulator, http: httpx2.Client) -> None:
    emulator.set_knobs(upload_lifetime_s=0.2)
    upload = _create(http, 3)
    assert upload["expires_at"] >= upload["created_at"]
    part = _part(http, upload["id"], b"abc").json()
    time.sleep(0.25)
    late = http.post(f"uploads/{upload['id']}/complete", json={"part_ids": [part["id"]]})
    assert late.status_code == 400
    assert "expired" in error_of(late)["message"]


def test_default_lifetime_is_an_hour(http: httpx2.Client) -> None:
    upload = _create(http, 3)
    assert upload["expires_at"] - upload["created_at"] in (3599, 3600)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"bytes": 8 * 1024**3 + 1}, "bytes"),
        ({"bytes": 0}, "bytes"),
        ({"purpose": "user_data"}, "purpose"),
        ({"expires_after": {"anchor": "created_at", "seconds": 10}}, "expires_after.seconds"),
    ],
)
def test_create_is_checked(http: httpx2.Client, change: dict[str, Any], param: str) -> None:
    body = {"filename": "a.txt", "purpose": "assistants", "bytes": 1, "mime_type": "text/plain"}
    response = http.post("uploads", json={**body, **change})
    assert (response.status_code, error_of(response)["param"]) == (400, param)


def test_eight_gigabytes_is_accepted_at_create(http: httpx2.Client) -> None:
    assert _create(http, 8 * 1024**3)["bytes"] == 8 * 1024**3


def test_a_part_over_64_mb_is_refused(http: httpx2.Client) -> None:
    upload = _create(http, 64 * 1024 * 1024 + 1)
    response = _part(http, upload["id"], b"\0" * (64 * 1024 * 1024 + 1))
    assert (response.status_code, error_of(response)["param"]) == (400, "data")


def test_unknown_upload_is_a_404(http: httpx2.Client) -> None:
    assert http.post("uploads/upload_nope/cancel").status_code == 404
