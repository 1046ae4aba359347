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
import os
import signal
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from syncd import __version__
from syncd.api import Client, ClientConfigError
from syncd.config import Config, ConfigError, load_config, make_client
from syncd.engine.manifest import ManifestDB, ManifestError
from syncd.engine.reconcile import Engine
from syncd.engine.report import ExitStatus, PassReport, PassScope
from syncd.service.activity import clear_activity
from syncd.service.lock import LockHeld, StateLock
from syncd.service.notify import Notifier
from syncd.service.reporter import StatusReporter, plural
from syncd.service.schedule import Schedule
from syncd.service.watch import Batch, Debouncer
from syncd.service.watchers import Watchers

__all__ = ["Daemon"]

log = logging.getLogger("syncd.daemon")

#: How often each folder's root is checked (a stat per folder).
ROOT_CHECK_SECONDS = 1.0
#: How often the lock's heartbeat and daemon.json are refreshed while idle.
HEARTBEAT_SECONDS = 30.0
#: At most one copy of the manifest (for ``syncd repair``) this often while running; one more
#: at stop. What syncd uploads in between, repair finds and adopts.
COPY_SECONDS = 300.0


class Daemon:
    """One ``syncd run``. Call :meth:`run` from the main thread (it installs signal handlers).

    It keeps the signals, the configuration and its reloads, and the loop; the folders'
    watchers (:class:`~syncd.service.watchers.Watchers`), when to pass of its own accord
    (:class:`~syncd.service.schedule.Schedule`) and what it tells the world
    (:class:`~syncd.service.reporter.StatusReporter`) are kept apart.
    """

    def __init__(
        self,
        config_path: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._config_path = config_path
        self._environ = environ
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._beat = time.monotonic()
        self._grace_timer: threading.Timer | None = None
        # (folder, path) that waited for another path's upload to be resolved
        self._held: set[tuple[str, str]] = set()
        # Exists from the start, so that a signal arriving at any moment can wake it.
        self._debouncer = Debouncer(debounce=2.0)
        self._watchers = Watchers(self._debouncer, self._on_folder_change, poll_interval=2.0)
        self._status = StatusReporter(
            notifier or Notifier.from_environ(environ), self._watchers, self._debouncer
        )
        # Set up in run():
        self.config: Config
        self._schedule: Schedule
        self._lock: StateLock
        self._manifest: ManifestDB
        self._engine: Engine

    @property
    def _notifier(self) -> Notifier:
        return self._status.notifier

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
        self._status.manifest, self._status.state_dir = self._manifest, sync.state_dir
        self._schedule = Schedule(sync.rescan_interval_seconds)
        self._apply_timing(self.config)
        self._engine = self._make_engine(self.config, client)
        if sync.metrics_address:
            self._status.serve_metrics(sync.metrics_address, client)
        pinger: threading.Thread | None = None
        try:
            log.info(
                "syncd %s: %s against %s; changes settle for %g s; a full pass every %s",
                __version__,
                plural(len(self.config.folders), "folder"),
                self.config.api.base_url,
                sync.debounce_seconds,
                _duration(sync.rescan_interval_seconds),
            )
            for folder in self.config.folders:
                self._watchers.add(folder)
            self._full_pass(self._watchers.available(), activity="first pass")
            if not self._stop.is_set():
                line = self._status.line()
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
            self._watchers.stop()
            self._status.close()
            self._engine.keep_copy()
            self._engine.client.close()
            self._manifest.close()

    def _loop(self) -> None:
        schedule = self._schedule
        schedule.start()
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        next_root_check = 0.0
        while not self._stop.is_set():
            now = self._touch()
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload()
            if now >= next_root_check:
                for name in self._watchers.check_roots():
                    self._full_pass([name], activity=f"full pass over {name}")
                next_root_check = now + ROOT_CHECK_SECONDS
            if now >= next_beat:
                self._lock.heartbeat()
                self._status.update()
                self._engine.keep_copy(due_only=True)
                next_beat = now + HEARTBEAT_SECONDS
            wake = min(schedule.wake_at(), next_root_check, next_beat)
            self._debouncer.wait(max(0.0, wake - now))
            if self._stop.is_set():
                break
            if schedule.idle_until is not None:
                self._debouncer.take()  # the next full pass covers these
                if schedule.idle():
                    continue
            batch = self._debouncer.take()
            if batch:
                self._run_batch(batch)
            if self._status.metrics is not None:
                self._status.metrics.pending.set(self._debouncer.pending)
            if schedule.retry_due():
                # A pass over no changed path still takes up every entry whose backoff is over,
                # and the paths that waited for another upload to be resolved.
                live = self._watchers.available()
                paths: dict[str, set[str]] = {name: set() for name in live}
                for name, path in self._held:
                    if name in paths:
                        paths[name].add(path)
                self._pass(paths=paths, activity="retrying failed files")
            if self._stop.is_set():
                continue
            due = schedule.full_pass(writing=self._debouncer.pending > 0)
            if due == "held":
                # Files are being written: their batches come first; the full pass waits.
                self._debouncer.wait(self.config.sync.debounce_seconds)
            elif due == "due":
                self._full_pass(self._watchers.available(), activity="full pass")

    def _touch(self) -> float:
        """Note that the main loop is alive (for the watchdog) and return the time."""
        self._beat = time.monotonic()
        return self._beat

    def _apply_timing(self, config: Config) -> None:
        """The settings the debouncer, the watchers and the schedule take from ``config``."""
        sync = config.sync
        self._debouncer.debounce = sync.debounce_seconds
        self._watchers.poll_interval = max(2.0, sync.debounce_seconds)
        self._schedule.reconfigure(sync.rescan_interval_seconds)

    # --- passes --------------------------------------------------------------------------------

    def _run_batch(self, batch: Batch) -> None:
        live = set(self._watchers.available())
        rescan = sorted(batch.rescan & live)
        if rescan:
            self._full_pass(rescan, activity=f"full pass over {', '.join(rescan)}")
        paths = {name: set(p) for name, p in batch.paths.items() if name in live}
        if paths and not self._stop.is_set():
            count = sum(len(p) for p in paths.values())
            self._pass(paths=paths, activity=f"syncing {plural(count, 'changed path')}")

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
        self._status.begin_pass(activity)
        started = time.monotonic()
        try:
            report = self._engine.run_pass(folders=folders, paths=paths, stop=self._stop)
        except Exception:
            # A bug or an unexpected failure must not end the watching: say so, carry on,
            # and a full pass (which covers the paths this one had) comes soon.
            log.exception(
                "the pass failed unexpectedly; a full pass follows in %s",
                _duration(self._schedule.pass_failed()),
            )
            return
        finally:
            self._status.end_pass()
            self._touch()
        elapsed = time.monotonic() - started
        due = self._manifest.next_retry_at(self.config.api.max_attempts)
        # Files that waited for another path's upload come up again with the next retry
        # (soon: the upload they wait for is resolved by a listing).
        planned = set(folders if folders is not None else paths or ())
        self._held = {h for h in self._held if h[0] not in planned} | set(report.held)
        if self._held:
            due = time.time() if due is None else min(due, time.time())
        self._schedule.retry_at(due)
        counts = self._status.counts()
        if self._status.metrics is not None:
            self._status.metrics.observe_pass(scope, elapsed)
            self._status.metrics.set_file_counts(counts)
        self._after_pass(report, scope, elapsed)
        self._status.update(counts)

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
        if report.stopped_reason in ("service", "state"):
            # Paths handed to this pass are not pending any more: a full pass, which covers
            # them, comes forward, backing off while the failure lasts.
            log.warning("a full pass follows in %s", _duration(self._schedule.pass_failed()))
        else:
            self._schedule.pass_succeeded()
        if report.stopped_reason == "auth":
            self._schedule.key_refused()
            log.error(
                "syncd is idle until the API key is fixed: put the new key in place and "
                "reload (`systemctl reload syncd`, or send SIGHUP), or it tries again in %s",
                _duration(self.config.sync.rescan_interval_seconds),
            )
        elif report.stopped_reason == "delete_guard":
            log.error(
                "nothing was deleted. If the deletions are intended, stop syncd and run "
                "`syncd reconcile --force` once, then start it again"
            )

    def _on_folder_change(self, name: str, available: bool) -> None:
        self._status.folder_available(name, available)

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
            self._notifier.ready(self._status.line())
            return
        old = {f.name: f for f in self.config.folders}
        fresh = {f.name: f for f in new.folders}
        if self._status.metrics is not None:
            client.request_log = self._status.metrics.observe_request
        self._engine.keep_copy()
        self._engine.client.close()
        self.config = new
        self._engine = self._make_engine(new, client)
        self._apply_timing(new)
        for name in old.keys() - fresh.keys():
            self._watchers.remove(name)
            if self._status.metrics is not None:
                self._status.metrics.forget_folder(name)
            log.info(
                "folder %s removed from the configuration: no longer watched; its remote "
                "files are left as they are",
                name,
            )
        changed = []
        for name, folder in fresh.items():
            if name in old and old[name] == folder:
                self._watchers.folders[name].config = folder
                continue
            self._watchers.add(folder)
            changed.append(name)
            log.info("folder %s %s", name, "changed" if name in old else "added")
        log.info("configuration reloaded from %s", new.source)
        live = [name for name in changed if self._watchers.folders[name].paused is None]
        self._full_pass(live, activity=f"full pass over {', '.join(live)}")
        self._notifier.ready(self._status.line())

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
            self._exit_now(f"a second {name} stopped it at once")
        grace = self.config.sync.shutdown_grace_seconds
        if self._status.in_pass:
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
        self._exit_now(
            f"its {self.config.sync.shutdown_grace_seconds:g} s shutdown grace period ran out"
        )

    def _exit_now(self, why: str) -> None:
        """Leave without waiting for the workers. Every upload records its intent before it
        is sent, so the next start resolves whatever was cut short; the kernel releases the
        lock, and SQLite's journal keeps the manifest whole. The lock file keeps ``why``, for
        the next start to say."""
        log.info("uploads cut short are checked at the next start, so none is duplicated")
        self._lock.heartbeat(stopped=why)
        clear_activity(self.config.sync.state_dir)
        logging.shutdown()
        os._exit(ExitStatus.OK)

    # --- systemd -------------------------------------------------------------------------------

    def _start_pinger(self) -> threading.Thread | None:
        """Send ``WATCHDOG=1`` while the main loop is alive: it went round recently, or it is
        inside a pass (whose requests have their own timeouts)."""
        interval = self._notifier.watchdog_interval
        if interval is None:
            return None

        def ping() -> None:
            while not self._stop.wait(interval):
                if self._status.in_pass or time.monotonic() - self._beat < 2 * interval:
                    self._notifier.watchdog()

        thread = threading.Thread(target=ping, name="syncd-watchdog", daemon=True)
        thread.start()
        return thread

    # --- construction --------------------------------------------------------------------------

    def _make_client(self, config: Config) -> Client:
        return make_client(config, config.api.retry_policy())

    def _make_engine(self, config: Config, client: Client) -> Engine:
        return Engine(
            config,
            client,
            self._manifest,
            on_event=self._status.on_engine_event,
            copy_interval=COPY_SECONDS,
        )


def _duration(seconds: float) -> str:
    """900 -> '15 min'; 45 -> '45 s'; 80 -> '80 s'; 7200 -> '2 h'."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:.0f} s"
