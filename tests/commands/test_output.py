"""How results look: sizes and times, and rich tables only when stdout is a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from syncd.cli.output import iso_time
from syncd.engine.report import human_size

from .conftest import Workspace


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (12_000, "12 KB"),
        (1023 * 1024, "1023 KB"),
        (1024**2 - 1, "1.0 MB"),
        (512 * 1024**2, "512 MB"),  # the service's limit, as it counts
        (600 * 10**6, "572 MB"),
        (5 * 1024**4, "5.0 TB"),
        (2000 * 1024**4, "2000 TB"),
    ],
)
def test_human_size(n: int, shown: str) -> None:
    assert human_size(n) == shown


def test_iso_time_is_utc() -> None:
    assert iso_time(1_700_000_000.9) == "2023-11-14T22:13:20Z"
    assert iso_time(None) is None


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``syncd ARGS`` with stdout on a pseudo-terminal; return its status and output."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", *args],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**os.environ, **env, "COLUMNS": "160", "TERM": "dumb"},
        )
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = process.wait(timeout=30)
    finally:
        os.close(controller)
    return status, b"".join(chunks).decode()


@pytest.mark.timeout(60)
def test_a_terminal_gets_rich_tables(workspace: Workspace, api_key: str) -> None:
    config = str(workspace.config)
    status, out = run_on_a_terminal(["status", "--config", config], {})
    assert status == 0
    assert "━" in out  # rich's header rule; plain text has none
    assert "docs" in out
    status, out = run_on_a_terminal(["check", "--config", config], {"OPENAI_API_KEY": api_key})
    assert status == 0
    assert "✓" in out
    assert "FAIL" not in out
