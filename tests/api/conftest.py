"""Fixtures for the API client's tests: a client bound to the shared emulator, with retry waits
shrunk so that fault-injection tests stay fast (the timing itself is tested in
test_api_retry_timing.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from syncd.api import Client, RetryPolicy

FAST_RETRY = RetryPolicy(
    max_attempts=40, base_delay=0.001, max_delay=0.01, deadline=30.0, retry_after_cap=0.01
)


@pytest.fixture
def client(emulator, api_key) -> Iterator[Client]:
    with Client(emulator.base_url, api_key, retry=FAST_RETRY, timeout=10.0) as client:
        yield client


@pytest.fixture
def make_file(tmp_path: Path):
    """Write ``content`` to ``tmp_path/name`` and return its path."""

    def make(name: str = "notes.txt", content: bytes = b"hello\n") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    return make


@pytest.fixture
def jsonl():
    """Build ``lines`` lines of valid fine-tune JSONL (the emulator checks each is an object)."""

    def build(lines: int) -> bytes:
        return b"".join(
            json.dumps({"messages": [{"role": "user", "content": f"line {i}"}]}).encode() + b"\n"
            for i in range(lines)
        )

    return build


FILE_OBJECT = {
    "id": "file-x",
    "object": "file",
    "bytes": 1,
    "created_at": 1,
    "filename": "x",
    "purpose": "assistants",
    "status": "processed",
}


class RecordingServer:
    """A real HTTP server on loopback that records each request's headers and answers
    ``reply`` (status, JSON body) — to check exactly what the client puts on the wire, and to
    answer what the emulator never would."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reply: tuple[int, object] = (200, FILE_OBJECT)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.requests.append((self.command, self.path, dict(self.headers.items())))
                status, payload = owner.reply
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()
