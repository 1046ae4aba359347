"""How a request body reaches the socket — UNIT tests over a transport that records the pieces
the client hands it (each piece is one write to the socket in httpcore2)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from syncd.api import Client
from syncd.api.client import SEND_BYTES


class PieceRecorder(httpx2.BaseTransport):
    """Answers every upload with a File, after reading its body piece by piece as a socket
    transport does."""

    def __init__(self) -> None:
        self.pieces: list[list[bytes]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.SyncByteStream)
        self.pieces.append(list(request.stream))
        file = {
            "id": f"file-{len(self.pieces)}",
            "object": "file",
            "bytes": 1,
            "created_at": 1700000000,
            "filename": "x",
            "purpose": "assistants",
        }
        return httpx2.Response(200, content=json.dumps(file).encode(), request=request)


def upload(tmp_path: Path, content: bytes) -> list[bytes]:
    """Upload ``content``; the pieces its request body was handed over in."""
    path = tmp_path / "doc.txt"
    path.write_bytes(content)
    recorder = PieceRecorder()
    with Client("http://127.0.0.1:9/v1", "sk-test", transport=recorder) as client:
        client.create_file(path, "assistants")
    [pieces] = recorder.pieces
    return pieces


def test_a_small_upload_goes_out_in_one_write(tmp_path: Path) -> None:
    pieces = upload(tmp_path, b"hello\n")
    assert len(pieces) == 1
    body = pieces[0]
    assert b'name="purpose"\r\n\r\nassistants\r\n' in body
    assert b'filename="doc.txt"' in body and b"\r\n\r\nhello\n\r\n" in body
    assert body.endswith(b"--\r\n")


def test_a_large_upload_goes_out_in_bounded_writes_with_every_byte(tmp_path: Path) -> None:
    content = bytes(range(256)) * (5 * SEND_BYTES // 256) + b"tail"
    pieces = upload(tmp_path, content)
    # Each write but the last carries at least SEND_BYTES and holds at most one file chunk
    # (64 KB) more, so memory stays bounded.
    assert len(pieces) > 1
    assert all(SEND_BYTES <= len(p) < 2 * SEND_BYTES + 1024 for p in pieces[:-1])
    body = b"".join(pieces)
    assert content in body
    assert len(body) < len(content) + 1024


def test_content_read_by_the_caller_is_sent_as_given_without_reading_the_path(
    tmp_path: Path,
) -> None:
    recorder = PieceRecorder()
    with Client("http://127.0.0.1:9/v1", "sk-test", transport=recorder) as client:
        client.create_file(tmp_path / "never-read.txt", "assistants", content=b"checked\n")
    [pieces] = recorder.pieces
    assert len(pieces) == 1
    assert b'filename="never-read.txt"' in pieces[0] and b"\r\n\r\nchecked\n\r\n" in pieces[0]


def test_content_above_the_upload_threshold_is_refused(tmp_path: Path) -> None:
    recorder = PieceRecorder()
    with (
        Client(
            "http://127.0.0.1:9/v1", "sk-test", transport=recorder, upload_threshold=4
        ) as client,
        pytest.raises(ValueError, match="above upload_threshold"),
    ):
        client.create_file(tmp_path / "big.txt", "assistants", content=b"12345")
    assert recorder.pieces == []


@pytest.mark.parametrize("name", ['a"b.txt', "tab\tand\nnewline.md", "back\\slash.txt", "é.md"])
def test_a_form_built_in_memory_names_the_file_as_httpx2_streams_it(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(b"same\n")
    recorder = PieceRecorder()
    with Client("http://127.0.0.1:9/v1", "sk-test", transport=recorder) as client:
        client.create_file(path, "assistants", filename=name, content=b"same\n")
        client.create_file(path, "assistants", filename=name)  # streamed: httpx2's form

    def part_heads(body: bytes) -> list[bytes]:
        boundary = body.split(b"\r\n", 1)[0]
        parts = body.split(boundary)[1:-1]
        return [part.split(b"\r\n\r\n", 1)[0] for part in parts]

    in_memory, streamed = (part_heads(b"".join(pieces)) for pieces in recorder.pieces)
    assert in_memory == streamed
