"""How fast is a pass? Two measurements, printed as figures and ratios.

1. **No-change pass.** A tree of N small files that is already in sync; ``syncd reconcile``
   (the command, as a user runs it: process start, config, lock, scan, listing the service,
   planning, recording the pass) next to ``find DIR -type f -printf '%s %T@\\n'`` over the same
   tree — the least any tool must do to notice a change. Default N: 10,000 and 100,000.
2. **Cold sync.** 2,000 small files never synced before: ``syncd reconcile`` next to a naive loop
   that uploads them one by one (one request after another on one keep-alive connection), on
   loopback as it is and with ``--latency-ms`` added to every request (the real service takes
   tens to hundreds of milliseconds per upload; there, concurrency is what counts).

Both talk HTTP to ``syncd emulator`` running as its own process on loopback. Each timing is the
median of ``--repeat`` runs, with the page cache warm (a first run is not counted).

    python bench/reconcile.py                  # 10k and 100k no-change, 2k cold
    python bench/reconcile.py --sizes 10000 --cold 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx2
from emulator_process import emulator_process

from syncd.config import write_config

API_KEY = "sk-bench-0123456789"
FILES_PER_DIR = 1000


def emulator(latency_ms: int = 0) -> AbstractContextManager[str]:
    """``syncd emulator`` in its own process; yields its base URL."""
    return emulator_process(API_KEY, "--latency-ms", str(latency_ms))


def make_tree(root: Path, n: int) -> None:
    """``n`` small, distinct text files, ``FILES_PER_DIR`` to a directory."""
    for i in range(n):
        directory = root / f"d{i // FILES_PER_DIR:04d}"
        if i % FILES_PER_DIR == 0:
            directory.mkdir(parents=True)
        fd = os.open(directory / f"f{i:06d}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, f"file {i}\n".encode())
        os.close(fd)


def bench_config(work: Path, base_url: str, tree: Path, concurrency: int) -> Path:
    return write_config(
        work / "syncd.toml",
        api={"base_url": base_url},
        sync={
            "state_dir": work / "state",
            "concurrency": concurrency,
            "max_delete_fraction": 1.0,
        },
        folders=[{"name": "bench", "path": tree, "purpose": "assistants"}],
    )


def syncd_env() -> dict[str, str]:
    """The environment syncd runs in: the API key, and Python allowed to cache compiled modules.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some containers) every run compiles syncd's
    modules anew, which an installed syncd never does: a tenth of a second per run."""
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed


def median_of(repeat: int, command: list[str], env: dict[str, str] | None = None) -> float:
    timed(command, env)  # warm-up: page cache, .pyc files
    return statistics.median(timed(command, env) for _ in range(repeat))


def find_command(tree: Path) -> list[str]:
    """``find`` listing each file's size and mtime: the least any tool must do to notice a
    change, the baseline of every no-change figure."""
    return ["find", str(tree), "-type", "f", "-printf", r"%s %T@\n"]


def reconcile_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "syncd", "reconcile", "--config", str(config)]


def bench_no_change(work: Path, n: int, repeat: int, concurrency: int) -> None:
    tree = work / f"tree-{n}"
    started = time.perf_counter()
    make_tree(tree, n)
    made = time.perf_counter() - started
    env = syncd_env()
    with emulator() as base_url:
        config = bench_config(work, base_url, tree, concurrency)
        cold = timed(reconcile_command(config), env)
        syncd = median_of(repeat, reconcile_command(config), env)
    find = median_of(repeat, find_command(tree))
    print(
        f"no-change pass, {n:,} files: syncd reconcile {syncd:.2f} s, find {find:.3f} s "
        f"(ratio {syncd / find:.1f}×); tree made in {made:.1f} s, first sync {cold:.1f} s "
        f"({n / cold:,.0f} files/s)",
        flush=True,
    )
    shutil.rmtree(tree)
    shutil.rmtree(work / "state")


def naive_upload(base_url: str, tree: Path) -> float:
    """Upload every file, one request after another."""
    started = time.perf_counter()
    with httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    ) as client:
        for path in sorted(tree.rglob("*.txt")):
            with path.open("rb") as fh:
                response = client.post(
                    "/files", files={"file": (path.name, fh)}, data={"purpose": "assistants"}
                )
            response.raise_for_status()
    return time.perf_counter() - started


def bench_cold(work: Path, n: int, concurrency: int, latency_ms: int) -> None:
    tree = work / f"cold-{n}"
    make_tree(tree, n)
    env = syncd_env()
    with emulator(latency_ms) as base_url:
        naive = naive_upload(base_url, tree)
    with emulator(latency_ms) as base_url:
        config = bench_config(work, base_url, tree, concurrency)
        syncd = timed(reconcile_command(config), env)
    print(
        f"cold sync, {n:,} small files, +{latency_ms} ms per request: "
        f"syncd reconcile {syncd:.2f} s ({n / syncd:,.0f} files/s, concurrency {concurrency}), "
        f"naive one-by-one loop "
        f"{naive:.2f} s ({n / naive:,.0f} files/s); naive/syncd {naive / syncd:.2f}×",
        flush=True,
    )
    shutil.rmtree(tree)
    shutil.rmtree(work / "state")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--cold", type=int, default=2_000, help="files in the cold sync (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--latency-ms", type=int, nargs="*", default=[0, 20], help="cold sync latencies"
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        work = Path(tmp)
        for latency_ms in args.latency_ms if args.cold else []:
            bench_cold(work, args.cold, args.concurrency, latency_ms)
        for n in args.sizes:
            bench_no_change(work, n, args.repeat, args.concurrency)


if __name__ == "__main__":
    main()
