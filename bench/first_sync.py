"""What does a first sync cost per small file, in CPU? syncd's and the emulator's, side by side.

Issue #14 wants 1,000 small files a second on this 2-core machine, syncd and ``syncd emulator``
sharing the cores: the CPU each spends per file decides it, more than the wall time, which a busy
machine stretches. For each of ``--repeat`` rounds this makes a tree of ``--files`` small files,
starts the emulator (its own process, blobs in ``/dev/shm``) and runs ``syncd reconcile`` at
``--concurrency``, and prints syncd's CPU per file (user and system, from the child's rusage),
the emulator's (from ``/proc``), files/s and the load average.

``--baseline DIR`` also runs the syncd found in DIR (a checkout's root, holding ``syncd/``; e.g.
``git archive <commit> syncd | tar -x -C DIR``) in each round, alternating with this one, so that
both see the same load; the medians of the two and their ratio close the output. The emulator is
this checkout's in both.

    python bench/first_sync.py --files 10000 --repeat 3
    python bench/first_sync.py --baseline /tmp/base --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import reconcile
from emulator_process import emulator_popen
from procstat import cpu_seconds


def first_sync(n: int, concurrency: int, source: Path | None) -> tuple[float, float, float, float]:
    """One first sync of ``n`` new files by the syncd in ``source`` (``None``: this checkout);
    syncd's user and system CPU seconds per file, the emulator's CPU seconds per file, and
    files per second."""
    with tempfile.TemporaryDirectory(prefix="syncd-first-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        reconcile.make_tree(tree, n)
        env = reconcile.syncd_env()
        with emulator_popen(reconcile.API_KEY, env={"TMPDIR": "/dev/shm"}) as (url, emulator):
            config = reconcile.bench_config(work, url, tree, concurrency)
            emulator_before = cpu_seconds(emulator.pid)
            before = os.times()
            started = time.perf_counter()
            # `python -m syncd` imports syncd from its working directory first.
            subprocess.run(
                reconcile.reconcile_command(config),
                env=env,
                cwd=source,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - started
            after = os.times()
            emulator_cpu = cpu_seconds(emulator.pid) - emulator_before
    user = after.children_user - before.children_user
    system = after.children_system - before.children_system
    return user / n, system / n, emulator_cpu / n, n / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a checkout whose syncd to compare with")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "syncd").is_dir():
        raise SystemExit(f"--baseline: no syncd/ in {args.baseline}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    sides = {"this": None, "baseline": args.baseline} if args.baseline else {"this": None}
    figures: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(args.repeat):
        for side, source in sides.items():
            user, system, emulator, rate = first_sync(args.files, args.concurrency, source)
            figures[side].append(user + system)
            print(
                f"{side:>8}: {args.files:,} files, concurrency {args.concurrency}: syncd "
                f"{1000 * (user + system):.3f} ms CPU/file (user {1000 * user:.3f}, system "
                f"{1000 * system:.3f}), emulator {1000 * emulator:.3f} ms CPU/file, "
                f"{rate:,.0f} files/s (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    medians = {side: statistics.median(values) for side, values in figures.items()}
    line = f"median syncd CPU per file: this {1000 * medians['this']:.3f} ms"
    if args.baseline:
        ratio = medians["this"] / medians["baseline"]
        line += f", baseline {1000 * medians['baseline']:.3f} ms ({ratio:.2f}×)"
    print(line)


if __name__ == "__main__":
    main()
