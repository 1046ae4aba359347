"""Fixtures shared by the tests that run ``syncd run`` as a subprocess."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.api import Client

from .harness import DaemonProcess, FolderDef, write_config


@pytest.fixture
def client(emulator, api_key: str) -> Iterator[Client]:
    with Client(emulator.base_url, api_key) as c:
        yield c


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons started by a test; whatever is still running at the end is killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture
def one_folder_daemon(
    tmp_path: Path, emulator, api_key: str, daemons: list[DaemonProcess]
) -> Callable[[], tuple[Path, DaemonProcess]]:
    """Start a daemon on one empty drop folder ``d`` (no assistant) and wait until it is
    ready; returns the folder and the daemon."""

    def start() -> tuple[Path, DaemonProcess]:
        drop = tmp_path / "drop"
        drop.mkdir()
        config = write_config(
            tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state", [FolderDef("d", drop)]
        )
        daemon = DaemonProcess(config, api_key)
        daemons.append(daemon)
        daemon.wait_for_line("ready:")
        return drop, daemon

    return start
