"""The daemon (``syncd run``): watch the folders, and reconcile what changes as it settles.

Life of the process:

1. Load the configuration, take the state directory's lock, build the client and the engine.
2. Watch every folder (before the first pass, so that nothing changed during it is missed),
   run a full pass, and tell systemd ``READY=1``.
3. Loop: hand the paths that settled to a pass over just those paths; run a full pass every
   ``rescan_interval_seconds`` (±10 % jitter, so that several daemons do not beat in step),
   and for a folder whose events were lost. Check every second that each folder's root is
   still the directory that is watched: a missing one pauses the folder (nothing under it is
   deleted), a replaced or remounted one is watched anew and passed over in full.
4. SIGHUP reloads the configuration: folders added, removed or changed take effect; a bad new
   configuration is logged and the running one kept. SIGTERM or SIGINT: no new work, the
   requests in flight finish within ``shutdown_grace_seconds``, exit 0. An upload cut short by
   the grace period has its intent recorded, so the next start resolves it without duplicates.

What it is doing is told three ways: log lines (each action in a person's words, by the
executor), the systemd status line, and ``<state_dir>/daemon.json``, which ``syncd status``
reads while the daemon runs.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from syncd import __version__
from syncd.api import Client, ClientConfigError
from syncd.config import Config, ConfigError, FolderConfig, load_config, make_client
from syncd.engine.files import RootFault, check_root
from syncd.engine.filters import is_excluded
from syncd.engine.manifest import ManifestDB, ManifestError
from syncd.engine.model import State
from syncd.engine.reconcile import Engine, Event, PassReport
from syncd.engine.report import ExitStatus, PassScope
from syncd.service.activity import clear_activity, write_activity
from syncd.service.lock import LockHeld, StateLock
from syncd.service.metrics import Metrics
from syncd.service.notify import Notifier
from syncd.service.watch import Batch, Debouncer, FolderWatcher

log = logging.getLogger("syncd.daemon")


#: How often each folder's root is checked (a stat per folder).
ROOT_CHECK_SECONDS = 1.0
#: How often the lock's heartbeat and daemon.json are refreshed while idle.
HEARTBEAT_SECONDS = 30.0
#: After the service could not be reached, the first retry of a full pass; doubles up to
#: the rescan interval.
SERVICE_RETRY_SECONDS = 10.0
#: The shortest wait before a pass for failed uploads whose backoff is over.
RETRY_MIN_WAIT = 5.0
#: How long a due full pass waits for files being written to settle.
FULL_PASS_MAX_DELAY = 60.0
#: During a pass, how often its progress is written to the status.
STATUS_EVERY_SECONDS = 2.0


@dataclass
class _Folder:
    """A configured folder and how it is being watched."""

    config: FolderConfig
    watcher: FolderWatcher | None = None
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the root being watched
    paused: str | None = None  # why it is paused; None while it is watched

    @property
    def name(self) -> str:
        return self.config.name


def _root_identity(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((st_dev, st_ino), None) for a usable root, or (None, why it cannot be watched)."""
    st, problem = check_root(path)
    if problem is not None:
        return None, _ROOT_WORDS[problem.fault].format(path=path, strerror=problem.strerror)
    assert st is not None  # a root without a problem was stat'ed
    return (st.st_dev, st.st_ino), None


# How a root the watchers cannot use is named in "folder … paused: …".
_ROOT_WORDS: dict[RootFault, str] = {
    "missing": "its root {path} is missing (unmounted or removed?)",
    "unreachable": "cannot reach its root {path}: {strerror}",
    "not_directory": "its root {path} is not a directory",
    "unreadable": "cannot read its root {path}: permission denied",
}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class Daemon:
    """One ``syncd run``. Call :meth:`run` from the main thread (it installs signal handlers)."""

    def __init__(
        self,
        config_path: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._config_path = config_path
        self._environ = environ
        self._notifier = notifier or Notifier.from_environ(environ)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._folders: dict[str, _Folder] = {}
        self._started_at = time.time()
        self._activity = "starting"
        self._beat = time.monotonic()
        self._in_pass = False
        self._progress = ""
        self._last_status = ""
        self._idle_until: float | None = None  # after the API key was refused
        self._service_retry = SERVICE_RETRY_SECONDS
        self._next_full = 0.0  # monotonic time of the next full pass
        self._next_retry: float | None = None  # monotonic time a failed upload is due again
        self._status_lock = threading.Lock()
        self._status_at = 0.0
        self._grace_timer: threading.Timer | None = None
        # Exists from the start, so that a signal arriving at any moment can wake it.
        self._debouncer = Debouncer(debounce=2.0)
        self._metrics: Metrics | None = None
        # Set up in run():
        self.config: Config
        self._lock: StateLock
        self._manifest: ManifestDB
        self._engine: Engine

    # --- the process ---------------------------------------------------------------------------

    def run(self) -> ExitStatus:
        """Run until stopped; returns the exit status (OK, CONFIG, or STOPPED: locked)."""
        try:
            self.config = load_config(self._config_path, self._environ)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                log.error("%s", line)
            return ExitStatus.CONFIG
        self._lock = StateLock(self.config.sync.state_dir, command="syncd run")
        try:
            self._lock.acquire()
        except LockHeld as exc:
            log.error("%s", exc)
            return ExitStatus.STOPPED
        previous = self._install_signal_handlers()
        try:
            return self._serve()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            clear_activity(self.config.sync.state_dir)
            self._lock.release()

    def _serve(self) -> ExitStatus:
        try:
            client = self._make_client(self.config)
            self._manifest = ManifestDB.open(self.config.sync.state_dir)
        except (ClientConfigError, ManifestError) as exc:
            log.error("%s", exc)
            return ExitStatus.CONFIG
        sync = self.config.sync
        self._debouncer.debounce = sync.debounce_seconds
        self._engine = self._make_engine(self.config, client)
        if sync.metrics_address:
            self._start_metrics(sync.metrics_address, client)
        pinger: threading.Thread | None = None
        try:
            log.info(
                "syncd %s: %s against %s; changes settle for %g s; a full pass every %s",
                __version__,
                _plural(len(self.config.folders), "folder"),
                self.config.api.base_url,
                sync.debounce_seconds,
                _duration(sync.rescan_interval_seconds),
            )
            for folder in self.config.folders:
                self._folders[folder.name] = _Folder(folder)
                self._watch(self._folders[folder.name])
            self._full_pass(self._available(), activity="first pass")
            if not self._stop.is_set():
                line = self._status_line()
                self._notifier.ready(line)
                log.info("ready: %s", line)
                # systemd arms the watchdog once start-up is complete, not before.
                pinger = self._start_pinger()
            self._loop()
            log.info("stopped")
            return ExitStatus.OK
        finally:
            self._stop.set()
            if pinger is not None:
                pinger.join(timeout=2)
            for watched in self._folders.values():
                if watched.watcher is not None:
                    watched.watcher.stop()
            if self._metrics is not None:
                self._metrics.close()
            self._engine.client.close()
            self._manifest.close()

    def _loop(self) -> None:
        self._next_full = self._next_full_time()
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        next_root_check = 0.0
        while not self._stop.is_set():
            now = self._touch()
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
                self._next_full = min(self._next_full, self._next_full_time())
            if now >= next_root_check:
                self._check_roots()
                next_root_check = now + ROOT_CHECK_SECONDS
            if now >= next_beat:
                self._lock.heartbeat()
                self._update_status()
                next_beat = now + HEARTBEAT_SECONDS
            wake = min(self._next_full, next_root_check, next_beat, self._next_retry or math.inf)
            self._debouncer.wait(max(0.0, wake - now))
            if self._stop.is_set():
                break
            if self._idle_until is not None:
                self._debouncer.take()  # the next full pass covers these
                if time.monotonic() < self._idle_until:
                    continue
                self._idle_until = None
                self._next_full = 0.0
            batch = self._debouncer.take()
            if batch:
                self._run_batch(batch)
            if self._metrics is not None:
                self._metrics.pending.set(self._debouncer.pending)
            now = time.monotonic()
            if self._next_retry is not None and now >= self._next_retry:
                # A pass over no changed path still takes up every entry whose backoff is over.
                self._next_retry = None
                live = self._available()
                self._pass(paths={name: set() for name in live}, activity="retrying failed files")
            if now >= self._next_full and not self._stop.is_set():
                if self._debouncer.pending and now - self._next_full < FULL_PASS_MAX_DELAY:
                    # Files are being written: a full scan now could read one half-written.
                    # Their batches come first; the full pass waits, for a while.
                    self._debouncer.wait(self.config.sync.debounce_seconds)
                    continue
                # Scheduled before the pass, so that a pass the service cut short can bring
                # the next one forward.
                self._next_full = self._next_full_time()
                self._full_pass(self._available(), activity="full pass")

    def _retry_time(self) -> float | None:
        """When (monotonic) the earliest failed upload with attempts left is due again; at
        least :data:`RETRY_MIN_WAIT` from now, so that one the engine holds back for a reason
        of its own cannot spin the loop."""
        due = self._manifest.next_retry_at(self.config.api.max_attempts)
        if due is None:
            return None
        return time.monotonic() + max(RETRY_MIN_WAIT, due - time.time())

    def _touch(self) -> float:
        """Note that the main loop is alive (for the watchdog) and return the time."""
        self._beat = time.monotonic()
        return self._beat

    def _next_full_time(self) -> float:
        interval = self.config.sync.rescan_interval_seconds
        return time.monotonic() + interval * random.uniform(0.9, 1.1)

    # --- passes --------------------------------------------------------------------------------

    def _available(self) -> list[str]:
        return [name for name, f in self._folders.items() if f.paused is None]

    def _run_batch(self, batch: Batch) -> None:
        live = set(self._available())
        rescan = sorted(batch.rescan & live)
        if rescan:
            self._full_pass(rescan, activity=f"full pass over {', '.join(rescan)}")
        paths = {name: set(p) for name, p in batch.paths.items() if name in live}
        if paths and not self._stop.is_set():
            count = sum(len(p) for p in paths.values())
            self._pass(paths=paths, activity=f"syncing {_plural(count, 'changed path')}")

    def _full_pass(self, folders: Collection[str], *, activity: str) -> None:
        if folders:
            self._pass(folders=list(folders), activity=activity)

    def _pass(
        self,
        *,
        folders: list[str] | None = None,
        paths: dict[str, set[str]] | None = None,
        activity: str,
    ) -> None:
        """Run one engine pass, keeping status, metrics and the watchdog informed."""
        scope: PassScope = "paths" if paths is not None else "full"
        self._activity, self._progress, self._in_pass = activity, "", True
        self._update_status()
        started = time.monotonic()
        try:
            report = self._engine.run_pass(folders=folders, paths=paths, stop=self._stop)
        except Exception:
            # A bug or an unexpected failure must not end the watching: say so, carry on,
            # and the next pass tries again.
            log.exception("the pass failed unexpectedly; the next one will try again")
            return
        finally:
            self._in_pass, self._activity, self._progress = False, "idle", ""
            self._touch()
        elapsed = time.monotonic() - started
        self._next_retry = self._retry_time()
        # One count for both: it is a GROUP BY over every entry (tens of ms at 100k files).
        counts = self._configured_counts()
        if self._metrics is not None:
            self._metrics.observe_pass(scope, elapsed)
            self._metrics.set_file_counts(counts)
        self._after_pass(report, scope, elapsed)
        self._update_status(counts)

    def _after_pass(self, report: PassReport, scope: PassScope, elapsed: float) -> None:
        changed = {k: v for k, v in report.counts.items() if v and k != "unchanged"}
        what = ", ".join(f"{k} {v:,}" for k, v in changed.items()) or "nothing to do"
        # Each action has had its own line; a full pass also gets a summary at INFO.
        log.log(
            logging.INFO if scope == "full" else logging.DEBUG,
            "%s pass done in %.1f s: %s",
            scope,
            elapsed,
            what,
        )
        if report.stopped_reason == "service":
            # Paths handed to this pass are not pending any more: a full pass finds them.
            retry = self._service_retry
            self._next_full = min(self._next_full, time.monotonic() + retry)
            self._service_retry = min(2 * retry, self.config.sync.rescan_interval_seconds)
            log.warning("a full pass follows in %s", _duration(retry))
        else:
            self._service_retry = SERVICE_RETRY_SECONDS
        if report.stopped_reason == "auth":
            interval = self.config.sync.rescan_interval_seconds
            self._idle_until = time.monotonic() + interval
            log.error(
                "syncd is idle until the API key is fixed: put the new key in place and "
                "reload (`systemctl reload syncd`, or send SIGHUP), or it tries again in %s",
                _duration(interval),
            )
        elif report.stopped_reason == "delete_guard":
            log.error(
                "nothing was deleted. If the deletions are intended, stop syncd and run "
                "`syncd reconcile --force` once, then start it again"
            )

    def _on_engine_event(self, event: Event) -> None:
        """Progress from the engine's worker threads: kept in the status every few seconds."""
        if event.kind == "action":
            self._progress = f"{event.completed:,} of {event.total:,} actions done"
            if time.monotonic() - self._status_at >= STATUS_EVERY_SECONDS:
                self._update_status()
        elif event.kind == "done" and event.done is not None and self._metrics is not None:
            self._metrics.observe_done(event.done)

    # --- folders -------------------------------------------------------------------------------

    def _watch(self, folder: _Folder) -> None:
        """Start watching ``folder``, or pause it when its root is not usable."""
        identity, problem = _root_identity(folder.config.path)
        if problem is None:
            config = folder.config
            watcher = FolderWatcher(
                folder.name,
                config.path,
                self._debouncer,
                exclude=lambda rel: is_excluded(rel, config),
                recursive=config.recursive,
                poll_interval=max(2.0, self.config.sync.debounce_seconds),
            )
            try:
                watcher.start()
            except OSError as exc:
                problem = f"cannot watch its root {config.path}: {exc.strerror or exc}"
            else:
                folder.watcher, folder.identity = watcher, identity
        if problem is not None:
            self._pause(folder, problem)
            return
        if folder.paused is not None:
            log.info("folder %s is back: resuming", folder.name)
        folder.paused = None
        if self._metrics is not None:
            self._metrics.set_available(folder.name, True)

    def _unwatch(self, folder: _Folder) -> None:
        if folder.watcher is not None:
            folder.watcher.stop()
            folder.watcher = None
        folder.identity = None
        self._debouncer.remove_folder(folder.name)

    def _pause(self, folder: _Folder, problem: str) -> None:
        self._unwatch(folder)
        if folder.paused != problem:
            log.error(
                "folder %s paused: %s. Nothing under it is deleted; it resumes when its root "
                "is back",
                folder.name,
                problem,
            )
        folder.paused = problem
        if self._metrics is not None:
            self._metrics.set_available(folder.name, False)
        self._update_status()

    def _check_roots(self) -> None:
        """Pause folders whose root went away; watch anew (and pass over in full) those that
        came back, were replaced or remounted, or whose watcher stopped."""
        for folder in list(self._folders.values()):
            identity, problem = _root_identity(folder.config.path)
            if folder.paused is None and problem is not None:
                self._pause(folder, problem)
                continue
            alive = folder.watcher is not None and folder.watcher.alive
            if problem is not None or (identity == folder.identity and alive):
                continue
            if folder.paused is None:
                log.info(
                    "folder %s: its root was replaced or remounted; watching it anew", folder.name
                )
                self._unwatch(folder)
            self._watch(folder)
            if folder.paused is None:
                self._full_pass([folder.name], activity=f"full pass over {folder.name}")

    # --- reload --------------------------------------------------------------------------------

    def _apply_reload(self) -> None:
        """SIGHUP: apply a new configuration, or keep the running one if it is unusable."""
        self._notifier.reloading()
        try:
            new = load_config(self._config_path, self._environ)
            if new.sync.state_dir != self.config.sync.state_dir:
                raise ConfigError(
                    f"sync.state_dir changed to {new.sync.state_dir}: that takes a restart"
                )
            client = self._make_client(new)
        except (ConfigError, ClientConfigError) as exc:
            log.error("configuration not reloaded, still running the previous one:")
            for line in str(exc).splitlines():
                log.error("  %s", line)
            self._notifier.ready(self._status_line())
            return
        old = {f.name: f for f in self.config.folders}
        fresh = {f.name: f for f in new.folders}
        if self._metrics is not None:
            client.request_log = self._metrics.observe_request
        self._engine.client.close()
        self.config = new
        self._engine = self._make_engine(new, client)
        self._debouncer.debounce = new.sync.debounce_seconds
        self._idle_until = None
        for name in old.keys() - fresh.keys():
            self._unwatch(self._folders.pop(name))
            if self._metrics is not None:
                self._metrics.forget_folder(name)
            log.info(
                "folder %s removed from the configuration: no longer watched; its remote "
                "files are left as they are",
                name,
            )
        changed = []
        for name, folder in fresh.items():
            if name in old and old[name] == folder:
                self._folders[name].config = folder
                continue
            if name in self._folders:
                self._unwatch(self._folders[name])
            self._folders[name] = _Folder(folder)
            self._watch(self._folders[name])
            changed.append(name)
            log.info("folder %s %s", name, "changed" if name in old else "added")
        log.info("configuration reloaded from %s", new.source)
        live = [name for name in changed if self._folders[name].paused is None]
        self._full_pass(live, activity=f"full pass over {', '.join(live)}")
        self._notifier.ready(self._status_line())

    # --- signals -------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for signum, handler in (
            (signal.SIGTERM, self._on_stop_signal),
            (signal.SIGINT, self._on_stop_signal),
            (signal.SIGHUP, self._on_reload_signal),
        ):
            previous[signum] = signal.signal(signum, handler)
        return previous

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            log.warning("second %s: stopping now", name)
            self._exit_now()
        grace = self.config.sync.shutdown_grace_seconds
        if self._in_pass:
            log.info("%s: stopping; requests in flight get up to %g s to finish", name, grace)
        else:
            log.info("%s: stopping", name)
        self._stop.set()
        self._notifier.stopping()
        self._debouncer.wake()
        self._grace_timer = threading.Timer(grace, self._grace_over)
        self._grace_timer.daemon = True
        self._grace_timer.start()

    def _on_reload_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()
        self._debouncer.wake()

    def _grace_over(self) -> None:
        log.warning(
            "the %g s grace period is over: stopping with requests still in flight",
            self.config.sync.shutdown_grace_seconds,
        )
        self._exit_now()

    def _exit_now(self) -> None:
        """Leave without waiting for the workers. Every upload records its intent before it
        is sent, so the next start resolves whatever was cut short; the kernel releases the
        lock, and SQLite's journal keeps the manifest whole."""
        log.info("uploads cut short are checked at the next start, so none is duplicated")
        clear_activity(self.config.sync.state_dir)
        logging.shutdown()
        os._exit(ExitStatus.OK)

    # --- systemd, status and metrics -----------------------------------------------------------

    def _start_pinger(self) -> threading.Thread | None:
        """Send ``WATCHDOG=1`` while the main loop is alive: it went round recently, or it is
        inside a pass (whose requests have their own timeouts)."""
        interval = self._notifier.watchdog_interval
        if interval is None:
            return None

        def ping() -> None:
            while not self._stop.wait(interval):
                if self._in_pass or time.monotonic() - self._beat < 2 * interval:
                    self._notifier.watchdog()

        thread = threading.Thread(target=ping, name="syncd-watchdog", daemon=True)
        thread.start()
        return thread

    def _configured_counts(self) -> dict[str, dict[str, int]]:
        counts = self._manifest.counts()
        return {name: counts.get(name, {}) for name in self._folders}

    def _status_line(self, counts: Mapping[str, Mapping[str, int]] | None = None) -> str:
        """``watching 3 folders · 1,204 synced · 2 failed``, from ``counts`` (folder -> state
        -> entries) when the caller has just read them, else from the manifest."""
        totals: dict[str, int] = {}
        if counts is None:
            counts = self._configured_counts()
        for by_state in counts.values():
            for state, n in by_state.items():
                totals[state] = totals.get(state, 0) + n
        paused = sum(1 for f in self._folders.values() if f.paused is not None)
        parts = [f"watching {_plural(len(self._folders) - paused, 'folder')}"]
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
        if self._in_pass:
            parts.append(
                f"{self._activity} ({self._progress})" if self._progress else self._activity
            )
        return " · ".join(parts)

    def _update_status(self, counts: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Refresh systemd's status line and daemon.json (from the loop or worker threads)."""
        with self._status_lock:
            self._status_at = time.monotonic()
            line = self._status_line(counts)
            if line != self._last_status:
                self._last_status = line
                self._notifier.status(line)
            self._write_activity()

    def _write_activity(self) -> None:
        """Write ``daemon.json`` for ``syncd status`` (atomically: a reader sees old or new)."""
        state = {
            "pid": os.getpid(),
            "version": __version__,
            "started_at": self._started_at,
            "updated_at": time.time(),
            "status": self._last_status,
            "activity": self._activity,
            "progress": self._progress or None,
            "pending_paths": self._debouncer.pending,
            "folders": {
                name: {
                    "watch": f.watcher.mode if f.watcher else "paused",
                    "problem": f.paused,
                }
                for name, f in self._folders.items()
            },
        }
        write_activity(self.config.sync.state_dir, state)

    def _start_metrics(self, address: str, client: Client) -> None:
        metrics = Metrics()
        try:
            host, port = metrics.serve(address)
        except OSError as exc:
            log.error("metrics not served: cannot listen on %s: %s", address, exc.strerror)
            return
        self._metrics = metrics
        client.request_log = metrics.observe_request
        log.info("metrics on http://%s:%d/metrics", host, port)

    # --- construction --------------------------------------------------------------------------

    def _make_client(self, config: Config) -> Client:
        return make_client(config, config.api.retry_policy())

    def _make_engine(self, config: Config, client: Client) -> Engine:
        return Engine(config, client, self._manifest, on_event=self._on_engine_event)


def _duration(seconds: float) -> str:
    """900 -> '15 min'; 45 -> '45 s'; 7200 -> '2 h'."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
