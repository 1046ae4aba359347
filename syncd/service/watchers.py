"""The daemon's folder watchers: one per configured folder, started, stopped, paused while the
folder's root is unusable, and watched anew when the root comes back or is replaced.

A watcher falls back to polling by itself (:class:`~syncd.service.watch.FolderWatcher`); what is
kept here is which folders are being watched, which are paused and why, and the identity
(device, inode) of each watched root, so that a remounted or replaced root is noticed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.config import FolderConfig
from syncd.engine.files import RootFault, check_root
from syncd.engine.filters import is_excluded
from syncd.service.watch import Debouncer, FolderWatcher

__all__ = ["WatchedFolder", "Watchers"]

log = logging.getLogger("syncd.daemon")

# How a root the watchers cannot use is named in "folder … paused: …".
_ROOT_WORDS: dict[RootFault, str] = {
    "missing": "its root {path} is missing (unmounted or removed?)",
    "unreachable": "cannot reach its root {path}: {strerror}",
    "not_directory": "its root {path} is not a directory",
    "unreadable": "cannot read its root {path}: permission denied",
}


@dataclass
class WatchedFolder:
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


class Watchers:
    """The folders being watched, feeding ``debouncer``.

    ``on_change(name, available)`` is called when a folder starts being watched (True) or is
    paused (False). ``poll_interval``: seconds between polls where the kernel's events are not
    to be had.
    """

    def __init__(
        self, debouncer: Debouncer, on_change: Callable[[str, bool], None], poll_interval: float
    ) -> None:
        self.folders: dict[str, WatchedFolder] = {}
        self.poll_interval = poll_interval
        self._debouncer = debouncer
        self._on_change = on_change

    def add(self, config: FolderConfig) -> None:
        """Watch a folder (replacing the watcher of one with the same name)."""
        if config.name in self.folders:
            self._unwatch(self.folders[config.name])
        self.folders[config.name] = WatchedFolder(config)
        self._watch(self.folders[config.name])

    def remove(self, name: str) -> None:
        """Stop watching a folder and forget it."""
        self._unwatch(self.folders.pop(name))

    def available(self) -> list[str]:
        """The folders being watched (not paused), in configuration order."""
        return [name for name, f in self.folders.items() if f.paused is None]

    @property
    def paused(self) -> int:
        return sum(1 for f in self.folders.values() if f.paused is not None)

    def modes(self) -> dict[str, dict[str, str | None]]:
        """How each folder is watched (``inotify``, ``polling``, ``paused``) and why it is
        paused, for ``daemon.json``."""
        return {
            name: {"watch": f.watcher.mode if f.watcher else "paused", "problem": f.paused}
            for name, f in self.folders.items()
        }

    def check_roots(self) -> list[str]:
        """Pause folders whose root went away; watch anew those that came back, were replaced
        or remounted, or whose watcher stopped. Returns the folders watched anew: they are to
        be passed over in full."""
        renewed = []
        for folder in list(self.folders.values()):
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
                renewed.append(folder.name)
        return renewed

    def stop(self) -> None:
        """Stop every watcher (the folders are kept, for a final status)."""
        for folder in self.folders.values():
            if folder.watcher is not None:
                folder.watcher.stop()

    def _watch(self, folder: WatchedFolder) -> None:
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
                poll_interval=self.poll_interval,
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
        self._on_change(folder.name, True)

    def _unwatch(self, folder: WatchedFolder) -> None:
        if folder.watcher is not None:
            folder.watcher.stop()
            folder.watcher = None
        folder.identity = None
        self._debouncer.remove_folder(folder.name)

    def _pause(self, folder: WatchedFolder, problem: str) -> None:
        self._unwatch(folder)
        if folder.paused != problem:
            log.error(
                "folder %s paused: %s. Nothing under it is deleted; it resumes when its root "
                "is back",
                folder.name,
                problem,
            )
        folder.paused = problem
        self._on_change(folder.name, False)
