"""Does syncd scale to big folders? Each figure is printed beside a baseline from the same run.

For each size N (``--sizes``, default 20,000 and 100,000 small files; ``--daemon-sizes``,
default 10,000 and 100,000) one chain runs against a fresh ``syncd emulator`` process on
loopback, so the steps share the work of the first:

1. **First sync.** ``syncd reconcile`` of N files never synced before, at ``--concurrency``:
   files/s (the goal is at least 1,000), and the CPU seconds each side spent — syncd's (from
   ``/usr/bin/time``) and the emulator's (from ``/proc``) — so it shows who is the bottleneck,
   and the rate a core for each would allow (what the wall time shows on an idle machine).
2. **No-change pass** (sizes in ``--sizes``). ``syncd reconcile`` again, nothing to do: wall
   time and peak RSS of the syncd process (``/usr/bin/time``'s maximum resident set), median
   of ``--repeat`` runs after a warm-up, next to ``rsync -a --dry-run TREE/ COPY/`` against an
   identical copy (``cp -a``) — what a mature tool needs to find that nothing changed — and
   ``find TREE -type f -printf '%s %T@'``, the least any tool must do. syncd and rsync run in
   turn, and the ratio is the median of the pairs' ratios. The goal is at most 3× rsync and
   150 MB at 100,000 files. CPU seconds are printed too: under load they move less than wall
   time.
3. **Daemon, idle** (sizes in ``--daemon-sizes``). ``syncd run`` over the synced tree: once it
   logs ``ready:`` and has settled, its RSS (goal: at most 120 MB at 100,000 files) and its
   peak during the start-up pass.

Then the growth of peak RSS per additional file, fitted (least squares) over the sizes, and
what it predicts for 1,000,000 files. With ``--million``, the chain runs once more over
1,000,000 files (``--million-files``) on a tmpfs (``--tmpfs DIR``; by default a tmpfs is
mounted when running as root, else ``/dev/shm`` is used): the first sync and one no-change
pass, with ``find`` as the baseline (a copy for rsync would double the tmpfs's memory). The
first sync of a million files takes most of an hour at today's rate; ``--million-seeded``
instead writes the state a first sync would leave (``bench/seed.py``: the emulator's data
directory and syncd's manifest) and times a no-change pass over it; ``--million-dry-run`` times
``reconcile --dry-run`` over the new tree: the scan, the listing and a plan of a million
uploads, held in memory at once.

The emulator keeps its blobs (one file per upload) under ``--emulator-tmpdir``, by default
``/dev/shm``: creating a file on this machine's ext4 costs the emulator ~0.4 ms of CPU, a third
of its work per small upload, and the service's storage is not what is measured here.

Each line carries the 1-minute load average: the machine may be shared, and a figure taken
under load is slower than it would be alone; the ratios, measured back to back, suffer less.

Needs GNU time and rsync (Debian: ``apt-get install time rsync``).

    python bench/scale.py                                   # the issue's figures (~15 min)
    python bench/scale.py --sizes 2000 5000 --daemon-sizes  # quick
    python bench/scale.py --sizes --daemon-sizes --million  # only the 1,000,000-file folder
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import daemon
import reconcile
import seed
from emulator_process import emulator_popen
from procstat import cpu_seconds

API_KEY = reconcile.API_KEY
MIB = 1024 * 1024
#: Seconds the daemon is left alone after ``ready:`` before its RSS is read.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class Run:
    """One process run to completion: wall seconds, peak RSS in bytes, CPU seconds."""

    seconds: float
    peak_rss: int
    cpu: float


@dataclass(frozen=True)
class SizeFigures:
    """What one size's chain measured (``None``: that step did not run)."""

    n: int
    first_sync: Run
    no_change: Run | None = None
    daemon_rss: int | None = None


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def measured(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``command`` under GNU time; its wall time, peak RSS and CPU time."""
    with tempfile.NamedTemporaryFile("w+") as report, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", report.name, *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{command[:4]} exited {result.returncode}: {stderr.read()[-2000:]}")
        # GNU time may put a line of its own first; the figures are the last three words.
        max_rss_kib, user, system = report.read().split()[-3:]
    return Run(elapsed, int(max_rss_kib) * 1024, float(user) + float(system))


def median_run(repeat: int, command: list[str], env: dict[str, str] | None = None) -> Run:
    """A warm-up run (page cache, .pyc files), then the median of each figure over ``repeat``."""
    measured(command, env)
    return _median([measured(command, env) for _ in range(repeat)])


def paired_runs(
    repeat: int, command: list[str], env: dict[str, str], baseline: list[str]
) -> tuple[Run, Run, float]:
    """``command`` and ``baseline`` each warmed up, then run in turn ``repeat`` times: the
    median of each one's figures, and the median of the ratios of each pair's wall times.

    Taken in turn, each pair meets the machine in the same state: on a shared machine whose
    speed drifts from one minute to the next, a ratio of two medians taken minutes apart
    moved by a third between runs of this benchmark."""
    measured(command, env)
    measured(baseline)
    pairs = [(measured(command, env), measured(baseline)) for _ in range(repeat)]
    ratio = statistics.median(ours.seconds / theirs.seconds for ours, theirs in pairs)
    return _median([p[0] for p in pairs]), _median([p[1] for p in pairs]), ratio


def _median(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.seconds for r in runs),
        int(statistics.median(r.peak_rss for r in runs)),
        statistics.median(r.cpu for r in runs),
    )


@contextmanager
def work_tree(root: Path, label: str, n: int) -> Iterator[tuple[Path, Path]]:
    """A working directory under ``root`` with a tree of ``n`` small files in it (said with how
    long it took); yields (the directory, the tree), and removes both afterwards."""
    work = root / f"{label}-{n}"
    work.mkdir()
    try:
        tree = work / "tree"
        started = time.perf_counter()
        reconcile.make_tree(tree, n)
        print(f"{n:,} files: tree made in {time.perf_counter() - started:.1f} s ({load()})")
        yield work, tree
    finally:
        shutil.rmtree(work)


def bench_size(
    root: Path,
    n: int,
    *,
    no_change: bool,
    daemon_idle: bool,
    repeat: int,
    concurrency: int,
    rsync: bool = True,
    emulator_env: dict[str, str] | None = None,
) -> SizeFigures:
    """One size's chain: make the tree, first sync, then the no-change pass and the idle daemon
    over the synced tree; remove it all afterwards."""
    with work_tree(root, "scale", n) as (work, tree):
        env = reconcile.syncd_env()
        with emulator_popen(API_KEY, env=emulator_env) as (base_url, emulator):
            config = reconcile.bench_config(work, base_url, tree, concurrency)
            command = reconcile.reconcile_command(config)
            emulator_cpu = cpu_seconds(emulator.pid)
            first = measured(command, env)
            emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu
            print(
                f"  first sync, concurrency {concurrency}: {first.seconds:.1f} s = "
                f"{n / first.seconds:,.0f} files/s (goal ≥ 1,000); CPU: syncd {first.cpu:.1f} s "
                f"({1000 * first.cpu / n:.2f} ms/file), emulator {emulator_cpu:.1f} s "
                f"({1000 * emulator_cpu / n:.2f} ms/file), so with a core each at most "
                f"{n / max(first.cpu, emulator_cpu):,.0f} files/s; syncd peak RSS "
                f"{first.peak_rss / MIB:.0f} MiB ({load()})",
                flush=True,
            )
            figures = SizeFigures(n, first)
            if no_change:
                figures = SizeFigures(
                    n, first, no_change_pass(work, tree, command, env, repeat, rsync)
                )
            if daemon_idle:
                figures = SizeFigures(
                    n, first, figures.no_change, idle_daemon(work, base_url, tree)
                )
        return figures


def bench_dry_run(root: Path, n: int, emulator_env: dict[str, str] | None) -> None:
    """``reconcile --dry-run`` over a new tree of ``n`` files: the scan, the (empty) listing and
    a plan of ``n`` uploads, all held at once."""
    with work_tree(root, "dry-run", n) as (work, tree):
        env = reconcile.syncd_env()
        with emulator_popen(API_KEY, env=emulator_env) as (base_url, _):
            config = reconcile.bench_config(work, base_url, tree, concurrency=8)
            dry = measured([*reconcile.reconcile_command(config), "--dry-run"], env)
        print(
            f"  dry run over the new tree (scan, listing, plan of {n:,} uploads): "
            f"{dry.seconds:.1f} s, CPU {dry.cpu:.1f} s, peak RSS {dry.peak_rss / MIB:.0f} MiB "
            f"({dry.peak_rss / n:,.0f} bytes/file) ({load()})",
            flush=True,
        )


def bench_seeded(root: Path, n: int, repeat: int) -> None:
    """A no-change pass over ``n`` files whose synced state was written directly
    (``bench/seed.py``): what a first sync would have left, made in a few minutes rather than
    the most of an hour a first sync of a million files takes. Beside ``find``."""
    with work_tree(root, "seeded", n) as (work, tree):
        started = time.perf_counter()
        seed.seed(tree, "bench", work / "state", work / "emulator")
        print(
            f"  synced state written in {time.perf_counter() - started:.1f} s ({load()})",
            flush=True,
        )
        env = reconcile.syncd_env()
        with emulator_popen(API_KEY, "--data-dir", str(work / "emulator")) as (base_url, _):
            config = reconcile.bench_config(work, base_url, tree, concurrency=8)
            syncd = median_run(repeat, reconcile.reconcile_command(config), env)
        find = median_run(repeat, reconcile.find_command(tree))
        print(
            f"  no-change pass: syncd {syncd.seconds:.1f} s (CPU {syncd.cpu:.1f} s), peak RSS "
            f"{syncd.peak_rss / MIB:.0f} MiB ({syncd.peak_rss / n:,.0f} bytes/file); find "
            f"{find.seconds:.2f} s ({syncd.seconds / find.seconds:.0f}×) ({load()})",
            flush=True,
        )


def no_change_pass(
    work: Path, tree: Path, command: list[str], env: dict[str, str], repeat: int, rsync: bool
) -> Run:
    """Time ``command`` (a no-change reconcile) beside ``find`` and, if asked, rsync.

    The first sync's writes are flushed first: syncd is timed before its baselines, and would
    otherwise share the disk and the kernel's time with the writeback of what it just wrote."""
    os.sync()
    if rsync:
        copy = work / "copy"
        subprocess.run(["cp", "-a", str(tree), str(copy)], check=True)
        rsync_command = ["rsync", "-a", "--dry-run", f"{tree}/", f"{copy}/"]
        syncd, baseline, ratio = paired_runs(repeat, command, env, rsync_command)
        shutil.rmtree(copy)
    else:
        syncd = median_run(repeat, command, env)
    find = median_run(repeat, reconcile.find_command(tree))
    line = (
        f"  no-change pass: syncd {syncd.seconds:.2f} s, peak RSS {syncd.peak_rss / MIB:.0f} MiB "
        f"(CPU {syncd.cpu:.2f} s); find {find.seconds:.3f} s ({syncd.seconds / find.seconds:.1f}×)"
    )
    if rsync:
        line += (
            f"; rsync -a --dry-run {baseline.seconds:.3f} s (CPU {baseline.cpu:.2f} s), peak RSS "
            f"{baseline.peak_rss / MIB:.0f} MiB: syncd/rsync {ratio:.1f}× (goal ≤ 3×; the "
            f"median of {repeat} pairs run in turn), in CPU time "
            f"{syncd.cpu / max(baseline.cpu, 0.01):.1f}×"
        )
    print(f"{line} ({load()})", flush=True)
    return syncd


def idle_daemon(work: Path, base_url: str, tree: Path) -> int:
    """``syncd run`` over the synced ``tree``: its RSS once settled after ``ready:``, in bytes."""
    config = daemon.bench_config(work, base_url, tree, None, debounce=2.0)
    process = daemon.Daemon(config)
    try:
        started = time.perf_counter()
        process.wait_for("ready:", timeout=1800)
        ready = time.perf_counter() - started
        time.sleep(SETTLE_SECONDS)
        rss = process.memory_kib("VmRSS") * 1024
        peak = process.memory_kib("VmHWM") * 1024
    finally:
        process.stop()
    print(
        f"  daemon: ready in {ready:.1f} s; idle RSS {rss / MIB:.0f} MiB (goal ≤ 120 MB at "
        f"100,000 files), peak during its start-up pass {peak / MIB:.0f} MiB ({load()})",
        flush=True,
    )
    return rss


def growth(label: str, points: list[tuple[int, int]]) -> None:
    """Print the least-squares line through (files, bytes) and its value at 1,000,000 files."""
    if len(points) < 2:
        return
    slope, intercept = statistics.linear_regression([n for n, _ in points], [b for _, b in points])
    sizes = ", ".join(f"{n:,}" for n, _ in points)
    print(
        f"{label}: {slope / 1024:.2f} KiB per additional file (fitted over {sizes} files; "
        f"{intercept / MIB:.0f} MiB at 0); at 1,000,000 files: "
        f"{(intercept + slope * 1_000_000) / MIB:,.0f} MiB",
        flush=True,
    )


@contextmanager
def tmpfs(requested: Path | None) -> Iterator[Path]:
    """A directory on a tmpfs: ``requested``, else a freshly mounted one (as root), else one
    under /dev/shm; removed (and unmounted) afterwards."""
    if requested is not None:
        with tempfile.TemporaryDirectory(dir=requested, prefix="syncd-scale-") as tmp:
            yield Path(tmp)
        return
    with tempfile.TemporaryDirectory(prefix="syncd-scale-tmpfs-") as mountpoint:
        mounted = (
            os.geteuid() == 0
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=12g,nr_inodes=4m", "tmpfs", mountpoint],
                capture_output=True,
            ).returncode
            == 0
        )
        if not mounted:
            with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="syncd-scale-") as tmp:
                yield Path(tmp)
            return
        try:
            yield Path(mountpoint)
        finally:
            subprocess.run(["umount", mountpoint], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--daemon-sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--million", action="store_true", help="also the 1,000,000-file folder")
    parser.add_argument("--million-files", type=int, default=1_000_000)
    parser.add_argument(
        "--million-dry-run",
        action="store_true",
        help="for --million, only time reconcile --dry-run over the new tree (no first sync)",
    )
    parser.add_argument(
        "--million-seeded",
        action="store_true",
        help="for --million, write the synced state directly (bench/seed.py) and time a "
        "no-change pass over it (no first sync)",
    )
    parser.add_argument("--tmpfs", type=Path, help="a tmpfs directory for --million")
    parser.add_argument(
        "--emulator-tmpdir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else "",
        help="where the emulator keeps its blobs (TMPDIR; empty: the system's)",
    )
    args = parser.parse_args()
    emulator_env = {"TMPDIR": args.emulator_tmpdir} if args.emulator_tmpdir else None
    for tool in ("/usr/bin/time", "rsync"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian: apt-get install time rsync)")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, emulator blobs in "
        f"{args.emulator_tmpdir or tempfile.gettempdir()} ({load()})",
        flush=True,
    )
    results: list[SizeFigures] = []
    with tempfile.TemporaryDirectory(prefix="syncd-scale-") as tmp:
        for n in sorted(set(args.sizes) | set(args.daemon_sizes)):
            figures = bench_size(
                Path(tmp),
                n,
                no_change=n in args.sizes,
                daemon_idle=n in args.daemon_sizes,
                repeat=args.repeat,
                concurrency=args.concurrency,
                emulator_env=emulator_env,
            )
            results.append(figures)
    growth(
        "no-change pass, peak RSS",
        [(r.n, r.no_change.peak_rss) for r in results if r.no_change is not None],
    )
    growth("idle daemon, RSS", [(r.n, r.daemon_rss) for r in results if r.daemon_rss is not None])
    if args.million:
        with tmpfs(args.tmpfs) as root:
            print(f"{args.million_files:,}-file folder on the tmpfs {root}", flush=True)
            if args.million_seeded:
                bench_seeded(root, args.million_files, repeat=1)
            elif args.million_dry_run:
                bench_dry_run(root, args.million_files, emulator_env)
            else:
                bench_size(
                    root,
                    args.million_files,
                    no_change=True,
                    daemon_idle=False,
                    repeat=1,
                    concurrency=args.concurrency,
                    rsync=False,
                    emulator_env=emulator_env,
                )


if __name__ == "__main__":
    main()
