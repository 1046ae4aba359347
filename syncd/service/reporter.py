"""What the daemon tells the world it is doing: systemd's STATUS line, ``daemon.json`` for
``syncd status``, and the Prometheus metrics.

The daemon calls :meth:`StatusReporter.begin_pass` / :meth:`~StatusReporter.end_pass` around a
pass and :meth:`~StatusReporter.update` when something changed; the engine's progress arrives
from worker threads through :meth:`~StatusReporter.on_engine_event`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from syncd import __version__
from syncd.api import Client
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import State
from syncd.engine.reconcile import Event
from syncd.service.activity import write_activity
from syncd.service.metrics import Metrics
from syncd.service.notify import Notifier
from syncd.service.watch import Debouncer
from syncd.service.watchers import Watchers

__all__ = ["STATUS_EVERY_SECONDS", "StatusReporter", "plural"]

log = logging.getLogger("syncd.daemon")

#: During a pass, how often its progress is written to the status.
STATUS_EVERY_SECONDS = 2.0


def plural(n: int, word: str) -> str:
    """``1 folder``, ``1,204 folders``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class StatusReporter:
    """The daemon's status line, ``daemon.json`` and metrics (``metrics`` once served).

    ``manifest`` and ``state_dir`` are set once the daemon has them; until then nothing is
    written. Safe to call from the engine's worker threads.
    """

    def __init__(self, notifier: Notifier, watchers: Watchers, debouncer: Debouncer) -> None:
        self.notifier = notifier
        self.metrics: Metrics | None = None
        self.manifest: ManifestDB | None = None
        self.state_dir: Path | None = None
        self.activity = "starting"
        self.in_pass = False
        self._watchers = watchers
        self._debouncer = debouncer
        self._started_at = time.time()
        self._progress = ""
        self._last_status = ""
        self._status_at = 0.0
        self._lock = threading.Lock()

    def begin_pass(self, activity: str) -> None:
        self.activity, self._progress, self.in_pass = activity, "", True
        self.update()

    def end_pass(self) -> None:
        self.in_pass, self.activity, self._progress = False, "idle", ""

    def counts(self) -> dict[str, dict[str, int]]:
        """Entries per state of each configured folder (one GROUP BY over every entry: tens
        of ms at 100k files, so a caller that needs them twice reads them once)."""
        assert self.manifest is not None  # set before the first pass
        counts = self.manifest.counts()
        return {name: counts.get(name, {}) for name in self._watchers.folders}

    def line(self, counts: Mapping[str, Mapping[str, int]] | None = None) -> str:
        """``watching 3 folders · 1,204 synced · 2 failed``, from ``counts`` (folder -> state
        -> entries) when the caller has just read them, else from the manifest."""
        totals: dict[str, int] = {}
        if counts is None:
            counts = self.counts()
        for by_state in counts.values():
            for state, n in by_state.items():
                totals[state] = totals.get(state, 0) + n
        paused = self._watchers.paused
        parts = [f"watching {plural(len(self._watchers.folders) - paused, 'folder')}"]
        if paused:
            parts.append(f"{paused:,} paused")
        parts.append(f"{totals.get(State.SYNCED, 0):,} synced")
        busy = sum(totals.get(s, 0) for s in (State.PENDING, State.UPLOADING, State.DELETING))
        for label, n in (
            ("in progress", busy),
            ("failed", totals.get(State.FAILED, 0)),
            ("rejected", totals.get(State.REJECTED, 0)),
        ):
            if n:
                parts.append(f"{n:,} {label}")
        if self.in_pass:
            parts.append(f"{self.activity} ({self._progress})" if self._progress else self.activity)
        return " · ".join(parts)

    def update(self, counts: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Refresh systemd's status line and daemon.json (from the loop or worker threads)."""
        with self._lock:
            self._status_at = time.monotonic()
            line = self.line(counts)
            if line != self._last_status:
                self._last_status = line
                self.notifier.status(line)
            self._write_activity()

    def on_engine_event(self, event: Event) -> None:
        """Progress from the engine's worker threads: kept in the status every few seconds."""
        if event.kind == "action":
            self._progress = f"{event.completed:,} of {event.total:,} actions done"
            if time.monotonic() - self._status_at >= STATUS_EVERY_SECONDS:
                self.update()
        elif event.kind == "done" and event.done is not None and self.metrics is not None:
            self.metrics.observe_done(event.done)

    def folder_available(self, name: str, available: bool) -> None:
        """A folder started being watched, or was paused."""
        if self.metrics is not None:
            self.metrics.set_available(name, available)
        if not available:
            self.update()

    def serve_metrics(self, address: str, client: Client) -> None:
        """Serve ``/metrics`` on ``address`` and count ``client``'s requests; a port that
        cannot be had is logged, and the daemon runs on without metrics."""
        metrics = Metrics()
        try:
            host, port = metrics.serve(address)
        except OSError as exc:
            log.error("metrics not served: cannot listen on %s: %s", address, exc.strerror)
            return
        self.metrics = metrics
        client.request_log = metrics.observe_request
        log.info("metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()

    def _write_activity(self) -> None:
        """Write ``daemon.json`` for ``syncd status`` (atomically: a reader sees old or new)."""
        if self.state_dir is None:
            return
        state = {
            "pid": os.getpid(),
            "version": __version__,
            "started_at": self._started_at,
            "updated_at": time.time(),
            "status": self._last_status,
            "activity": self.activity,
            "progress": self._progress or None,
            "pending_paths": self._debouncer.pending,
            "folders": self._watchers.modes(),
        }
        write_activity(self.state_dir, state)
