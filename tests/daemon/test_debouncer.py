"""The debouncer's rules for "settled", driven by a fake clock over real files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from syncd.service.watch import Batch, Debouncer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def debouncer(clock: FakeClock, tmp_path: Path) -> Debouncer:
    d = Debouncer(1.0, open_hold=10.0, clock=clock)
    d.add_folder("docs", tmp_path)
    return d


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_burst_on_one_path_becomes_one_entry(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    write(tmp_path / "a.md", "hello")
    for _ in range(50):
        debouncer.mark("docs", "a.md", "written")
        clock.advance(0.1)
    debouncer.mark("docs", "a.md", "closed")
    assert not debouncer.take()
    clock.advance(0.99)
    assert not debouncer.take()
    clock.advance(0.02)
    assert debouncer.take() == Batch({"docs": frozenset({"a.md"})})
    assert debouncer.pending == 0
    assert not debouncer.take()


def test_closed_after_writing_needs_no_stat_window(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    write(tmp_path / "a.md", "hello")
    debouncer.mark("docs", "a.md", "written")
    debouncer.mark("docs", "a.md", "closed")
    clock.advance(1.0)
    assert debouncer.take().paths == {"docs": frozenset({"a.md"})}


def test_without_a_close_the_stat_must_hold_still_for_a_window(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "moved-in.md"
    write(path, "first")
    debouncer.mark("docs", "moved-in.md", "changed")
    clock.advance(1.0)
    assert not debouncer.take()  # first look: remember size and mtime
    # It grows without an event (a writer on another host, say): the window starts again.
    write(path, "first and more")
    os.utime(path, ns=(1, 2_000_000_000))
    clock.advance(1.0)
    assert not debouncer.take()
    clock.advance(1.0)
    assert debouncer.take().paths == {"docs": frozenset({"moved-in.md"})}


def test_an_open_writer_holds_the_file_until_it_closes(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    write(tmp_path / "slow.bin", "chunk 1")
    debouncer.mark("docs", "slow.bin", "written")
    clock.advance(5.0)  # a long pause between chunks
    assert not debouncer.take()
    debouncer.mark("docs", "slow.bin", "written")
    clock.advance(5.0)
    assert not debouncer.take()
    debouncer.mark("docs", "slow.bin", "closed")
    clock.advance(1.0)
    assert debouncer.take().paths == {"docs": frozenset({"slow.bin"})}


def test_a_writer_that_never_closes_is_released_after_open_hold(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    write(tmp_path / "held.log", "line")
    debouncer.mark("docs", "held.log", "written")
    clock.advance(9.9)
    assert not debouncer.take()
    clock.advance(0.1)
    assert not debouncer.take()  # quiet for open_hold: now the stat window
    clock.advance(1.0)
    assert debouncer.take().paths == {"docs": frozenset({"held.log"})}


def test_deleted_and_moved_paths_settle_after_the_quiet_window(
    debouncer: Debouncer, clock: FakeClock, tmp_path: Path
) -> None:
    write(tmp_path / "new.md", "x")
    debouncer.mark("docs", "old.md", "deleted")
    debouncer.mark("docs", "new.md", "moved")
    debouncer.mark("docs", "gone.md", "changed")  # created and removed again
    clock.advance(1.0)
    assert debouncer.take().paths == {"docs": frozenset({"old.md", "new.md", "gone.md"})}


def test_batches_are_capped_and_the_rest_follows(clock: FakeClock, tmp_path: Path) -> None:
    debouncer = Debouncer(1.0, max_batch=40, clock=clock)
    debouncer.add_folder("docs", tmp_path)
    for i in range(100):
        debouncer.mark("docs", f"f{i}.txt", "deleted")
    clock.advance(1.0)
    sizes = [len(debouncer.take()) for _ in range(4)]
    assert sizes == [40, 40, 20, 0]


def test_too_many_paths_turn_into_one_rescan(clock: FakeClock, tmp_path: Path) -> None:
    debouncer = Debouncer(1.0, max_pending=100, clock=clock)
    debouncer.add_folder("docs", tmp_path)
    debouncer.add_folder("other", tmp_path)
    debouncer.mark("other", "kept.md", "deleted")
    for i in range(150):
        debouncer.mark("docs", f"f{i}.txt", "closed")
    assert debouncer.pending == 1  # memory is bounded: only "other"'s path is tracked
    clock.advance(0.5)
    debouncer.mark("docs", "f151.txt", "closed")  # still busy: the rescan waits
    clock.advance(0.6)
    batch = debouncer.take()
    assert batch.rescan == frozenset()
    assert batch.paths == {"other": frozenset({"kept.md"})}
    clock.advance(0.5)
    assert debouncer.take() == Batch(rescan=frozenset({"docs"}))
    # After the rescan was handed out, paths are tracked one by one again.
    debouncer.mark("docs", "later.md", "deleted")
    assert debouncer.pending == 1
    clock.advance(1.0)
    assert debouncer.take() == Batch({"docs": frozenset({"later.md"})})


def test_unknown_and_removed_folders_are_ignored(debouncer: Debouncer, clock: FakeClock) -> None:
    debouncer.mark("nope", "a.md", "closed")
    debouncer.mark("docs", "a.md", "closed")
    debouncer.remove_folder("docs")
    clock.advance(5)
    assert not debouncer.take()
    assert debouncer.pending == 0


def test_wait_returns_when_work_settles_or_is_woken(tmp_path: Path) -> None:
    debouncer = Debouncer(0.2)
    debouncer.add_folder("docs", tmp_path)
    debouncer.mark("docs", "a.md", "deleted")
    started = time.monotonic()
    debouncer.wait(timeout=5)
    assert 0.15 < time.monotonic() - started < 2
    assert debouncer.take().paths == {"docs": frozenset({"a.md"})}

    threading.Timer(0.1, debouncer.wake).start()
    started = time.monotonic()
    debouncer.wait(timeout=5)
    assert time.monotonic() - started < 2

    # An event arriving while the consumer sleeps on an empty set wakes it in time.
    threading.Timer(0.1, debouncer.mark, ("docs", "b.md", "deleted")).start()
    started = time.monotonic()
    debouncer.wait(timeout=5)  # woken by the event
    debouncer.wait(timeout=5)  # sleeps until it is due
    assert time.monotonic() - started < 1
    assert debouncer.take().paths == {"docs": frozenset({"b.md"})}
