"""How does the daemon behave? Three measurements of ``syncd run`` as a real process.

1. **Latency.** From a file closed in the drop folder to the file attached to the folder's
   assistant: p50 and p99 over ``--drops`` drops, printed next to ``debounce_seconds`` (which
   is most of it, on purpose: a file must settle before it is read). Each drop is timed from
   the ``close()`` to the daemon's ``attached …`` log line arriving on its stderr; the file is
   then removed again, so the assistant stays under its 20-file limit.
2. **Idle CPU.** The daemon watching ``--files`` files that are in sync, for
   ``--idle-seconds``: CPU time used (user + system, from /proc) over wall time.
3. **Peak RSS during a burst.** ``--files`` files dropped at once into a watched folder; the
   daemon's peak resident memory (``VmHWM``) once all are uploaded, next to its RSS before.

The emulator runs in this process on loopback; the daemon is a child process, so its figures
are its own.

    python bench/daemon.py                       # 200 drops, 10,000 files, 60 s idle
    python bench/daemon.py --drops 50 --files 2000 --idle-seconds 10
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from procstat import cpu_seconds, memory_kib

from syncd.api import Client
from syncd.config import write_config
from syncd.emulator import EmulatorServer

API_KEY = "sk-bench-0123456789"


class Daemon:
    """``syncd run`` as a child process; its stderr lines are queued with their arrival time."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "OPENAI_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put((time.perf_counter(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 600) -> float:
        """Wait for a line containing ``text``; return when it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"the daemon did not log {text!r} in {timeout} s") from None
            if "error" in line:
                print(f"  daemon: {line}", file=sys.stderr)
            if text in line:
                return at

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def memory_kib(self, key: str) -> int:
        return memory_kib(self.proc.pid, key)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def bench_config(
    workdir: Path, base_url: str, drop: Path, assistant: str | None, debounce: float
) -> Path:
    return write_config(
        workdir / "syncd.toml",
        api={"base_url": base_url},
        sync={
            "state_dir": workdir / "state",
            "debounce_seconds": debounce,
            "rescan_interval_seconds": 3600,
            "concurrency": 8,
        },
        folders=[
            {
                "name": "bench",
                "path": drop,
                "purpose": "assistants",
                "assistants": [assistant] if assistant else [],
            }
        ],
    )


@contextmanager
def workspace(
    server: EmulatorServer, *, assistant: bool, debounce: float
) -> Iterator[tuple[Path, Path, Path]]:
    """A temporary work directory, its empty drop folder and a configuration for them."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        workdir = Path(tmp)
        drop = workdir / "drop"
        drop.mkdir()
        assistant_id = None
        if assistant:
            with Client(server.base_url, API_KEY) as client:
                assistant_id = client.create_assistant(name="bench").id
        yield workdir, drop, bench_config(workdir, server.base_url, drop, assistant_id, debounce)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_latency(server: EmulatorServer, drops: int, debounce: float) -> None:
    with workspace(server, assistant=True, debounce=debounce) as (_, drop, config):
        daemon = Daemon(config)
        try:
            daemon.wait_for("ready:")
            latencies = []
            for i in range(drops):
                name = f"drop-{i:04}.md"
                with (drop / name).open("w") as f:
                    f.write(f"# Drop {i}\n\nSome text to index.\n")
                closed = time.perf_counter()
                attached = daemon.wait_for(f"attached bench/{name} to", timeout=60)
                latencies.append(attached - closed)
                (drop / name).unlink()
                daemon.wait_for(f"(bench/{name} was removed)", timeout=60)
        finally:
            daemon.stop()
    print(
        f"latency, file closed -> attached, {drops} drops, debounce_seconds = {debounce:g}: "
        f"p50 {percentile(latencies, 50):.3f} s, p99 {percentile(latencies, 99):.3f} s "
        f"(min {min(latencies):.3f}, mean {statistics.fmean(latencies):.3f}, "
        f"max {max(latencies):.3f})"
    )


def make_files(drop: Path, count: int) -> None:
    for i in range(count):
        sub = drop / f"d{i // 1000:03}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:05}.txt").write_text(f"file {i}\n")


def wait_until_synced(server: EmulatorServer, count: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    with Client(server.base_url, API_KEY) as client:
        while len(client.list_files()) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"fewer than {count} files uploaded after {timeout} s")
            time.sleep(1)


def bench_idle(server: EmulatorServer, files: int, seconds: float) -> None:
    server.reset()
    with workspace(server, assistant=False, debounce=2.0) as (_, drop, config):
        make_files(drop, files)
        daemon = Daemon(config)
        try:
            daemon.wait_for("ready:", timeout=900)
            time.sleep(2)  # let the first pass's aftermath settle
            before, started = daemon.cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            used, elapsed = daemon.cpu_seconds() - before, time.monotonic() - started
            rss = daemon.memory_kib("VmRSS")
        finally:
            daemon.stop()
    print(
        f"idle CPU, watching {files:,} files for {elapsed:.0f} s: {used:.2f} s of CPU "
        f"= {100 * used / elapsed:.2f} % of one core (RSS {rss / 1024:.0f} MiB)"
    )


def bench_burst(server: EmulatorServer, files: int) -> None:
    server.reset()
    with workspace(server, assistant=False, debounce=2.0) as (_, drop, config):
        daemon = Daemon(config)
        try:
            daemon.wait_for("ready:")
            before = daemon.memory_kib("VmRSS")
            started = time.monotonic()
            make_files(drop, files)
            wait_until_synced(server, files)
            elapsed = time.monotonic() - started
            peak = daemon.memory_kib("VmHWM")
        finally:
            daemon.stop()
    print(
        f"burst of {files:,} files: all uploaded in {elapsed:.1f} s; peak RSS "
        f"{peak / 1024:.0f} MiB (RSS before the burst {before / 1024:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=200)
    parser.add_argument("--debounce", type=float, default=0.5, help="debounce_seconds")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument(
        "--only", choices=["latency", "idle", "burst"], action="append", help="run only these"
    )
    args = parser.parse_args()
    only = set(args.only or ["latency", "idle", "burst"])
    with EmulatorServer(api_key=API_KEY) as server:
        if "latency" in only:
            bench_latency(server, args.drops, args.debounce)
        if "idle" in only:
            bench_idle(server, args.files, args.idle_seconds)
        if "burst" in only:
            bench_burst(server, args.files)


if __name__ == "__main__":
    main()
