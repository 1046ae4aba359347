"""The lean HTTP/1.1 transport (``syncd.api.wire``) against a scripted server on a real loopback
socket: what it sends, how it reads each way an answer may be framed, when it reuses a
connection, and which httpx2 error each failure becomes (so the client's retry rules read
them as before)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx2
import pytest

from syncd.api import Client, RetryPolicy, TransportError, UploadOutcomeUnknown
from syncd.api.wire import WireTransport, proxied

#: What the scripted server does with one request: the raw bytes to answer (``None``: answer
#: nothing) and whether to close the connection afterwards.
Script = Callable[[bytes], tuple[bytes | None, bool]]


def answer(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class ScriptedServer:
    """Accepts connections on loopback; reads each request (head and ``Content-Length`` body)
    and replies as ``script`` says. Records the requests and counts the connections."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    #: Released each time the server has closed a connection.
    closed: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        finally:
            conn.close()
            self.closed.release()

    def _answer(self, conn: socket.socket) -> None:
        # A client that drops the connection (as some tests make it do) ends the thread.
        with contextlib.suppress(OSError):
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    if name.strip().lower() == b"transfer-encoding":
                        # Chunked: taken whole, up to the last chunk (enough for these tests).
                        while not data.endswith(b"0\r\n\r\n"):
                            data += conn.recv(65536)
                        length = len(data)
                while len(data) < length:
                    data += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + data[:length])
                data = data[length:]
                reply, close = self.script(self.requests[-1])
                if reply is not None:
                    conn.sendall(reply)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def http(transport: WireTransport, timeout: float = 5.0) -> httpx2.Client:
    return httpx2.Client(transport=transport, timeout=timeout)


def test_a_request_goes_out_whole_in_one_write_and_the_connection_is_reused(serve):
    server = serve(lambda _: (answer("200 OK", b'{"ok": true}'), False))
    with http(WireTransport()) as client:
        for i in range(3):
            response = client.post(f"{server.url}/v1/files?x={i}", content=b"body %d" % i)
            assert response.status_code == 200 and response.json() == {"ok": True}
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/files?x=0 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in first.lower()
    assert b"\r\ncontent-length: 6\r\n" in first.lower()
    assert first.endswith(b"\r\n\r\nbody 0")


def test_a_large_body_arrives_whole_and_one_of_unknown_length_goes_chunked(serve):
    server = serve(lambda _: (answer("200 OK"), False))
    content = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: many writes
    with http(WireTransport()) as client:
        client.post(server.url, content=content)
        client.post(server.url, content=iter([b"hello", b"", b", world"]))
    assert server.requests[0].endswith(b"\r\n\r\n" + content)
    assert b"transfer-encoding: chunked" in server.requests[1].lower()
    assert server.requests[1].endswith(b"\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
    assert server.connections == 1


def test_a_chunked_answer_is_read_and_the_connection_kept(serve):
    chunked = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
    server = serve(lambda _: (answer("200 OK", chunked, "Transfer-Encoding: chunked"), False))
    with http(WireTransport()) as client:
        assert client.get(server.url).content == b"hello, world"
        assert client.get(server.url).content == b"hello, world"
    assert server.connections == 1


def test_header_values_are_read_without_the_whitespace_around_them(serve):
    reply = (
        b"HTTP/1.1 200 OK\r\nX-Request-Id:  req_1 \t\r\nX-Empty:\r\nx-Two: a b\r\n"
        b"CONTENT-LENGTH:\t 5 \r\nConnection: keep-alive\r\n\r\nhello"
    )
    server = serve(lambda _: (reply, False))
    with http(WireTransport()) as client:
        for _ in range(2):
            response = client.get(server.url)
            assert response.content == b"hello"
            assert response.headers["x-request-id"] == "req_1"
            assert response.headers["x-empty"] == ""
            assert response.headers["x-two"] == "a b"
    assert server.connections == 1  # the length was read, and the connection kept


def test_an_answer_without_a_length_ends_with_its_connection(serve):
    server = serve(lambda _: (b"HTTP/1.1 200 OK\r\n\r\nall of it", True))
    with http(WireTransport()) as client:
        assert client.get(server.url).content == b"all of it"
        assert client.get(server.url).content == b"all of it"
    assert server.connections == 2


def test_connection_close_and_http_1_0_are_not_reused(serve):
    replies = iter(
        [
            (answer("200 OK", b"a", "Connection: close"), True),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb", True),
            (answer("200 OK", b"c"), False),
        ]
    )
    server = serve(lambda _: next(replies))
    with http(WireTransport()) as client:
        assert [client.get(server.url).content for _ in range(3)] == [b"a", b"b", b"c"]
    assert server.connections == 3


def test_informational_answers_are_passed_over(serve):
    informational = b"HTTP/1.1 100 Continue\r\n\r\n"
    server = serve(lambda _: (informational + answer("201 Created", b"x"), False))
    with http(WireTransport()) as client:
        response = client.post(server.url, content=b"x")
    assert response.status_code == 201 and response.reason_phrase == "Created"


def test_an_idle_connection_the_server_closed_is_not_used(serve):
    server = serve(lambda _: (answer("200 OK", b"ok"), True))  # closes after each answer
    with http(WireTransport()) as client:
        for _ in range(3):
            # Keep-alive as far as the answer says: the transport must notice the close
            # before it sends the next request on that connection.
            assert client.get(server.url).content == b"ok"
            assert server.closed.acquire(timeout=5)
    assert server.connections == 3


def test_a_connection_idle_past_its_expiry_is_replaced(serve):
    server = serve(lambda _: (answer("200 OK", b"ok"), False))
    with http(WireTransport(keepalive_expiry=0.0)) as client:
        client.get(server.url)
        client.get(server.url)
    assert server.connections == 2


def test_a_body_read_only_in_part_does_not_go_back_to_the_pool(serve):
    server = serve(lambda _: (answer("200 OK", b"x" * 200_000), False))
    with http(WireTransport()) as client:
        with client.stream("GET", server.url) as response:
            next(response.iter_raw(10))
        assert client.get(server.url).content == b"x" * 200_000
    assert server.connections == 2


def test_no_answer_at_all_is_a_protocol_error(serve):
    server = serve(lambda _: (None, True))
    with http(WireTransport()) as client, pytest.raises(httpx2.RemoteProtocolError):
        client.get(server.url)


def test_a_cut_body_is_a_protocol_error(serve):
    server = serve(lambda _: (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True))
    with http(WireTransport()) as client, pytest.raises(httpx2.RemoteProtocolError):
        client.get(server.url)


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName: x\r\n folded: on\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName: x\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
)
def test_a_garbled_answer_is_a_protocol_error(serve, reply):
    server = serve(lambda _: (reply, True))
    with http(WireTransport()) as client, pytest.raises(httpx2.RemoteProtocolError):
        client.get(server.url)


def test_a_slow_answer_is_a_read_timeout(serve):
    server = serve(lambda _: (None, False))
    with http(WireTransport(), timeout=0.2) as client, pytest.raises(httpx2.ReadTimeout):
        client.get(server.url)


def test_a_refused_connection_is_a_connect_error():
    spare = socket.create_server(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    with http(WireTransport()) as client, pytest.raises(httpx2.ConnectError):
        client.get(f"http://127.0.0.1:{port}/")


def test_no_free_connection_in_time_is_a_pool_timeout(serve):
    server = serve(lambda _: (answer("200 OK", b"x"), False))
    with http(WireTransport(max_connections=1), timeout=0.2) as client:
        with client.stream("GET", server.url), pytest.raises(httpx2.PoolTimeout):
            client.get(server.url)
        assert client.get(server.url).content == b"x"  # the slot came back


def test_through_the_client_a_lost_answer_leaves_the_upload_unknown_and_a_refused_connection_not(
    serve, tmp_path
):
    server = serve(lambda _: (None, True))
    once = RetryPolicy(max_attempts=1)
    with Client(f"{server.url}/v1", "sk-test", retry=once) as client:
        with pytest.raises(UploadOutcomeUnknown) as lost:
            client.create_file(tmp_path / "a.txt", "assistants", content=b"x")
        assert isinstance(lost.value.cause, TransportError) and lost.value.cause.request_sent
    spare = socket.create_server(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    with Client(f"http://127.0.0.1:{port}/v1", "sk-test", retry=once) as client:
        with pytest.raises(TransportError) as refused:
            client.retrieve_file("file-x")
        assert not refused.value.request_sent


def test_a_proxy_in_the_environment_is_seen(monkeypatch):
    url = httpx2.URL("https://api.openai.com/v1")
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not proxied(url)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert proxied(url)
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert not proxied(url)


def test_an_upload_from_memory_sent_past_httpx2_carries_the_headers_httpx2_sends(serve, tmp_path):
    file = b'{"id": "file-1", "object": "file", "bytes": 2, "created_at": 1, "filename": "a.txt",'
    file += b' "purpose": "assistants"}'
    server = serve(lambda _: (answer("200 OK", file, "Content-Type: application/json"), False))
    path = tmp_path / "a.txt"
    path.write_bytes(b"hi")

    def headers(request: bytes) -> dict[str, str]:
        lines = request.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
        return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}

    with Client(f"{server.url}/v1", "sk-test", organization="org-1") as client:
        assert client.create_file(path, "assistants", content=b"hi").id == "file-1"
        assert client.create_file(path, "assistants").id == "file-1"  # streamed, via httpx2
    direct, streamed = (headers(r) for r in server.requests)
    assert direct.pop("accept-encoding", None) is None  # its answer is read as it comes
    streamed.pop("accept-encoding")
    assert direct.keys() == streamed.keys()
    for name in ("host", "authorization", "user-agent", "openai-organization", "accept"):
        assert direct[name] == streamed[name]
    assert direct["content-type"].startswith("multipart/form-data; boundary=")
    assert server.requests[0].startswith(b"POST /v1/files HTTP/1.1\r\n")
    assert b"\r\n\r\nhi\r\n" in server.requests[0]


def test_an_upload_from_memory_whose_answer_comes_compressed_is_read_decoded(serve, tmp_path):
    file = b'{"id": "file-1", "object": "file", "bytes": 2, "created_at": 1, "filename": "a.txt",'
    file += b' "purpose": "assistants"}'
    packed = gzip.compress(file)
    server = serve(lambda _: (answer("200 OK", packed, "Content-Encoding: gzip"), False))
    with Client(f"{server.url}/v1", "sk-test") as client:
        assert client.create_file(tmp_path / "a.txt", "assistants", content=b"hi").id == "file-1"
