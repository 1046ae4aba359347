"""Large files through Uploads: routing by size, parts from disk, resuming and giving up — UNIT
tests over ``httpx2.MockTransport`` with a fake Uploads service that can break exactly where a
test says. End to end against the emulator in test_api_vector_stores.py."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from pathlib import Path

import httpx2
import pytest

from syncd.api import APIError, BadRequestError, PartSettings, UploadOutcomeUnknown
from syncd.api.uploads import FilePart, guess_mime_type

from .fakes import FakeTime, mock_client, multipart_field

PART = re.compile(r"^/v1/uploads/(?P<id>[^/]+)/(?P<op>parts|complete|cancel)$")


class FakeUploads:
    """Just enough of ``/files`` and ``/uploads`` to see what the client sends.

    ``breaks`` maps a part's content to the failures its next sends meet (an exception to raise,
    or a status to answer). ``expired_uploads`` Uploads are opened already expired.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.uploads: dict[str, dict] = {}
        self.parts: dict[str, bytes] = {}
        self.part_sends: list[bytes] = []
        self.breaks: dict[bytes, list[Exception | int]] = {}
        self.expired_uploads = 0
        self.complete_failures: list[Exception | int] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.requests.append((request.method, request.url.path))
        path = request.url.path
        if path == "/v1/files":
            content = multipart_field(request, "file")
            return httpx2.Response(200, json=self._file("small", len(content)))
        if path == "/v1/uploads":
            body = json.loads(request.read())
            with self.lock:
                upload_id = f"upload_{len(self.uploads) + 1}"
                expired = self.expired_uploads > 0
                self.expired_uploads -= 1
                self.uploads[upload_id] = {
                    "id": upload_id,
                    "object": "upload",
                    "bytes": body["bytes"],
                    "created_at": int(time.time()),
                    "expires_at": int(time.time()) - 1 if expired else int(time.time()) + 3600,
                    "filename": body["filename"],
                    "purpose": body["purpose"],
                    "status": "pending",
                    "mime_type": body["mime_type"],
                }
            return httpx2.Response(200, json=self.uploads[upload_id])
        match = PART.match(path)
        assert match, path
        upload = self.uploads[match["id"]]
        if match["op"] == "cancel":
            upload["status"] = "cancelled"
            return httpx2.Response(200, json=upload)
        if upload["expires_at"] < time.time() or upload["status"] != "pending":
            return self._error(400, f"Upload {upload['id']} is {upload['status']}")
        if match["op"] == "parts":
            data = multipart_field(request, "data")
            with self.lock:
                self.part_sends.append(data)
                failure = self.breaks.get(data, [None]).pop(0) if self.breaks.get(data) else None
                part_id = f"part_{len(self.part_sends)}"
                if failure is None:
                    self.parts[part_id] = data
            if isinstance(failure, Exception):
                raise failure
            if isinstance(failure, int):
                return self._error(failure, "part refused")
            return httpx2.Response(
                200,
                json={
                    "id": part_id,
                    "object": "upload.part",
                    "created_at": 1,
                    "upload_id": upload["id"],
                },
            )
        body = json.loads(request.read())
        content = b"".join(self.parts[p] for p in body["part_ids"])
        if self.complete_failures:
            failure = self.complete_failures.pop(0)
            if isinstance(failure, Exception):
                upload["status"] = "completed"  # applied, but the answer is lost
                raise failure
            return self._error(failure, "complete refused")
        assert len(content) == upload["bytes"]
        assert body["md5"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
        self.completed = content
        upload["status"] = "completed"
        file = self._file(upload["filename"], len(content))
        return httpx2.Response(200, json={**upload, "file": file})

    @staticmethod
    def _file(name: str, size: int) -> dict:
        return {
            "id": f"file-{name}",
            "object": "file",
            "bytes": size,
            "created_at": 1,
            "filename": name,
            "purpose": "assistants",
        }

    @staticmethod
    def _error(status: int, message: str) -> httpx2.Response:
        return httpx2.Response(
            status, json={"error": {"message": message, "type": "invalid_request_error"}}
        )

    def ops(self) -> list[str]:
        return [path.rsplit("/", 1)[-1] if "upload_" in path else path for _, path in self.requests]


@pytest.fixture
def service() -> FakeUploads:
    return FakeUploads()


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """A 10,000-byte file whose 1,000-byte parts are all different."""
    path = tmp_path / "big.md"
    path.write_bytes(b"".join(f"{i:04d}".encode() * 250 for i in range(10)))
    return path


def client_for(service: FakeUploads, **parts: int):
    settings = PartSettings(**{"part_size": 1000, "workers": 3, **parts})
    return mock_client(service, FakeTime(), upload_threshold=5000, upload_parts=settings)


def test_a_file_up_to_the_threshold_goes_in_one_request(service, tmp_path):
    path = tmp_path / "small.md"
    path.write_bytes(b"s" * 5000)
    with client_for(service) as client:
        assert client.create_file(path, "assistants").bytes == 5000
    assert service.ops() == ["/v1/files"]


def test_a_larger_file_goes_in_parts_joined_in_file_order(service, big):
    with client_for(service) as client:
        file = client.create_file(big, "assistants", filename="renamed.md")
    assert (file.filename, file.bytes) == ("renamed.md", 10_000)
    assert service.completed == big.read_bytes()
    assert service.ops() == ["/v1/uploads", *["parts"] * 10, "complete"]
    (upload,) = service.uploads.values()
    assert (upload["bytes"], upload["mime_type"]) == (10_000, "text/markdown")
    assert sorted(service.part_sends) == sorted(
        big.read_bytes()[i : i + 1000] for i in range(0, 10_000, 1000)
    )


def test_the_last_part_is_the_rest_of_the_file(service, tmp_path):
    path = tmp_path / "odd.txt"
    path.write_bytes(bytes(range(256)) * 30)  # 7,680 bytes: 3 parts of 3,000, 3,000, 1,680
    with client_for(service, part_size=3000) as client:
        client.create_file(path, "assistants")
    assert sorted(map(len, service.part_sends)) == [1680, 3000, 3000]
    assert service.completed == path.read_bytes()


def test_a_broken_connection_re_sends_only_the_part_not_acknowledged(service, big):
    third = big.read_bytes()[2000:3000]
    service.breaks[third] = [
        httpx2.ReadError("connection reset"),
        httpx2.RemoteProtocolError("gone"),
    ]
    with client_for(service) as client:
        client.create_file(big, "assistants")
    assert service.completed == big.read_bytes()
    # Ten parts, the third sent three times; no other part twice, and one Upload.
    assert len(service.part_sends) == 12
    assert service.part_sends.count(third) == 3
    assert all(service.part_sends.count(p) == 1 for p in service.part_sends if p != third)
    assert service.ops().count("/v1/uploads") == 1


def test_an_upload_that_expired_starts_again(service, big):
    service.expired_uploads = 1
    with client_for(service, workers=1) as client:
        client.create_file(big, "assistants")
    assert service.completed == big.read_bytes()
    assert service.ops().count("/v1/uploads") == 2
    assert service.uploads["upload_2"]["status"] == "completed"


def test_giving_up_on_a_part_cancels_the_upload(service, big):
    service.breaks[big.read_bytes()[:1000]] = [400]
    with client_for(service) as client, pytest.raises(BadRequestError, match="part refused"):
        client.create_file(big, "assistants")
    assert service.uploads["upload_1"]["status"] == "cancelled"
    assert service.ops()[-1] == "cancel"
    assert "complete" not in service.ops()


def test_an_upload_that_keeps_expiring_is_given_up(service, big):
    service.expired_uploads = 5
    with (
        client_for(service, restarts=1) as client,
        pytest.raises(APIError, match="expired 2 times"),
    ):
        client.create_file(big, "assistants")
    assert service.ops().count("/v1/uploads") == 2


def test_a_completion_whose_answer_was_lost_is_an_unknown_outcome(service, big):
    service.complete_failures = [httpx2.ReadError("reset")]
    with client_for(service) as client, pytest.raises(UploadOutcomeUnknown) as caught:
        client.create_file(big, "assistants")
    unknown = caught.value
    assert (unknown.filename, unknown.size, unknown.purpose) == ("big.md", 10_000, "assistants")
    assert "cancel" not in service.ops()  # it may be a File now: nothing to cancel


def test_a_file_part_is_a_stream_of_its_own(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with path.open("rb") as f:
        part = FilePart(f, 3, 4)
        assert part.seek(0, io.SEEK_END) == 4
        assert part.tell() == 4
        part.seek(0)
        assert part.read(3) == b"345"
        assert part.read() == b"6"
        assert part.read() == b""
        part.seek(1)
        assert part.read() == b"456"
        # No file number: an HTTP library must measure the part, not fstat the whole file.
        with pytest.raises(OSError):
            part.fileno()


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.jsonl", "application/jsonl"),
        ("b.PDF", "application/pdf"),
        ("c.txt", "text/plain"),
        ("d", "application/octet-stream"),
    ],
)
def test_upload_mime_types(name, mime):
    assert guess_mime_type(name) == mime


@pytest.mark.parametrize(
    "settings",
    [{"part_size": 0}, {"part_size": 64 * 1024 * 1024 + 1}, {"workers": 0}, {"restarts": -1}],
)
def test_part_settings_are_checked(settings):
    with pytest.raises(ValueError):
        PartSettings(**settings)
