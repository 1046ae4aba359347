"""Running the emulator: uvicorn in a background thread, on a free loopback port by default.

``EmulatorServer`` is what tests and ``syncd emulator`` use::

    with EmulatorServer() as server:
        httpx2.get(server.base_url + "/files", headers={"Authorization": "Bearer sk-test"})
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, cast

import uvicorn
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from syncd.emulator.app import (
    ADMIN_PREFIX,
    API_PREFIX,
    DirectRoute,
    DirectRoutes,
    Settings,
    create_app,
)
from syncd.emulator.faults import ABORT_EXTENSION, FaultInjector, Faults
from syncd.emulator.knobs import KnobHolder, Knobs
from syncd.emulator.store import Store

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
STARTUP_TIMEOUT_S = 10.0
#: How long an idle connection is kept open (uvicorn's default).
KEEP_ALIVE_S = 5
#: The most a connection reads at once.
READ_BYTES = 64 * 1024


class _EmulatorProtocol(HttpToolsProtocol, asyncio.BufferedProtocol):
    """uvicorn's httptools protocol, plus a way for the app to close a connection without
    answering, and a direct path for the requests the app's ``DirectRoutes`` take.

    httptools, not h11: h11's pure-Python parsing and checks were a third of the emulator's CPU
    per small upload, and a first sync of many small files shares the machine with the emulator.

    ASGI has no message for "hang up"; uvicorn answers 500 for an app that returns without a
    response. The fault layer needs a real drop, so each request's scope carries, under
    ``extensions["syncd.abort"]``, a callable that closes this connection's transport.

    A buffered protocol (``get_buffer``): asyncio reads each chunk into the connection's own
    buffer instead of allocating 256 KiB for every read, most of the cost of a small read.

    The direct path: a request that ``DirectRoutes.route`` takes, with a small body of a known
    length, no ``Expect: 100-continue`` and no earlier request of its connection still being
    answered, is read whole here and answered by ``DirectRoutes.answer`` at once, status line,
    headers and body in one write — no task, no ASGI messages. Anything else goes to the ASGI
    app as uvicorn has it.
    """

    app_routes: ClassVar[DirectRoutes]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        #: The request being read for the direct path: its route and its body so far.
        self._direct: tuple[DirectRoute, bytearray] | None = None
        self._direct_keep_alive = True
        #: When the connection's last direct answer was sent, None while a request is read or
        #: answered; and the timer that closes it once idle for ``timeout_keep_alive``.
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._read_view = memoryview(bytearray(READ_BYTES))

        async def app_with_abort(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = self._abort
            await app(scope, receive, send)

        self.app = app_with_abort

    def _abort(self) -> None:
        self.transport.close()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._read_view[:nbytes]))

    def on_headers_complete(self) -> None:
        route = self._direct_route()
        if route is None:
            super().on_headers_complete()
            return
        path = self.url.decode("ascii")
        self.scope["method"] = self.parser.get_method().decode("ascii")
        self.scope["path"] = self.root_path + path
        self.scope["raw_path"] = self.root_path.encode("ascii") + self.url
        self.scope["query_string"] = b""
        self._direct = (route, bytearray())
        self._direct_keep_alive = self.parser.should_keep_alive()

    def _direct_route(self) -> DirectRoute | None:
        """The direct route of the request whose headers were just read, or None."""
        if (
            self.pipeline
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.expect_100_continue
            or self.parser.should_upgrade()
        ):
            return None
        route = self.app_routes.route(self.parser.get_method(), self.url)
        if route is None:
            return None
        length = 0
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                length = int(value)  # httptools has checked it is a number
        return route if length <= self.app_routes.max_body else None

    def on_body(self, body: bytes) -> None:
        if self._direct is None:
            super().on_body(body)
        else:
            self._direct[1].extend(body)

    def on_message_complete(self) -> None:
        if self._direct is None:
            super().on_message_complete()
            return
        (route, body), self._direct = self._direct, None
        # uvicorn types its scope as a TypedDict; ASGI's is a plain mapping, the same object.
        scope = cast(Scope, self.scope)
        answer = self.app_routes.answer(route, scope, bytes(body))
        content = [STATUS_LINE[answer.status]]
        for name, value in (*self.server_state.default_headers, *answer.headers):
            content += (name, b": ", value, b"\r\n")
        if not self._direct_keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", answer.body)
        self.transport.write(b"".join(content))
        if not self._direct_keep_alive:
            self.transport.close()
        self._direct_done()

    def _direct_done(self) -> None:
        """What uvicorn does once an answer is complete (``on_response_complete``), for a
        direct one: count it, and watch the connection for idleness.

        No request waits in ``pipeline`` (a direct request is taken only then). uvicorn makes
        a keep-alive timer per answer and cancels it when the next request arrives, a tenth of
        a small upload's CPU; here one timer checks, when it fires, whether the connection was
        busy since, and waits again for what is left of the time if so.
        """
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._idle_since is None or self.transport.is_closing():
            return  # busy: a direct answer arms the timer again, an ASGI one uvicorn's own
        remaining = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining > 0:
            self._idle_timer = self.loop.call_later(remaining, self._idle_check)
        else:
            self.timeout_keep_alive_handler()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._direct is None:
            super().shutdown()
        else:
            self._direct_keep_alive = False  # closed once answered


class EmulatorServer:
    """A running emulator: state, faults and an HTTP server on ``host:port`` (0 picks a free port).

    ``start()`` returns once the server accepts connections; ``stop()`` shuts it down and closes
    the store. Both are called by the context manager.
    """

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        api_key: str | None = None,
        faults: Faults | None = None,
        knobs: Knobs | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        processing_delay: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if max_file_bytes < 1:
            raise ValueError(f"max_file_bytes must be at least 1, not {max_file_bytes}")
        if processing_delay < 0:
            raise ValueError(f"processing_delay must be >= 0, not {processing_delay}")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.host = host
        self.port = port
        self.initial_faults = faults or Faults()
        self.injector = FaultInjector(self.initial_faults)
        self.initial_knobs = knobs or Knobs()
        self.knob_holder = KnobHolder(self.initial_knobs)
        self._settings = Settings(
            api_key=api_key, max_file_bytes=max_file_bytes, processing_delay=processing_delay
        )
        self.store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        # Never the API key.
        state = "running" if self._thread is not None else "stopped"
        return f"<EmulatorServer {self.base_url if self._thread else self.host} {state}>"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` — what a client uses as its API base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{API_PREFIX}"

    @property
    def admin_url(self) -> str:
        """``http://HOST:PORT/_emulator`` — the admin endpoints (faults, reset)."""
        return self.base_url.removesuffix(API_PREFIX) + ADMIN_PREFIX

    def start(self) -> EmulatorServer:
        """Open the store, bind the port and serve in a background thread; return when ready."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
        # then, and without it every answer waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.store = Store(self.data_dir)
        emulator = create_app(
            self.store,
            self.injector,
            self._settings,
            initial_faults=self.initial_faults,
            knobs=self.knob_holder,
            initial_knobs=self.initial_knobs,
        )

        class protocol(_EmulatorProtocol):
            app_routes = emulator.direct

        config = uvicorn.Config(
            emulator.asgi,
            http=protocol,
            # No proxies in front of the emulator: the layer that reads their headers is a cost.
            proxy_headers=False,
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_keep_alive=KEEP_ALIVE_S,
            # The default (5 s) would keep idle test clients' connections open after stop().
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="syncd-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator's HTTP server did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests get a moment to finish) and close the store."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- run-time control (the same as the admin endpoints, without HTTP) --------------------

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self.injector.faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some fault settings (see ``Faults``); the others stay as they are."""
        return self.injector.update(**changes)

    def clear_faults(self) -> None:
        """Inject no more faults."""
        self.injector.replace(Faults())

    def fault_counts(self) -> dict[str, int]:
        """How many of each fault were injected since faults were last replaced."""
        return self.injector.counts()

    @property
    def knobs(self) -> Knobs:
        """The behaviour settings in force (ingestion time, stuck rate, Assistants API state,
        rate limits…)."""
        return self.knob_holder.knobs

    def set_knobs(self, **changes: Any) -> Knobs:
        """Change some behaviour settings (see ``Knobs``); the others stay as they are."""
        return self.knob_holder.update(**changes)

    def reset(self) -> None:
        """Forget all state and go back to the faults and settings the server was started
        with."""
        if self.store is None:
            raise RuntimeError("the emulator is not running")
        self.store.reset()
        self.injector.replace(self.initial_faults)
        self.knob_holder.replace(self.initial_knobs)
