"""Folder watchers on real directories: inotify, the polling fallback, kernel limits."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.service.watch import Batch, Debouncer, FolderWatcher

DEBOUNCE = 0.2


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture
def debouncer() -> Debouncer:
    return Debouncer(DEBOUNCE)


@pytest.fixture
def watcher(root: Path, debouncer: Debouncer) -> Iterator[FolderWatcher]:
    w = FolderWatcher("docs", root, debouncer, exclude=lambda rel: rel.startswith("."))
    w.start()
    yield w
    w.stop()


def collect(
    debouncer: Debouncer, until: Callable[[list[Batch]], bool], timeout: float = 5.0
) -> list[Batch]:
    """Take batches as the daemon would until ``until`` holds (or fail after ``timeout``)."""
    batches: list[Batch] = []
    deadline = time.monotonic() + timeout
    while not until(batches):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"gave up waiting; got {batches}")
        debouncer.wait(min(remaining, 0.5))
        batch = debouncer.take()
        if batch:
            batches.append(batch)
    return batches


def paths(batches: list[Batch], folder: str = "docs") -> list[str]:
    """Every path handed out, in order, with repeats."""
    return [p for b in batches for p in sorted(b.paths.get(folder, ()))]


def has(*expected: str) -> Callable[[list[Batch]], bool]:
    return lambda batches: set(expected) <= set(paths(batches))


def quiet(debouncer: Debouncer, seconds: float = 3 * DEBOUNCE) -> list[Batch]:
    """Whatever else comes out in the next ``seconds``."""
    deadline = time.monotonic() + seconds
    batches = []
    while (left := deadline - time.monotonic()) > 0:
        debouncer.wait(left)
        if batch := debouncer.take():
            batches.append(batch)
    return batches


def test_a_written_file_is_handed_out_once(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path
) -> None:
    assert watcher.mode == "inotify"
    (root / "notes.md").write_text("hello")
    (root / "sub").mkdir()
    (root / "sub" / "deep.md").write_text("deep")
    batches = collect(debouncer, has("notes.md", "sub/deep.md"))
    assert sorted(paths(batches)) == ["notes.md", "sub/deep.md"]
    assert not quiet(debouncer)


def test_a_slow_writer_is_waited_for_until_it_closes(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path
) -> None:
    target = root / "slow.bin"
    handed_out: list[Batch] = []
    with target.open("wb") as f:
        for _ in range(4):
            f.write(b"x" * 1000)
            f.flush()
            # Pauses longer than the debounce window: only the open file holds it back.
            handed_out += quiet(debouncer, 2.5 * DEBOUNCE)
    assert handed_out == []
    batches = collect(debouncer, has("slow.bin"))
    assert paths(batches) == ["slow.bin"]
    assert target.stat().st_size == 4000


def test_renames_and_moves_mark_both_ends(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path
) -> None:
    (root / "a").mkdir()
    (root / "b").mkdir()
    (root / "a" / "one.md").write_text("1")
    (root / "two.md").write_text("2")
    collect(debouncer, has("a/one.md", "two.md"))

    (root / "a" / "one.md").rename(root / "b" / "one.md")
    (root / "two.md").rename(root / "deux.md")
    batches = collect(debouncer, has("a/one.md", "b/one.md", "two.md", "deux.md"))
    assert sorted(paths(batches)) == ["a/one.md", "b/one.md", "deux.md", "two.md"]


def test_deletions_are_reported(watcher: FolderWatcher, debouncer: Debouncer, root: Path) -> None:
    (root / "gone.md").write_text("bye")
    collect(debouncer, has("gone.md"))
    (root / "gone.md").unlink()
    assert paths(collect(debouncer, has("gone.md"))) == ["gone.md"]


def test_a_directory_moved_away_is_handed_out_as_a_whole(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path, tmp_path: Path
) -> None:
    (root / "team" / "deep").mkdir(parents=True)
    (root / "team" / "deep" / "a.md").write_text("a")
    collect(debouncer, has("team/deep/a.md"))
    (root / "team").rename(tmp_path / "elsewhere")
    # No event names team/deep/a.md: the directory's path stands for everything below it.
    assert paths(collect(debouncer, has("team"))) == ["team"]


def test_a_directory_moved_in_reports_its_files(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "incoming"
    (outside / "nested").mkdir(parents=True)
    (outside / "x.md").write_text("x")
    (outside / "nested" / "y.md").write_text("y")
    outside.rename(root / "incoming")
    collect(debouncer, has("incoming/x.md", "incoming/nested/y.md"))


def test_excluded_paths_and_reads_are_ignored(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path
) -> None:
    (root / "kept.md").write_text("k")
    collect(debouncer, has("kept.md"))
    (root / ".hidden.swp").write_text("editor scratch")
    # syncd reads files to hash them: opening and reading must not mark them dirty again.
    for _ in range(3):
        (root / "kept.md").read_bytes()
    assert quiet(debouncer) == []


def test_polling_fallback_still_sees_changes(root: Path, debouncer: Debouncer) -> None:
    watcher = FolderWatcher("docs", root, debouncer, poll_interval=0.1, force_polling=True)
    watcher.start()
    try:
        assert watcher.mode == "polling"
        (root / "polled.md").write_text("p")
        assert paths(collect(debouncer, has("polled.md"))) == ["polled.md"]
    finally:
        watcher.stop()


def test_a_deleted_root_stops_the_watcher(
    watcher: FolderWatcher, debouncer: Debouncer, root: Path
) -> None:
    assert watcher.alive
    shutil.rmtree(root)
    deadline = time.monotonic() + 5
    while watcher.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not watcher.alive


def test_a_missing_root_cannot_be_watched(tmp_path: Path, debouncer: Debouncer) -> None:
    with pytest.raises(OSError):
        FolderWatcher("docs", tmp_path / "absent", debouncer).start()


# --- kernel limits, for real, in a child process ----------------------------------------------

PROBE = textwrap.dedent(
    """
    import logging, sys, time
    from pathlib import Path
    from syncd.service.watch import Debouncer, FolderWatcher
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    debouncer = Debouncer(0.2)
    watchers = []
    for name in sys.argv[2:]:
        w = FolderWatcher(name, Path(sys.argv[1]) / name, debouncer, poll_interval=0.1)
        w.start()
        watchers.append(w)
    print("modes", *[w.mode for w in watchers], flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        debouncer.wait(0.5)
        batch = debouncer.take()
        for folder in sorted(batch.rescan):
            print("rescan", folder, flush=True)
        for folder, found in sorted(batch.paths.items()):
            print("paths", folder, len(found), flush=True)
    """
)


def start_probe(tmp_path: Path, *folders: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    for folder in folders:
        (tmp_path / folder).mkdir(exist_ok=True)
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", PROBE, str(tmp_path), *folders],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def can_limit_watches() -> bool:
    """Whether a user namespace lets us lower the inotify watch limit for a child (Linux 5.11+)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", "echo 1 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.timeout(60)
@pytest.mark.skipif(not can_limit_watches(), reason="needs unshare and per-namespace limits")
def test_running_out_of_watches_falls_back_to_polling_and_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    # One watch allowed: the first folder gets it, the next two must poll.
    limit = 'echo 1 > /proc/sys/user/max_inotify_watches && exec "$@"'
    proc = start_probe(
        tmp_path, "first", "second", "third", prefix=("unshare", "-U", "-r", "sh", "-c", limit, "-")
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["modes", "inotify", "polling", "polling"]
        (tmp_path / "third" / "new.md").write_text("polled")
        assert proc.stdout.readline().split() == ["paths", "third", "1"]
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    advice = [line for line in stderr.splitlines() if "max_user_watches" in line]
    assert len(advice) == 1, stderr
    assert "folder second" in advice[0]
    assert "sysctl fs.inotify.max_user_watches=" in advice[0]
    assert "folder third: inotify limit reached; watching it by polling" in stderr


@pytest.mark.timeout(60)
def test_a_kernel_queue_overflow_asks_for_a_rescan(tmp_path: Path) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 50_000:
        pytest.skip(f"max_queued_events is {limit}: too many files to overflow quickly")
    proc = start_probe(tmp_path, "busy")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["modes", "inotify"]
        # Freeze the reader so the kernel's queue fills up and overflows.
        proc.send_signal(signal.SIGSTOP)
        busy = tmp_path / "busy"
        for i in range(limit // 2 + 100):  # each file: IN_CREATE + IN_CLOSE_WRITE (+ modify)
            (busy / f"f{i}").write_bytes(b"x")
        proc.send_signal(signal.SIGCONT)
        line = proc.stdout.readline().split()
        while line and line[0] == "paths":
            line = proc.stdout.readline().split()
        assert line == ["rescan", "busy"]
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    assert "the kernel dropped file events; rescanning it" in stderr
