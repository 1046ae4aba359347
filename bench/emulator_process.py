"""``syncd emulator`` in its own process, as the benchmarks use it: shared by bench scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

READY = "syncd emulator listening on "


@contextmanager
def emulator_popen(
    api_key: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start ``syncd emulator --port 0 OPTIONS`` accepting only ``api_key``; yield its base URL
    (ending in ``/v1``) and the process (for its CPU time and memory), and stop it on the way
    out. ``env`` adds to this process's environment (e.g. ``TMPDIR``, where the blobs go)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "emulator", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {}), "SYNCD_EMULATOR_API_KEY": api_key},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY):
            raise SystemExit(f"the emulator did not start: {line!r}")
        yield line[len(READY) :].strip(), process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def emulator_process(api_key: str, *options: str) -> Iterator[str]:
    """Like ``emulator_popen``, yielding only the base URL."""
    with emulator_popen(api_key, *options) as (base_url, _):
        yield base_url
