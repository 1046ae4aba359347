"""Running ``syncd run`` as a subprocess against the test emulator, and reading the result back.

The daemon is a real process (its own signal handling, its own inotify watches); the remote
state is read over HTTP from the emulator, as any client of the service would see it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import syncd.config
from syncd.api import Client
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import State

T = TypeVar("T")

DEBOUNCE = 0.2


@dataclass
class FolderDef:
    name: str
    path: Path
    assistants: list[str] = field(default_factory=list)
    vector_stores: list[str] = field(default_factory=list)

    def table(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": self.path,
            "purpose": "assistants",
            "assistants": self.assistants,
            "vector_stores": self.vector_stores,
        }


def write_config(
    path: Path,
    base_url: str,
    state_dir: Path,
    folders: Iterable[FolderDef],
    *,
    grace: float = 10,
    sync: Mapping[str, object] | None = None,
) -> Path:
    """A daemon configuration for tests: short debounce, no periodic pass in the way."""
    return syncd.config.write_config(
        path,
        api={"base_url": base_url, "max_attempts": 6, "timeout_seconds": 10},
        sync={
            "state_dir": state_dir,
            "debounce_seconds": DEBOUNCE,
            "rescan_interval_seconds": 600,
            "concurrency": 8,
            "shutdown_grace_seconds": grace,
            **(sync or {}),
        },
        folders=[f.table() for f in folders],
    )


class DaemonProcess:
    """``syncd run`` in a child process, its log lines collected as they come."""

    def __init__(self, config: Path, api_key: str, *, env: dict[str, str] | None = None) -> None:
        # -v: the per-pass summaries are debug lines, and the tests count them.
        self._spawn(["run", "--config", str(config), "-v"], api_key, env)

    def _spawn(self, args: list[str], api_key: str, env: dict[str, str] | None = None) -> None:
        """Start ``syncd ARGS`` with ``api_key`` and none of the caller's syncd or systemd
        settings, and collect its stderr."""
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "NOTIFY"))}
        child_env.update(OPENAI_API_KEY=api_key, PYTHONUNBUFFERED="1")
        child_env.update(env or {})
        child_env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 20.0, *, after: int = 0) -> int:
        """Wait until a line (index >= ``after``) matches ``pattern``; return its index."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.lines)):
                    if regex.search(self.lines[i]):
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no log line matching {pattern!r} within {timeout} s; log:\n"
                        + "\n".join(self.lines[-60:])
                    )
                self._cond.wait(min(remaining, 0.2))

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if regex.search(line))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(timeout=5)


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """Call ``check`` until it returns without AssertionError (or fail with its last error)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def holds(condition: bool) -> None:
    """``assert`` as a function, for :func:`eventually` lambdas."""
    assert condition


def states(state_dir: Path) -> dict[str, int]:
    """How many manifest entries are in each state, over all folders."""
    with ManifestDB.open(state_dir, readonly=True) as manifest:
        counts: dict[str, int] = {}
        for by_state in manifest.counts().values():
            for state, n in by_state.items():
                counts[state] = counts.get(state, 0) + n
        return counts


def stop_with_uploads_in_flight(
    daemon: DaemonProcess, state_dir: Path, *, after: float = 0.0
) -> float:
    """Once an upload is in flight (an entry is ``uploading``), and ``after`` seconds more,
    SIGTERM the daemon: it exits 0 and says its shutdown grace period ran out. Returns how long
    it took to exit."""
    eventually(lambda: holds(states(state_dir).get(State.UPLOADING.value, 0) > 0), interval=0.05)
    time.sleep(after)
    stopped_at = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(10) == 0
    took = time.monotonic() - stopped_at
    daemon.wait_for_line("grace period is over")
    return took


def remote_names(client: Client) -> Counter[str]:
    """How many remote files carry each filename (a duplicate shows as a count above 1)."""
    return Counter(f.filename for f in client.list_files())


def attached_names(client: Client, assistant: str) -> set[str]:
    """The filenames of the files attached to ``assistant``."""
    by_id = {f.id: f.filename for f in client.list_files()}
    return {by_id.get(a.id, a.id) for a in client.iter_assistant_files(assistant)}


def assert_exactly(client: Client, names: Iterable[str]) -> None:
    """The service holds exactly one file for each of ``names``, and nothing else."""
    found = remote_names(client)
    expected = Counter(names)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    duplicated = sorted(n for n, c in found.items() if c > 1)
    assert not (missing or extra or duplicated), (
        f"missing {missing[:10]} ({len(missing)}), extra {extra[:10]} ({len(extra)}), "
        f"duplicated {duplicated[:10]} ({len(duplicated)})"
    )
