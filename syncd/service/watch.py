"""Watching drop folders: file-system events in, batches of stable paths out.

Each configured folder gets its own watchdog observer (inotify on Linux). Its events mark
relative paths dirty in a shared :class:`Debouncer`; the daemon takes batches (:class:`Batch`) of
paths that have settled and plans only those. The debouncer decides when a path has settled:

* nothing happened to it for ``debounce`` seconds, and
* it was closed after writing (inotify's ``IN_CLOSE_WRITE``), or it was moved into place, or
  it no longer exists, or its size and mtime did not change across one more window.

A path that was written to and not yet closed is a file someone is still writing (a slow copy
with pauses): it is held until it is closed, or until it has been quiet for ``open_hold``
seconds and its stat is stable — a writer that never closes must not block it for ever.

Memory stays bounded whatever lands in a folder: each folder tracks at most ``max_pending``
paths. Past that, or when the kernel's event queue overflows, the folder's per-path record is
dropped for a single "rescan this folder" flag, taken once the folder has been quiet for
``debounce`` seconds. A rescan is a full scan of the folder, which re-hashes only what changed.

When the kernel refuses more inotify watches (``ENOSPC``) or instances (``EMFILE``) the folder
is watched by polling instead, and the log says once how to raise the limit.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

__all__ = ["Batch", "Change", "Clock", "Debouncer", "FolderWatcher", "QueueOverflowEvent"]

log = logging.getLogger(__name__)

#: What happened to a path, as far as deciding when it has settled goes.
#: ``written``: modified by a writer whose close will be reported (inotify);
#: ``changed``: created or modified, no close will tell us it is complete (polling, ``mv`` in);
#: ``closed``: closed after writing; ``moved``: renamed into place; ``deleted``: gone.
Change = Literal["written", "changed", "closed", "moved", "deleted"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Batch:
    """Work that has settled: paths per folder, and folders to scan in full."""

    paths: dict[str, frozenset[str]] = field(default_factory=dict)
    rescan: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.paths or self.rescan)

    def __len__(self) -> int:
        return sum(len(p) for p in self.paths.values())


@dataclass(slots=True)
class _Pending:
    """What the debouncer knows about one dirty path."""

    last_event: float
    writing: bool = False  # written to, no close seen since
    complete: bool = False  # closed after writing or moved into place, nothing since
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last look
    stat_at: float = 0.0


@dataclass(slots=True)
class _FolderState:
    paths: dict[str, _Pending] = field(default_factory=dict)
    rescan: bool = False
    last_event: float = 0.0


def _stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of whatever is at ``path`` now, or None when nothing is."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class Debouncer:
    """Coalesces bursts of events into batches of settled paths. Thread-safe.

    Observers call :meth:`mark` from their threads; the daemon's loop calls :meth:`wait` and
    :meth:`take`. Folders are registered with :meth:`add_folder`, whose root the stat checks use.
    """

    def __init__(
        self,
        debounce: float,
        *,
        max_pending: int = 20_000,
        max_batch: int = 1_000,
        open_hold: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.debounce = debounce
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.open_hold = open_hold if open_hold is not None else max(30.0, 10 * debounce)
        self._clock = clock
        self._roots: dict[str, Path] = {}
        self._folders: dict[str, _FolderState] = {}
        self._cond = threading.Condition()
        self._woken = False
        # When the consumer sleeps until; events due later need not wake it. Waking it for
        # every event of a 10,000-file burst would make it re-examine the pending set each time.
        self._deadline = -math.inf

    # --- producers (observer threads) -----------------------------------------------------

    def add_folder(self, name: str, root: Path) -> None:
        """Start tracking ``name``; events for unknown folders are ignored."""
        with self._cond:
            self._roots[name] = root
            self._folders.setdefault(name, _FolderState())

    def remove_folder(self, name: str) -> None:
        """Stop tracking ``name`` and forget what was pending there."""
        with self._cond:
            self._roots.pop(name, None)
            self._folders.pop(name, None)

    def mark(self, folder: str, relpath: str, change: Change) -> None:
        """Record that ``relpath`` in ``folder`` changed just now."""
        with self._cond:
            state = self._folders.get(folder)
            if state is None:
                return
            now = self._clock()
            state.last_event = now
            if state.rescan:
                return  # the folder will be scanned whole; no need to track the path
            pending = state.paths.get(relpath)
            if pending is None:
                if len(state.paths) >= self.max_pending:
                    log.info(
                        "folder %s: more than %d changes at once; it will be rescanned whole "
                        "once it is quiet",
                        folder,
                        self.max_pending,
                    )
                    state.paths.clear()
                    state.rescan = True
                    self._cond.notify_all()
                    return
                pending = state.paths[relpath] = _Pending(last_event=now)
            pending.last_event = now
            pending.stat = None
            if change == "written":
                pending.writing, pending.complete = True, False
            elif change == "changed":
                pending.complete = False
            else:  # closed, moved, deleted: whatever writing there was is over
                pending.writing, pending.complete = False, True
            if self._due(pending) < self._deadline:
                self._cond.notify_all()

    def mark_rescan(self, folder: str) -> None:
        """Ask for a full scan of ``folder`` once it is quiet (the kernel dropped events)."""
        with self._cond:
            state = self._folders.get(folder)
            if state is None:
                return
            state.last_event = self._clock()
            state.paths.clear()
            state.rescan = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a waiting :meth:`wait` return now (shutdown, reload)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # --- the consumer (the daemon's loop) ---------------------------------------------------

    @property
    def pending(self) -> int:
        """How many paths are waiting to settle."""
        with self._cond:
            return sum(len(s.paths) for s in self._folders.values())

    def wait(self, timeout: float) -> None:
        """Sleep until something may have settled, :meth:`wake` is called, or ``timeout``."""
        with self._cond:
            if not self._woken:
                now = self._clock()
                delay = min(timeout, self._next_due() - now)
                if delay > 0:
                    self._deadline = now + delay
                    self._cond.wait(delay)
                    self._deadline = -math.inf
            self._woken = False

    def take(self) -> Batch:
        """Remove and return the paths (at most ``max_batch``) and folders that have settled."""
        with self._cond:
            now = self._clock()
            paths: dict[str, frozenset[str]] = {}
            rescan: set[str] = set()
            budget = self.max_batch
            for name, state in self._folders.items():
                if state.rescan:
                    if now - state.last_event >= self.debounce:
                        state.rescan = False
                        rescan.add(name)
                    continue
                ready = []
                for relpath, pending in state.paths.items():
                    if budget == 0:
                        break
                    if self._settled(self._roots[name] / relpath, pending, now):
                        ready.append(relpath)
                        budget -= 1
                for relpath in ready:
                    del state.paths[relpath]
                if ready:
                    paths[name] = frozenset(ready)
            return Batch(paths, frozenset(rescan))

    def _settled(self, path: Path, pending: _Pending, now: float) -> bool:
        quiet = now - pending.last_event
        if quiet < self.debounce:
            return False
        if pending.writing and quiet < self.open_hold:
            return False  # still open for writing: wait for its close
        if pending.complete:
            return True
        current = _stat(path)
        if current is None:
            return True  # gone: the pass records that
        if pending.stat is None or pending.stat != current:
            pending.stat, pending.stat_at = current, now
            return False
        return now - pending.stat_at >= self.debounce

    def _due(self, pending: _Pending) -> float:
        """The earliest clock time at which :meth:`_settled` could say yes."""
        due = pending.last_event + (self.open_hold if pending.writing else self.debounce)
        if not pending.complete and pending.stat is not None:
            due = max(due, pending.stat_at + self.debounce)
        return due

    def _next_due(self) -> float:
        """The clock time the earliest pending item might settle (infinity: nothing pending)."""
        due = math.inf
        for state in self._folders.values():
            if state.rescan:
                due = min(due, state.last_event + self.debounce)
            else:
                for pending in state.paths.values():
                    due = min(due, self._due(pending))
        return due


class QueueOverflowEvent(FileSystemEvent):
    """The kernel dropped events for this watch: only a full scan can tell what changed."""

    event_type = "overflow"


class _FolderHandler(FileSystemEventHandler):
    """Turns one folder's watchdog events into :meth:`Debouncer.mark` calls."""

    def __init__(
        self,
        name: str,
        root: Path,
        debouncer: Debouncer,
        exclude: Callable[[str], bool],
        *,
        reports_close: bool,
    ) -> None:
        self._name = name
        self._root = str(root)
        self._debouncer = debouncer
        self._exclude = exclude
        self._reports_close = reports_close

    def _relpath(self, path: bytes | str, *, is_file: bool = True) -> str | None:
        """The POSIX path of ``path`` inside the root, or None when outside it or excluded.

        Directories are not matched against the filters: include patterns speak of files,
        and the scan applies the exclusions below a directory path itself.
        """
        text = os.fsdecode(path)
        rel = os.path.relpath(text, self._root)
        if rel == "." or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return None
        rel = rel.replace(os.sep, "/")
        return None if is_file and self._exclude(rel) else rel

    def _mark(self, path: bytes | str, change: Change) -> None:
        rel = self._relpath(path)
        if rel is not None:
            self._debouncer.mark(self._name, rel, change)

    def dispatch(self, event: FileSystemEvent) -> None:
        # Opens and reads (syncd's own hashing among them) are deliberately not watched:
        # only changes to content or to the set of names matter.
        if isinstance(event, QueueOverflowEvent):
            log.warning("folder %s: the kernel dropped file events; rescanning it", self._name)
            self._debouncer.mark_rescan(self._name)
        elif isinstance(event, FileMovedEvent):
            self._mark(event.src_path, "deleted")
            self._mark(event.dest_path, "moved")
        elif isinstance(event, FileClosedEvent):
            self._mark(event.src_path, "closed")
        elif isinstance(event, FileModifiedEvent):
            self._mark(event.src_path, "written" if self._reports_close else "changed")
        elif isinstance(event, FileCreatedEvent):
            self._mark(event.src_path, "changed")
        elif isinstance(event, FileDeletedEvent):
            self._mark(event.src_path, "deleted")
        elif isinstance(event, DirDeletedEvent | DirMovedEvent):
            # A directory that left takes its files with it without an event for each of them
            # (a move within the folder also reports them one by one): its old path is handed
            # out as is, and a scan of a directory path covers everything that was below it.
            rel = self._relpath(event.src_path, is_file=False)
            if rel is not None:
                self._debouncer.mark(self._name, rel, "deleted")


def _inotify_observer(timeout: float) -> BaseObserver | None:
    """An inotify observer that also reports queue overflows, or None off Linux."""
    try:
        from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
    except ImportError:
        return None

    class OverflowReportingGroup(InotifyWatchGroup):
        report: Callable[[], None] | None = None

        def on_queue_overflow(self) -> None:
            super().on_queue_overflow()
            if self.report is not None:
                self.report()

    class OverflowReportingEmitter(InotifyEmitter):
        # watchdog (7.1) rebuilds its watches on IN_Q_OVERFLOW but tells no handler, so the
        # group is replaced by one that queues a QueueOverflowEvent in the normal event stream.
        def on_thread_start(self) -> None:
            group = OverflowReportingGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
            )
            group.report = lambda: self.queue_event(QueueOverflowEvent(self.watch.path))
            self._inotify = group

    return BaseObserver(OverflowReportingEmitter, timeout=timeout)


_LIMIT_ADVICE = {
    errno.ENOSPC: (
        "the kernel's limit on inotify watches is reached "
        "(fs.inotify.max_user_watches = {max_user_watches})",
        "sudo sysctl fs.inotify.max_user_watches=524288, and put "
        "'fs.inotify.max_user_watches = 524288' in /etc/sysctl.d/90-syncd.conf to keep it",
    ),
    errno.EMFILE: (
        "the kernel's limit on inotify instances is reached "
        "(fs.inotify.max_user_instances = {max_user_instances})",
        "sudo sysctl fs.inotify.max_user_instances=1024, and put "
        "'fs.inotify.max_user_instances = 1024' in /etc/sysctl.d/90-syncd.conf to keep it",
    ),
}


# The limits already explained in the log: once per process is enough.
_advised: set[int] = set()


def _inotify_limit(name: str) -> str:
    try:
        return Path(f"/proc/sys/fs/inotify/{name}").read_text().strip()
    except OSError:
        return "unknown"


class FolderWatcher:
    """Watches one folder's tree and feeds a :class:`Debouncer`."""

    def __init__(
        self,
        name: str,
        root: Path,
        debouncer: Debouncer,
        *,
        exclude: Callable[[str], bool] = lambda _: False,
        recursive: bool = True,
        poll_interval: float = 5.0,
        force_polling: bool = False,
    ) -> None:
        self.name = name
        self.root = root
        self._debouncer = debouncer
        self._exclude = exclude
        self._recursive = recursive
        self._poll_interval = poll_interval
        self._force_polling = force_polling
        self._observer: BaseObserver | None = None
        self.mode: Literal["inotify", "polling", "stopped"] = "stopped"

    def start(self) -> None:
        """Begin watching. Falls back to polling when inotify's limits are reached.

        Raises ``OSError`` when the root itself cannot be watched (missing, unreadable).
        """
        self._debouncer.add_folder(self.name, self.root)
        observer = None if self._force_polling else _inotify_observer(timeout=1.0)
        if observer is not None:
            try:
                self._run(observer, reports_close=True)
            except OSError as exc:
                if exc.errno not in _LIMIT_ADVICE:
                    raise
                self._advise(exc.errno)
            else:
                self.mode = "inotify"
                return
        self._run(PollingObserver(timeout=self._poll_interval), reports_close=False)
        self.mode = "polling"

    def _run(self, observer: BaseObserver, *, reports_close: bool) -> None:
        handler = _FolderHandler(
            self.name, self.root, self._debouncer, self._exclude, reports_close=reports_close
        )
        observer.schedule(handler, str(self.root), recursive=self._recursive)
        observer.daemon = True
        observer.start()  # raises here when the kernel refuses the root's watch
        self._observer = observer

    def _advise(self, code: int) -> None:
        problem, fix = _LIMIT_ADVICE[code]
        if code in _advised:
            log.warning("folder %s: inotify limit reached; watching it by polling", self.name)
            return
        _advised.add(code)
        limits = {
            "max_user_watches": _inotify_limit("max_user_watches"),
            "max_user_instances": _inotify_limit("max_user_instances"),
        }
        log.warning(
            "folder %s: %s; watching it by polling every %g s instead. To watch with inotify "
            "again, raise the limit (%s) and restart syncd.",
            self.name,
            problem.format(**limits),
            self._poll_interval,
            fix,
        )

    @property
    def alive(self) -> bool:
        """False once watching stopped: its root was deleted, or :meth:`stop` was called."""
        # The observer's dispatcher outlives an emitter that stopped on its root's deletion.
        observer = self._observer
        return observer is not None and any(e.is_alive() for e in observer.emitters)

    def stop(self) -> None:
        """Stop watching (the debouncer keeps what was pending until told otherwise)."""
        if self._observer is not None:
            self._observer.stop()
            if self._observer.is_alive():
                self._observer.join(timeout=5)
            self._observer = None
        self.mode = "stopped"
