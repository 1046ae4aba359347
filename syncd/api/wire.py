"""A lean HTTP/1.1 transport for ``httpx2``: keep-alive sockets and a small response parser.

httpx2's own transport (httpcore2 over h11) spends about 0.9 ms of CPU on each small request:
an event machine per message, a trace context per step, the request head and body in two
writes. A first sync of 100,000 small files makes 100,000 such requests, and that cost alone
was more than all the rest of syncd's work per file. :class:`WireTransport` does what syncd
needs of HTTP/1.1 directly — the request in as few writes as it takes, the answer's head parsed
in one pass — for about a tenth of that. It is an ``httpx2.BaseTransport``: everything above it
(auth, headers, pacing, retries, error mapping) stays as it is, and it raises httpx2's own
exceptions (:data:`httpx2.ConnectError` before any byte left, ``WriteError``/``ReadError``/
``RemoteProtocolError`` after, the timeouts), so a failure means the same whichever transport
carried the request.

What it does not do: HTTP/2, proxies (:func:`proxied` says when the environment asks for one;
the client then keeps httpx2's transport), ``Expect: 100-continue``, or trailers.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import httpx2

__all__ = ["SEND_BYTES", "Answer", "WireTransport", "proxied"]

#: Request bytes are handed to the socket in writes of about this size: a small request, head
#: and body, is one write (one packet, one wake-up of the server). (The client joins a body
#: streamed through httpx2's own transport to the same size.)
SEND_BYTES = 64 * 1024
#: How much is asked of the socket per read.
RECV_BYTES = 64 * 1024
#: The longest response head accepted (status line and headers).
MAX_HEAD_BYTES = 64 * 1024

_Origin = tuple[str, str, int]

#: A header line (RFC 9110, 5.1 and 5.5): a token, a colon, the value (whitespace before it
#: left out), the line's end. Anchored at the start of a line, so that a line holding anything
#: else — a name with a space, a folded continuation — matches nowhere and is seen. (Leaving
#: out the whitespace after the value in the pattern too made it several times as slow: the
#: rare value that has some is stripped apart.)
_FIELD = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*)\r\n", re.MULTILINE)
#: The header lines that say how an answer's body ends, in the head's lines lowercased and
#: preceded by a line feed.
_FRAMING_FIELD = re.compile(rb"\n(content-length|transfer-encoding|connection):([^\r\n]*)")


def proxied(url: httpx2.URL) -> bool:
    """Whether the environment (``HTTPS_PROXY``, ``ALL_PROXY``, ... and ``NO_PROXY``) sends
    requests to ``url`` through a proxy, which only httpx2's own transports know how to use."""
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A request as this transport sends it: from an ``httpx2.Request``, or built directly
    (:meth:`WireTransport.send_bytes`)."""

    method: str
    url: httpx2.URL
    headers: list[tuple[bytes, bytes]]
    body: Iterable[bytes]
    #: ``connect``, ``read``, ``write`` and ``pool`` seconds (``None``: no limit), as httpx2's
    #: ``Timeout.as_dict()`` gives them.
    timeouts: Mapping[str, float | None]

    def timeout(self, which: str) -> float | None:
        value = self.timeouts.get(which)
        return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, as :meth:`WireTransport.send_bytes` reads it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes
    reason: bytes
    http_version: bytes


class _Connection:
    """One socket to an origin, and what has been read from it but not yet used."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.idle_since = 0.0

    def fill(self) -> None:
        """Read what the socket has (waiting for it); ``RemoteProtocolError`` at its end."""
        chunk = self.sock.recv(RECV_BYTES)
        if not chunk:
            raise httpx2.RemoteProtocolError("the server closed the connection mid-answer")
        self.buffer += chunk

    def take(self, size: int) -> bytes:
        if size >= len(self.buffer):  # all of it (an answer's body, as a rule): one copy
            data = bytes(self.buffer)
            self.buffer.clear()
            return data
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def line(self) -> bytes:
        """The next line (without its CRLF), for chunked bodies."""
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise httpx2.RemoteProtocolError("a line of the answer is too long")
            self.fill()
        line = self.take(end + 2)
        return line[:-2]

    def readable(self) -> bool:
        """Whether the socket has something to read: on an idle connection, that can only be
        its end (the server closed it) or garbage; either way it cannot carry a request."""
        poll = select.poll()
        poll.register(self.sock.fileno(), select.POLLIN)
        return bool(poll.poll(0))

    def close(self) -> None:
        self.sock.close()


class _Body(httpx2.SyncByteStream):
    """A response body, read from the connection as it is iterated; the connection goes back
    to the pool when the body was read to its end and both sides keep it alive."""

    def __init__(
        self,
        transport: WireTransport,
        origin: _Origin,
        conn: _Connection,
        framing: int | str,
        keep_alive: bool,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._conn: _Connection | None = conn
        # The byte count left to read, "chunked", or "close" (the body ends with the connection)
        self._framing = framing
        self._keep_alive = keep_alive and framing != "close"
        self._complete = framing == 0

    def __iter__(self) -> Iterator[bytes]:
        conn = self._conn
        if conn is None or self._complete:
            return
        try:
            if isinstance(self._framing, int):
                yield from self._sized(conn, self._framing)
            elif self._framing == "chunked":
                yield from self._chunked(conn)
            else:
                yield from self._until_close(conn)
        except TimeoutError as e:
            raise httpx2.ReadTimeout(str(e) or "timed out reading the answer") from e
        except OSError as e:
            raise httpx2.ReadError(str(e) or type(e).__name__) from e
        self._complete = True

    @staticmethod
    def _sized(conn: _Connection, left: int) -> Iterator[bytes]:
        while left:
            if not conn.buffer:
                conn.fill()
            piece = conn.take(min(left, len(conn.buffer)))
            left -= len(piece)
            yield piece

    @staticmethod
    def _chunked(conn: _Connection) -> Iterator[bytes]:
        while True:
            size_line = conn.line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise httpx2.RemoteProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while conn.line():  # trailers, if any, end with an empty line
                    pass
                return
            yield from _Body._sized(conn, size)
            if conn.line():
                raise httpx2.RemoteProtocolError("a chunk does not end where its size says")

    @staticmethod
    def _until_close(conn: _Connection) -> Iterator[bytes]:
        if conn.buffer:
            yield conn.take(len(conn.buffer))
        while chunk := conn.sock.recv(RECV_BYTES):
            yield chunk

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._complete and self._keep_alive and not conn.buffer:
            self._transport._release(self._origin, conn)
        else:
            conn.close()
            self._transport._release(self._origin, None)


class WireTransport(httpx2.BaseTransport):
    """HTTP/1.1 over keep-alive sockets (TLS for ``https``), at most ``max_connections`` at a
    time; idle ones are kept ``keepalive_expiry`` seconds. ``ssl_context`` is made on first
    use of ``https`` when not given (httpx2's default: the system's or certifi's roots, and
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``). Thread-safe."""

    def __init__(
        self,
        *,
        max_connections: int = 16,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return "<WireTransport>"

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.SyncByteStream)
        timeouts = request.extensions.get("timeout", {})
        status, reason, headers, version, stream = self._round_trip(
            _Outgoing(request.method, request.url, request.headers.raw, request.stream, timeouts)
        )
        return httpx2.Response(
            status,
            headers=headers,
            stream=stream,
            extensions={"http_version": version, "reason_phrase": reason},
        )

    def send_bytes(
        self,
        method: str,
        url: httpx2.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> Answer:
        """Send a request whose body is in memory and read its whole answer, without making an
        ``httpx2.Request`` or ``httpx2.Response`` of either (their layers cost a small upload
        more than the exchange itself): ``headers`` are sent as they are (with ``Host`` and
        ``Content-Length`` among them). Failures are those of :meth:`handle_request`."""
        out = _Outgoing(method, url, headers, (body,), timeouts)
        status, reason, head, version, stream = self._round_trip(out)
        try:
            content = b"".join(stream)
        finally:
            stream.close()
        return Answer(status, head, content, reason, version)

    def _round_trip(
        self, out: _Outgoing
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, _Body]:
        """Send ``out``; the answer's status, reason, headers, HTTP version and body (unread:
        its connection goes back to the pool once it is read and closed)."""
        url = out.url
        if url.scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        pool_timeout = out.timeout("pool")
        if not self._slots.acquire(timeout=pool_timeout if pool_timeout is not None else -1):
            raise httpx2.PoolTimeout("no connection came free in time")
        try:
            conn = self._idle_connection(origin) or self._connect(origin, out)
        except BaseException:
            self._slots.release()
            raise
        try:
            return self._exchange(out, origin, conn)
        except BaseException:
            conn.close()
            self._slots.release()
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # --- connections ------------------------------------------------------------------------

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        """The most recently used idle connection to ``origin`` still fit to carry a request;
        expired or closed ones met on the way are closed."""
        now = time.monotonic()
        while True:
            with self._lock:
                conns = self._idle.get(origin)
                if not conns:
                    return None
                conn = conns.pop()
            if now - conn.idle_since < self._keepalive_expiry and not conn.readable():
                return conn
            conn.close()

    def _connect(self, origin: _Origin, out: _Outgoing) -> _Connection:
        scheme, host, port = origin
        timeout = out.timeout("connect")
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as e:
            raise httpx2.ConnectTimeout(f"connecting to {host}:{port} timed out") from e
        except OSError as e:
            raise httpx2.ConnectError(str(e) or type(e).__name__) from e
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._tls().wrap_socket(sock, server_hostname=host)
        except TimeoutError as e:
            sock.close()
            raise httpx2.ConnectTimeout(f"the TLS handshake with {host} timed out") from e
        except OSError as e:  # ssl.SSLError is one
            sock.close()
            raise httpx2.ConnectError(str(e) or type(e).__name__) from e
        return _Connection(sock)

    def _tls(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = httpx2.create_ssl_context()
            return self._ssl_context

    def _release(self, origin: _Origin, conn: _Connection | None) -> None:
        """A response is done with: its connection, if still usable, waits for the next
        request; its slot is free."""
        if conn is not None:
            conn.idle_since = time.monotonic()
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.setdefault(origin, []).append(conn)
        self._slots.release()

    # --- one exchange -------------------------------------------------------------------------

    def _exchange(
        self, out: _Outgoing, origin: _Origin, conn: _Connection
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, _Body]:
        conn.sock.settimeout(out.timeout("write"))
        try:
            self._send(out, conn)
        except TimeoutError as e:
            raise httpx2.WriteTimeout("timed out sending the request") from e
        except OSError:
            # The server may have answered early and closed (a refusal before it read the
            # whole body): read that answer if there is one, else the read fails below.
            pass
        conn.sock.settimeout(out.timeout("read"))
        try:
            status, reason, headers, fields, version = self._head(conn)
        except TimeoutError as e:
            raise httpx2.ReadTimeout("timed out waiting for the answer") from e
        except OSError as e:
            raise httpx2.ReadError(str(e) or type(e).__name__) from e
        framing, closes = _framing(out.method, status, fields)
        keep_alive = version == b"HTTP/1.1" and not closes and not _closes(out.headers)
        return status, reason, headers, version, _Body(self, origin, conn, framing, keep_alive)

    @staticmethod
    def _send(out: _Outgoing, conn: _Connection) -> None:
        """The request line, headers and body, joined into writes of about ``SEND_BYTES``."""
        lines = [b"%s %s HTTP/1.1" % (out.method.encode("ascii"), out.url.raw_path)]
        lines += [b"%s: %s" % (name, value) for name, value in out.headers]
        pending = [b"\r\n".join(lines) + b"\r\n\r\n"]
        size = len(pending[0])
        chunked = any(
            name.lower() == b"transfer-encoding" and value.strip().lower() == b"chunked"
            for name, value in out.headers
        )
        for piece in out.body:
            if not piece:
                continue
            if chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            if size + len(piece) > SEND_BYTES and size:
                conn.sock.sendall(b"".join(pending))
                pending, size = [], 0
            pending.append(piece)
            size += len(piece)
        if chunked:
            pending.append(b"0\r\n\r\n")
        conn.sock.sendall(b"".join(pending))

    @staticmethod
    def _head(
        conn: _Connection,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bytes]:
        """The answer's status, reason, headers (also as the lines they came in) and HTTP
        version; informational (1xx) answers before it are passed over. The lines are read
        by a regular expression, in one pass."""
        while True:
            start = 0
            while (end := conn.buffer.find(b"\r\n\r\n", start)) < 0:
                if len(conn.buffer) > MAX_HEAD_BYTES:
                    raise httpx2.RemoteProtocolError("the answer's head is too long")
                start = max(0, len(conn.buffer) - 3)
                try:
                    conn.fill()
                except httpx2.RemoteProtocolError:
                    raise httpx2.RemoteProtocolError(
                        "the server closed the connection without answering"
                    ) from None
            head = conn.take(end + 4)
            first = head.find(b"\r\n")
            version, _, rest = head[:first].partition(b" ")
            code, _, reason = rest.partition(b" ")
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise httpx2.RemoteProtocolError(f"not an HTTP/1.1 answer: {head[:40]!r}")
            fields = head[first + 2 : -2]  # each line with its CRLF
            headers = _FIELD.findall(fields)
            if len(headers) != fields.count(b"\n"):
                bad = next(x for x in fields.splitlines(True) if not _FIELD.fullmatch(x))
                raise httpx2.RemoteProtocolError(f"malformed header line {bad[:40]!r}")
            if b" \r\n" in fields or b"\t\r\n" in fields:
                headers = [(name, value.rstrip(b" \t")) for name, value in headers]
            status = int(code)
            if not 100 <= status < 200:
                return status, reason, headers, fields, version


def _close_token(value: bytes) -> bool:
    """Whether a ``Connection`` header's value says ``close``."""
    return any(token.strip().lower() == b"close" for token in value.split(b","))


def _closes(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether ``headers`` (a request's) say ``Connection: close``."""
    return any(name.lower() == b"connection" and _close_token(v) for name, v in headers)


def _framing(method: str, status: int, fields: bytes) -> tuple[int | str, bool]:
    """How the body of an answer whose header lines are ``fields`` ends (RFC 9112, 6.3) — a
    byte count (0: no body), ``"chunked"``, or ``"close"`` (with the connection) — and whether
    the headers say ``Connection: close``. Only the lines that decide it are looked at."""
    encoding: bytes | None = None
    lengths: set[bytes] = set()
    closes = False
    for key, value in _FRAMING_FIELD.findall(b"\n" + fields.lower()):
        if key == b"content-length":
            lengths.add(value.strip())
        elif key == b"transfer-encoding":
            encoding = value
        elif key == b"connection":
            closes = closes or _close_token(value)
    if method == "HEAD" or status in (204, 304):
        return 0, closes
    if encoding is not None:
        last = encoding.split(b",")[-1].strip().lower()
        return ("chunked" if last == b"chunked" else "close"), closes
    if not lengths:
        return "close", closes
    if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
        raise httpx2.RemoteProtocolError(f"bad Content-Length {sorted(lengths)!r}")
    return int(lengths.pop()), closes
