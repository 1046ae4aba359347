"""Measuring a transfer in its own process, shared by the bench scripts (``transfer.py``,
``uploads.py``): the test file, peak RSS from ``/proc``, a worker's figures, and curl timed.

Time is measured inside each process around the transfer only, so interpreter start-up is not
counted; peak RSS is the whole process's high-water mark (``VmHWM``), imports included.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MB",
    "Result",
    "add_worker_arguments",
    "bench_api_key",
    "curl_command",
    "curl_timed",
    "print_worker_facts",
    "run_measured",
    "run_worker",
    "vm_hwm",
    "worker_api_key",
    "worker_env",
    "write_jsonl",
]

MB = 1024 * 1024
LINE_BYTES = 4096
#: How a worker process is handed the key: in its environment, never on its command line.
WORKER_KEY_VARIABLE = "BENCH_API_KEY"


@dataclass(frozen=True)
class Result:
    """One transfer: wall seconds of the transfer, and the process's peak RSS in bytes."""

    seconds: float
    peak_rss: int
    baseline_rss: int = 0  # before the transfer started (syncd's worker only)

    def throughput(self, size: int) -> float:
        return size / MB / self.seconds


def bench_api_key() -> str:
    """A fresh key for one run: the emulator accepts only it."""
    return "sk-bench-" + secrets.token_hex(8)


def add_worker_arguments(parser: argparse.ArgumentParser, modes: list[str]) -> None:
    """The hidden arguments by which a bench script runs itself as a worker in one of
    ``modes`` (``--worker MODE --base-url URL --path PATH``)."""
    parser.add_argument("--worker", choices=modes, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)


def worker_env(api_key: str) -> dict[str, str]:
    """The environment of a worker process: this one's, with ``api_key`` for the worker."""
    return {**os.environ, WORKER_KEY_VARIABLE: api_key}


def worker_api_key() -> str:
    """In a worker process: the key :func:`worker_env` handed it."""
    return os.environ[WORKER_KEY_VARIABLE]


def write_jsonl(path: Path, size: int) -> None:
    """Write about ``size`` bytes of valid fine-tune JSONL, one 4 KB line at a time."""
    filler = "x" * (LINE_BYTES - 64)
    written = 0
    with path.open("w", encoding="ascii") as out:
        number = 0
        while written < size:
            line = json.dumps({"messages": [{"role": "user", "content": f"{number} {filler}"}]})
            out.write(line + "\n")
            written += len(line) + 1
            number += 1


def vm_hwm(pid: int | str) -> int:
    """Peak RSS in bytes of the process's current program (0 once it has exited).

    Not ``ru_maxrss``: that also counts the forked copy of this (Python) process that existed
    before ``exec``, which would credit curl with our memory.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, int]:
    """Run ``argv`` to completion; return its stdout and its peak RSS in bytes, sampled from
    ``/proc`` every few milliseconds while it runs."""
    peak = 0
    with tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen(argv, stdout=stdout, env=env)
        while proc.poll() is None:
            peak = max(peak, vm_hwm(proc.pid))
            time.sleep(0.005)
        stdout.seek(0)
        output = stdout.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with status {proc.returncode}: {output[-500:]}")
    return output, peak


def print_worker_facts(baseline: int, seconds: float, **facts: Any) -> None:
    """What a syncd worker process prints for :func:`run_worker`: its seconds, its RSS before
    the transfer (``baseline``) and at its peak, and ``facts`` of its own."""
    print(json.dumps({"seconds": seconds, **facts, "baseline": baseline, "peak": vm_hwm("self")}))


def run_worker(argv: list[str], env: dict[str, str]) -> tuple[Result, dict[str, Any]]:
    """Run a worker process (one that ends with :func:`print_worker_facts`); return its result
    and everything it printed."""
    out, rss = run_measured(argv, env)
    facts = json.loads(out)
    return Result(facts["seconds"], max(rss, facts["peak"]), facts["baseline"]), facts


def curl_command(api_key: str, *args: str) -> list[str]:
    """curl, quiet but for errors, failing on an HTTP error, authenticated with ``api_key``."""
    return [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--header",
        f"Authorization: Bearer {api_key}",
        *args,
    ]


def curl_timed(api_key: str, *args: str) -> tuple[Result, str]:
    """Run curl with ``args``, measured; return its result (curl's own ``time_total``) and the
    response body (when not saved)."""
    out, rss = run_measured(curl_command(api_key, "--write-out", "\n%{time_total}", *args))
    body, _, seconds = out.rpartition("\n")
    return Result(float(seconds), rss), body
