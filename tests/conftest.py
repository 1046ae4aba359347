"""Fixtures shared by every test directory: a running emulator and HTTP clients for it.

One emulator serves the whole session (starting one costs ~10 ms, but stopping one ~200 ms, which
adds up over hundreds of tests); the function-scoped ``emulator`` fixture resets it — no files,
assistants, threads or messages, no faults — before handing it to a test, so each test starts
from a fresh, empty service. Tests that need other settings (a data directory, a small file-size
limit, no fixed key) start their own server with ``emulator_factory``.

The session server requires ``api_key``, the fixed fake key every test sends, and turns fine-tune
files ``processed`` 0.05 s after upload.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

if TYPE_CHECKING:
    from syncd.emulator import EmulatorServer

FAKE_API_KEY = "sk-test-syncd-0123456789abcdef"


@pytest.fixture(scope="session")
def api_key() -> str:
    """The fake API key the shared emulator accepts (and no other)."""
    return FAKE_API_KEY


@pytest.fixture(scope="session")
def _shared_emulator(api_key: str) -> Iterator[EmulatorServer]:
    from syncd.emulator import EmulatorServer

    with EmulatorServer(api_key=api_key) as server:
        yield server


@pytest.fixture
def emulator(_shared_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """A running in-memory emulator with no state and no faults (fault settings may be changed
    freely with ``set_faults``; the next test gets them cleared)."""
    if _shared_emulator.store is None:  # a test stopped it: serve again, on the same port
        _shared_emulator.start()
    _shared_emulator.reset()
    yield _shared_emulator
    _shared_emulator.reset()  # frees the blobs, and no background thread keeps seeing faults


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start an emulator with any ``EmulatorServer`` arguments; it is stopped after the test."""
    from syncd.emulator import EmulatorServer

    started: list[EmulatorServer] = []

    def start(**kwargs: Any) -> EmulatorServer:
        server = EmulatorServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback base URL nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _api_headers(api_key: str) -> dict[str, str]:
    """The headers a client of the Assistants v1 API sends."""
    return {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": "assistants=v1"}


@pytest.fixture
def http(emulator: EmulatorServer, api_key: str) -> Iterator[httpx2.Client]:
    """An httpx2 client for raw HTTP against ``emulator``: relative URLs (``"files"``), the key and
    the ``OpenAI-Beta`` header already set."""
    with httpx2.Client(
        base_url=emulator.base_url + "/", headers=_api_headers(api_key), timeout=10
    ) as client:
        yield client
