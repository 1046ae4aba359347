"""The server's direct path for small uploads (``server.py``, ``app.DirectRoutes``): taken only
when the layers it skips would do nothing, and answering exactly as the ASGI stack does —
status, headers, body, errors, the request log — over real connections (keep-alive,
``Connection: close``, pipelining, a body in pieces)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from syncd.emulator import EmulatorServer, server
from syncd.emulator.app import DirectRoutes
from syncd.emulator.store import Store
from syncd.emulator.uploads import WHOLE_BODY_BYTES

#: Headers whose values differ from one answer to the next.
VARYING = ("date", "x-request-id", "openai-processing-ms", "content-length")


@pytest.fixture
def direct_answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests answered on the direct path from now on."""
    answered: list[str] = []
    answer = DirectRoutes.answer

    def spy(self: DirectRoutes, route: Any, scope: Any, body: bytes) -> Any:
        answered.append(scope["path"])
        return answer(self, route, scope, body)

    monkeypatch.setattr(DirectRoutes, "answer", spy)
    return answered


def _form(
    content: bytes = b"hello\n", purpose: str = "assistants", filename: str = "notes.txt"
) -> dict[str, Any]:
    return {"files": {"file": (filename, content)}, "data": {"purpose": purpose}}


def _shape(response: httpx2.Response) -> tuple[int, list[tuple[str, str]], Any]:
    """An answer without what changes between two equal requests: ids and times."""
    headers = [(k, "…" if k in VARYING else v) for k, v in response.headers.multi_items()]
    body = response.json()
    if response.status_code == 200:
        body = {**body, "id": "…", "created_at": "…"}
    return response.status_code, headers, body


#: Ways to upload, each answered the same way on both paths: what the service answers.
REQUESTS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "a plain upload": ({}, _form()),
    "a fine-tune file": ({}, _form(b'{"a": 1}\n', "fine-tune", "t.jsonl")),
    "bad JSON lines": ({}, _form(b'{"a": 1}\n[2]\n', "fine-tune", "t.jsonl")),
    "an unknown purpose": ({}, _form(purpose="training")),
    "an empty file": ({}, _form(b"")),
    "no file": ({}, {"data": {"purpose": "assistants"}}),
    "an unknown field": ({}, {**_form(), "data": {"purpose": "assistants", "x": "1"}}),
    "a wrong key": ({"Authorization": "Bearer sk-not-the-key"}, _form()),
    "not multipart": ({"Content-Type": "application/json"}, {"content": b"{}"}),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_an_upload_is_answered_alike_on_both_paths(
    name: str, http: httpx2.Client, direct_answers: list[str]
) -> None:
    headers, request = REQUESTS[name]
    direct = http.post("files", headers=headers, **request)
    assert direct_answers == ["/v1/files"]
    # A query string, even an empty one, takes the request through the ASGI stack.
    through_asgi = http.post("files?", headers=headers, **request)
    assert direct_answers == ["/v1/files"]
    assert _shape(direct) == _shape(through_asgi)


def test_a_stored_direct_upload_is_a_file_like_any_other(
    http: httpx2.Client, direct_answers: list[str]
) -> None:
    file = http.post("files", **_form(b"content\n")).json()
    assert direct_answers == ["/v1/files"]
    assert http.get(f"files/{file['id']}").json() == file
    assert [f["id"] for f in http.get("files").json()["data"]] == [file["id"]]


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param(lambda server: server.set_faults(latency_ms=1), id="a fault setting"),
        pytest.param(lambda server: server.set_knobs(rate_limits=True), id="rate limits"),
    ],
)
def test_faults_and_rate_limits_take_uploads_through_the_asgi_stack(
    setting: Callable[[EmulatorServer], object],
    emulator: EmulatorServer,
    http: httpx2.Client,
    direct_answers: list[str],
) -> None:
    setting(emulator)
    assert http.post("files", **_form()).status_code == 200
    assert direct_answers == []
    emulator.reset()
    assert http.post("files", **_form()).status_code == 200
    assert direct_answers == ["/v1/files"]


def test_an_injected_fault_still_reaches_uploads(
    emulator: EmulatorServer, http: httpx2.Client
) -> None:
    emulator.set_faults(fail_rate=1.0, seed=1)
    assert http.post("files", **_form()).status_code in (500, 502, 503)
    assert emulator.fault_counts()["fail"] == 1


def test_an_unexpected_error_is_the_services_500_and_is_logged(
    http: httpx2.Client,
    direct_answers: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: Store, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "add_file", broken)
    with caplog.at_level(logging.INFO, logger="syncd.emulator"):
        direct = http.post("files", **_form())
        through_asgi = http.post("files?", **_form())
    assert direct_answers == ["/v1/files"]
    assert direct.status_code == through_asgi.status_code == 500
    assert direct.json() == through_asgi.json()
    assert direct.json()["error"]["type"] == "server_error"
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failures and failures[0].exc_info and "disk on fire" in str(failures[0].exc_info[1])
    assert "POST /v1/files → 500" in caplog.text


def test_a_direct_upload_is_logged_as_any_request(
    http: httpx2.Client, direct_answers: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="syncd.emulator"):
        http.post("files", **_form())
    assert direct_answers == ["/v1/files"]
    lines = [r.getMessage() for r in caplog.records if r.name == "syncd.emulator"]
    assert len(lines) == 1 and lines[0].startswith("POST /v1/files → 200 (")


# --- over raw connections -------------------------------------------------------------------


def _raw_upload(
    emulator: EmulatorServer, api_key: str, *, content: bytes = b"hello\n", close: bool = False
) -> bytes:
    """The bytes of an upload request, as an HTTP client sends them."""
    request = httpx2.Request(
        "POST",
        emulator.base_url + "/files",
        headers={
            "Authorization": f"Bearer {api_key}",
            **({"Connection": "close"} if close else {}),
        },
        **_form(content),
    )
    body = request.read()
    lines = ["POST /v1/files HTTP/1.1", f"Host: {request.url.netloc.decode()}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def connect(emulator: EmulatorServer) -> Iterator[Callable[[], socket.socket]]:
    opened: list[socket.socket] = []

    def connect() -> socket.socket:
        sock = socket.create_connection((emulator.host, emulator.port), timeout=10)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` answers read off ``sock``: status, headers (names in lower case), body."""
    data = b""
    answers: list[tuple[int, dict[str, str], bytes]] = []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            end = head_end + 4 + int(headers["content-length"])
            if len(data) >= end:
                answers.append((int(head[0].split()[1]), headers, data[head_end + 4 : end]))
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {len(answers)} answers"
        data += chunk
    assert data == b""
    return answers


def test_a_keep_alive_connection_carries_upload_after_upload(
    emulator: EmulatorServer,
    api_key: str,
    connect: Callable[[], socket.socket],
    direct_answers: list[str],
) -> None:
    sock = connect()
    for _ in range(3):
        sock.sendall(_raw_upload(emulator, api_key))
        [(status, headers, _)] = _read_answers(sock, 1)
        assert status == 200 and "connection" not in headers
    assert len(direct_answers) == 3


def test_pipelined_uploads_are_answered_in_order(
    emulator: EmulatorServer,
    api_key: str,
    connect: Callable[[], socket.socket],
    direct_answers: list[str],
) -> None:
    sock = connect()
    sock.sendall(b"".join(_raw_upload(emulator, api_key, content=b"x" * n) for n in (1, 2, 3)))
    answers = _read_answers(sock, 3)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [httpx2.Response(200, content=body).json()["bytes"] for _, _, body in answers] == [
        1,
        2,
        3,
    ]
    assert len(direct_answers) == 3


def test_a_body_sent_in_pieces_is_read_whole(
    emulator: EmulatorServer,
    api_key: str,
    connect: Callable[[], socket.socket],
    direct_answers: list[str],
) -> None:
    sock = connect()
    request = _raw_upload(emulator, api_key, content=b"y" * 1000)
    for start in range(0, len(request), 100):
        sock.sendall(request[start : start + 100])
    [(status, _, body)] = _read_answers(sock, 1)
    assert status == 200 and httpx2.Response(200, content=body).json()["bytes"] == 1000
    assert direct_answers == ["/v1/files"]


def test_connection_close_is_honoured(
    emulator: EmulatorServer,
    api_key: str,
    connect: Callable[[], socket.socket],
    direct_answers: list[str],
) -> None:
    sock = connect()
    sock.sendall(_raw_upload(emulator, api_key, close=True))
    [(status, headers, _)] = _read_answers(sock, 1)
    assert status == 200 and headers["connection"] == "close"
    assert sock.recv(1) == b""  # closed by the server
    assert direct_answers == ["/v1/files"]


def test_expect_100_continue_goes_through_the_asgi_stack(
    emulator: EmulatorServer,
    api_key: str,
    connect: Callable[[], socket.socket],
    direct_answers: list[str],
) -> None:
    sock = connect()
    request = _raw_upload(emulator, api_key)
    sock.sendall(request.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n", 1))
    data = b""
    while b"\r\n\r\n{" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    assert b" 200 OK" in data
    assert direct_answers == []


def test_a_body_over_the_direct_limit_goes_through_the_asgi_stack(
    http: httpx2.Client, direct_answers: list[str]
) -> None:
    response = http.post("files", **_form(b"z" * WHOLE_BODY_BYTES))
    assert response.status_code == 200 and response.json()["bytes"] == WHOLE_BODY_BYTES
    assert direct_answers == []


def test_the_request_log_is_not_made_when_stderr_is_discarded() -> None:
    script = "from syncd.cli.emulator import stderr_is_discarded as d; print(d())"

    def discarded(stderr: int) -> str:
        run = subprocess.run(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=True,
        )
        return run.stdout.strip()

    assert discarded(subprocess.DEVNULL) == "True"
    assert discarded(subprocess.PIPE) == "False"


@pytest.mark.parametrize("asgi_first", [False, True], ids=["direct only", "after an ASGI request"])
def test_an_idle_connection_is_closed_after_the_keep_alive_time_a_busy_one_is_not(
    asgi_first: bool,
    api_key: str,
    emulator_factory: Callable[..., EmulatorServer],
    monkeypatch: pytest.MonkeyPatch,
    direct_answers: list[str],
) -> None:
    monkeypatch.setattr(server, "KEEP_ALIVE_S", 1)
    emulator = emulator_factory(api_key=api_key)
    sock = socket.create_connection((emulator.host, emulator.port), timeout=10)
    with sock:
        if asgi_first:
            request = _raw_upload(emulator, api_key).replace(b"/v1/files", b"/v1/files?", 1)
            sock.sendall(request)
            _read_answers(sock, 1)
        started = answered = time.monotonic()
        # Busy past the first keep-alive time: a request every 0.3 s for 1.5 s.
        while answered - started < 1.5:
            time.sleep(0.3)
            sock.sendall(_raw_upload(emulator, api_key))
            [(status, _, _)] = _read_answers(sock, 1)
            answered = time.monotonic()
            assert status == 200
        assert len(direct_answers) >= 4
        assert sock.recv(1) == b""  # closed by the server…
        assert 0.9 <= time.monotonic() - answered <= 3  # …once idle for about a second
