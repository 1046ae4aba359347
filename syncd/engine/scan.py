"""What is in a drop folder: the eligible files, their hashes, and which of them are bad input.

A scan turns one configured folder into the planner's :class:`~syncd.engine.model.LocalFolder`:

* **Filters.** Hidden files, editor and download leftovers and the folder's own patterns are
  left out (:mod:`syncd.engine.filters`). The default include is everything: a file of a type
  the service does not take is not hidden but *rejected*, so the user sees why it is not synced.
* **Links and special files.** A symlink is followed only when it points at a regular file
  inside the folder that is itself eligible; anything else is skipped, with one warning per
  link per process. Directory symlinks are never followed (no loops, no double counting).
  FIFOs, sockets and devices are skipped.
* **Hashing.** SHA-256, only when (size, mtime_ns, inode, ctime_ns) differ from the manifest's
  entry. The ctime catches an edit that keeps size and mtime (``cp -p``, ``rsync -t``,
  ``touch -r``): every write sets it, and nobody can set it back.
  A file whose stat changes while it is read is left for the next pass.
* **Validation.** Only for files hashed in this pass; a file the manifest rejected keeps its
  reason until it changes.
* **Safety.** A root that is missing, unreadable, not a directory, on another device than
  last time, or empty although files were synced from it, gives ``LocalFolder.error`` and no
  files: the planner then deletes nothing. A file or directory that exists but could not be
  read keeps its manifest entry in the result, so it is never taken for deleted.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from syncd.engine.files import (
    FileChanged,
    RootFault,
    check_root,
    hashed_stat,
    sha256_file,
    stat_key,
)
from syncd.engine.filters import folder_filters, is_excluded
from syncd.engine.model import Entry, LocalFile, LocalFolder, State
from syncd.engine.names import escape, where
from syncd.engine.validate import validate_file

if TYPE_CHECKING:
    from syncd.config import FolderConfig

__all__ = [
    "BAD_NAME",
    "CHANGED",
    "EXCLUDED",
    "LINK_BROKEN",
    "LINK_OUTSIDE",
    "LINK_TO_DIRECTORY",
    "LINK_TO_EXCLUDED",
    "NOT_REGULAR",
    "VANISHED",
    "FolderScan",
    "Sink",
    "known_file",
    "scan_folder",
    "scan_paths",
    "unchanged",
]

log = logging.getLogger("syncd.scan")

EXCLUDED = "excluded"
LINK_OUTSIDE = "symlink outside folder"
NOT_REGULAR = "not a regular file"
CHANGED = "changed while hashing"
VANISHED = "gone while scanned (removed or renamed)"
LINK_TO_DIRECTORY = "symlink to a directory"
LINK_BROKEN = "broken symlink"
LINK_TO_EXCLUDED = "symlink to an excluded file"
#: The start of the reason for a path that exists but could not be read (permissions, a path
#: longer than PATH_MAX, an I/O error): it needs attention, unlike the skips above.
UNREADABLE = "unreadable: "
BAD_NAME = "its name is not valid UTF-8"


def _utf8(name: str) -> bool:
    """Whether ``name`` (as ``os`` decodes it, undecodable bytes as surrogates) is UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Sink(Protocol):
    """Where a scan checks each eligible file against the manifest, and leaves the result,
    instead of keeping a LocalFile of every file (see :class:`syncd.engine.rest.FolderTable`):
    a file whose stat is the manifest's never becomes an object."""

    def unchanged(self, rel: str, st: os.stat_result) -> bool:
        """Whether the manifest has ``rel`` hashed at this stat (then it is not read)."""

    def settle(self, files: Mapping[str, LocalFile], looked_at: frozenset[str] | None) -> None:
        """The scan is done. ``files``: those it holds (hashed, or kept as last known);
        ``looked_at``: for a scan of some paths only, the paths it examined."""


# Links (and unreadable paths) already warned about by this process, when the caller keeps
# no set of its own.
_WARNED: set[str] = set()


@dataclass
class FolderScan:
    """The result of scanning (part of) one folder."""

    local: LocalFolder
    root_dev: int | None = None  # st_dev of the root, to pass back as expected_dev next time
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    hashed: int = 0  # files hashed in this pass
    bytes_hashed: int = 0
    # scan_paths only: the normalised paths examined. A known path at or below one of them that
    # is absent from local.files no longer exists (or is no longer eligible; the sink of a scan,
    # syncd.engine.rest.FolderTable, says which). None for a full scan.
    looked_at: frozenset[str] | None = None
    # Files whose name is not valid UTF-8, shown escaped: rejected without a manifest row
    # (SQLite, the service and JSON all need UTF-8 names).
    bad_names: list[str] = field(default_factory=list)

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        """The paths that exist but could not be read, with why: they need attention."""
        return [(path, why) for path, why in self.skipped if why.startswith(UNREADABLE)]


# --- scanning -----------------------------------------------------------------------------------


def unchanged(entry: Entry, st: os.stat_result) -> bool:
    """Whether ``entry`` has a hash taken at the stat ``st``: then it is not read again."""
    now = stat_key(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return now == hashed_stat(entry.sha256, entry.size, entry.mtime_ns, entry.inode, entry.ctime_ns)


def known_file(entry: Entry) -> LocalFile:
    """The file as the manifest last saw it, for a path not read in this pass. A rejected
    file keeps its verdict until it changes, so it is not uploaded after all."""
    problem = None
    if entry.state is State.REJECTED:
        problem = entry.last_error or "rejected earlier; change the file to retry"
    return LocalFile(
        entry.path,
        entry.size,
        entry.mtime_ns,
        entry.inode,
        entry.sha256,
        problem,
        entry.ctime_ns,
    )


def _root_problem(
    folder: FolderConfig, expected_dev: int | None
) -> tuple[os.stat_result | None, str | None]:
    """Stat the root and say what is wrong with it, if anything."""
    root = folder.path
    st, problem = check_root(root)
    if problem is not None:
        return st, _ROOT_WORDS[problem.fault].format(root=root, strerror=problem.strerror)
    assert st is not None  # a root without a problem was stat'ed
    if expected_dev is not None and st.st_dev != expected_dev:
        return st, (
            f"folder root {root} is not on the same filesystem as before "
            f"(device {_device(st.st_dev)}, was {_device(expected_dev)}); "
            "is the right volume mounted? Nothing under it is deleted until it is back"
        )
    return st, None


_ROOT_WORDS: dict[RootFault, str] = {
    "missing": "folder root {root} does not exist",
    "unreachable": "cannot read folder root {root}: {strerror}",
    "not_directory": "folder root {root} is not a directory",
    "unreadable": "cannot read folder root {root}: permission denied",
}


def _device(dev: int) -> str:
    return f"{os.major(dev)}:{os.minor(dev)}"


class _Scanner:
    """The state of one pass over one folder."""

    def __init__(
        self,
        folder: FolderConfig,
        known: Mapping[str, Entry],
        warned: set[str] | None,
        sink: Sink | None = None,
    ) -> None:
        self.folder = folder
        self.known = known
        self.sink = sink
        self.warned = _WARNED if warned is None else warned
        self.filters = folder_filters(folder)
        #: Whether a file at ``rel`` with the stat ``st`` is as the manifest has it (then it
        #: is not read): the sink's answer, or the manifest's entry taken as it is.
        self.kept = sink.unchanged if sink is not None else self.reuse
        self.root = os.fspath(folder.path)
        self.root_real = os.path.realpath(self.root)
        self.files: dict[str, LocalFile] = {}
        self.skipped: list[tuple[str, str]] = []
        self.hashed = 0
        self.bytes_hashed = 0
        self.bad_names: list[str] = []

    def warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning(message, *args)

    def walk(self, directory: str, prefix: str) -> int:
        """Scan ``directory`` (relative path ``prefix``, "" or ending in "/") and, if the
        folder is recursive, below it. Returns how many entries the directory listed."""
        # The hot path of a no-change pass over many files: names bound once, one stat per
        # file, no Path objects.
        excludes, includes = self.filters.excludes, self.filters.includes
        recursive, skipped = self.folder.recursive, self.skipped
        kept = self.kept
        stack = [(directory, prefix)]
        listed_here = 0
        first = True
        while stack:
            path, rel_dir = stack.pop()
            try:
                with os.scandir(path) as entries:
                    listing = list(entries)
            except OSError as e:
                if first:
                    raise
                self.unreadable(rel_dir.rstrip("/"), e, directory=True)
                continue
            if first:
                listed_here, first = len(listing), False
            for entry in listing:
                name = entry.name
                rel = rel_dir + name
                if not name.isascii() and not _utf8(name):
                    self.bad_name(rel)
                elif excludes(name, rel):
                    skipped.append((rel, EXCLUDED))
                elif entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    if not includes(name, rel):
                        skipped.append((rel, EXCLUDED))
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        # Listed, then gone: removed, or renamed to a name this listing
                        # did not see. Taken for removed, a rename's file would be deleted
                        # and uploaded again; the next pass sees which it was.
                        self.keep_known(rel, VANISHED)
                        continue
                    except OSError as e:
                        self.unreadable(rel, e)
                        continue
                    if not kept(rel, st):  # found(), a call fewer per file
                        self.regular(entry.path, rel, st)
                elif entry.is_symlink():
                    self.symlink(entry.path, rel, name)
                else:
                    skipped.append((rel, NOT_REGULAR))
        return listed_here

    def found(self, path: str, rel: str, st: os.stat_result) -> None:
        """An eligible regular file at ``path`` (where ``rel`` leads, perhaps through a
        symlink): hash it unless the manifest has it at this stat."""
        if not self.kept(rel, st):
            self.regular(path, rel, st)

    def reuse(self, rel: str, st: os.stat_result) -> bool:
        """Take the manifest's hash (and verdict) when (size, mtime_ns, inode, ctime_ns) are
        unchanged."""
        entry = self.known.get(rel)
        if entry is None or not unchanged(entry, st):
            return False
        self.files[rel] = known_file(entry)
        return True

    def regular(self, path: str, rel: str, st: os.stat_result) -> None:
        """A regular file that passed the filters and changed since the manifest saw it (or is
        new): hash and validate it."""
        try:
            sha256, _ = sha256_file(path, st)
            self.hashed += 1
            self.bytes_hashed += st.st_size
            problem = validate_file(
                Path(path), self.folder.purpose, st.st_size, name=rel.rpartition("/")[2]
            )
        except FileChanged:
            log.debug("%s changed while it was hashed; next pass", where(self.folder.name, rel))
            self.keep_known(rel, CHANGED)
            return
        except FileNotFoundError:
            self.keep_known(rel, VANISHED)  # as above (:meth:`walk`)
            return
        except OSError as e:
            self.unreadable(rel, e)
            return
        self.files[rel] = LocalFile(
            rel, st.st_size, st.st_mtime_ns, st.st_ino, sha256, problem, st.st_ctime_ns
        )

    def symlink(self, path: str, rel: str, name: str) -> None:
        """Follow a link only to an eligible regular file inside the folder."""
        target = os.path.realpath(path)
        inside = target == self.root_real or target.startswith(self.root_real + os.sep)
        if not inside:
            self.skipped.append((rel, LINK_OUTSIDE))
            self.warn_once(
                path,
                "skipping %s: symlink to %s, outside the folder (not followed)",
                where(self.folder.name, rel),
                escape(target),
            )
            return
        try:
            st = os.stat(target, follow_symlinks=False)
        except OSError:
            self.skipped.append((rel, LINK_BROKEN))
            return
        if stat.S_ISDIR(st.st_mode):
            self.skipped.append((rel, LINK_TO_DIRECTORY))
            return
        if not stat.S_ISREG(st.st_mode):
            self.skipped.append((rel, NOT_REGULAR))
            return
        target_rel = os.path.relpath(target, self.root_real).replace(os.sep, "/")
        if is_excluded(target_rel, self.folder):
            # Without this, notes.txt -> .env would carry a hidden file out.
            self.skipped.append((rel, LINK_TO_EXCLUDED))
            return
        if not self.filters.includes(name, rel):
            self.skipped.append((rel, EXCLUDED))
        else:
            self.found(target, rel, st)

    def unreadable(self, rel: str, error: OSError, *, directory: bool = False) -> None:
        """``rel`` exists (or may) but could not be read: say so once, and keep the last
        known state of everything at and below it, so that nothing is taken for deleted."""
        reason = f"{UNREADABLE}{error.strerror or errno.errorcode.get(error.errno or 0, error)}"
        what = "directory" if directory else "file"
        self.warn_once(
            f"{self.root}/{rel}\0{reason}",
            "cannot read %s %s: %s (its last synced state is kept)",
            what,
            where(self.folder.name, rel),
            error.strerror,
        )
        # Whatever ``rel`` is — a file, a directory, or a path that could not even be
        # stat'ed because a directory above it is unreadable — every known entry at and
        # below it still exists as far as anyone can tell: keep them all.
        self.keep_known(rel, reason)
        prefix = rel + "/"
        for path in self.known:
            if path.startswith(prefix):
                self.keep_known(path, None)

    def bad_name(self, rel: str) -> None:
        """A name that is not valid UTF-8: reject that one path (a directory: everything in
        it), say so once, and go on with the rest."""
        shown = escape(rel)
        self.bad_names.append(shown)
        self.skipped.append((shown, BAD_NAME))
        self.warn_once(
            f"{self.root}/{shown}\0{BAD_NAME}",
            "rejected %s: %s; rename it to sync it",
            where(self.folder.name, rel),
            BAD_NAME,
        )

    def keep_known(self, rel: str, reason: str | None) -> None:
        """The path exists but was not read this pass: report its last known state, so the
        planner never takes it for deleted."""
        if reason is not None:
            self.skipped.append((rel, reason))
        entry = self.known.get(rel)
        if entry is not None and entry.sha256:
            self.files[rel] = known_file(entry)

    def result(self, root_dev: int | None, looked_at: frozenset[str] | None) -> FolderScan:
        return FolderScan(
            local=LocalFolder(spec=self.folder.spec(), files=self.files),
            root_dev=root_dev,
            skipped=self.skipped,
            hashed=self.hashed,
            bytes_hashed=self.bytes_hashed,
            looked_at=looked_at,
            bad_names=self.bad_names,
        )


def _unavailable_key(folder: FolderConfig) -> str:
    return f"unavailable\0{folder.path}\0"


def _unavailable(
    folder: FolderConfig,
    message: str,
    root_dev: int | None,
    looked_at: frozenset[str] | None,
    warned: set[str] | None,
) -> FolderScan:
    """The folder cannot be scanned. The error is logged once, not every pass: again only if
    the reason changes, or after the folder was available in between."""
    warned = _WARNED if warned is None else warned
    prefix = _unavailable_key(folder)
    key = prefix + message
    if key not in warned:
        warned.difference_update([k for k in warned if k.startswith(prefix)])
        warned.add(key)
        log.error("%s %s", where(folder.name, None), message)
    return FolderScan(
        local=LocalFolder(spec=folder.spec(), error=message),
        root_dev=root_dev,
        looked_at=looked_at,
    )


def _available(folder: FolderConfig, warned: set[str] | None) -> None:
    """The folder could be scanned: say so if it was unavailable, and forget that it was."""
    warned = _WARNED if warned is None else warned
    prefix = _unavailable_key(folder)
    was = [k for k in warned if k.startswith(prefix)]
    if was:
        warned.difference_update(was)
        log.info("%s available again", where(folder.name, None))


def scan_folder(
    folder: FolderConfig,
    known: Mapping[str, Entry],
    *,
    expected_dev: int | None = None,
    warned_links: set[str] | None = None,
    sink: Sink | None = None,
) -> FolderScan:
    """Scan the whole folder.

    ``known`` maps relative paths to this folder's manifest entries. ``expected_dev`` is the
    root's ``st_dev`` recorded last time (``FolderScan.root_dev``); a different one means a
    different (or no) volume is mounted there. ``warned_links`` remembers which links were
    warned about and which folders were reported unavailable, so a caller running many passes
    warns once per link, and once per folder until it is available again (default: once per
    process). With a ``sink``, the result holds only the files hashed (or kept as last
    known); the sink knows the rest.
    """
    root_st, problem = _root_problem(folder, expected_dev)
    root_dev = root_st.st_dev if root_st else None
    if problem:
        return _unavailable(folder, problem, root_dev, None, warned_links)
    scanner = _Scanner(folder, known, warned_links, sink)
    try:
        listed = scanner.walk(scanner.root, "")
    except OSError as e:
        return _unavailable(
            folder,
            f"cannot read folder root {folder.path}: {e.strerror}",
            root_dev,
            None,
            warned_links,
        )
    if listed == 0 and known and expected_dev is None:
        # Without a recorded device we cannot tell "emptied" from "not mounted": play safe.
        return _unavailable(
            folder,
            f"folder root {folder.path} is empty, but {len(known)} files were synced from it; "
            "if it is a mount point, is it mounted? Nothing under it is deleted",
            root_dev,
            None,
            warned_links,
        )
    if sink is not None:
        sink.settle(scanner.files, None)
    _available(folder, warned_links)
    return scanner.result(root_dev, None)


def scan_paths(
    folder: FolderConfig,
    relpaths: Iterable[str],
    known: Mapping[str, Entry],
    *,
    expected_dev: int | None = None,
    warned_links: set[str] | None = None,
    sink: Sink | None = None,
) -> FolderScan:
    """Scan only ``relpaths`` (the paths a watcher saw change), with the same rules as
    :func:`scan_folder`. A path that is a directory is scanned with everything below it. The
    result holds only those paths; ``looked_at`` says which ones were examined, so that a
    known path at or below one of them missing from ``local.files`` is known to be gone."""
    wanted = _normalise(relpaths)
    looked_at = frozenset(wanted)
    root_st, problem = _root_problem(folder, expected_dev)
    root_dev = root_st.st_dev if root_st else None
    if problem:
        return _unavailable(folder, problem, root_dev, looked_at, warned_links)
    scanner = _Scanner(folder, known, warned_links, sink)
    _available(folder, warned_links)
    for rel in _outermost(wanted):
        _scan_one(scanner, rel)
    if sink is not None:
        sink.settle(scanner.files, looked_at)
    return scanner.result(root_dev, looked_at)


def _normalise(relpaths: Iterable[str]) -> set[str]:
    wanted = set()
    for raw in relpaths:
        parts = [p for p in raw.replace(os.sep, "/").split("/") if p not in ("", ".")]
        if parts and ".." not in parts:
            wanted.add("/".join(parts))
    return wanted


def _outermost(paths: set[str]) -> list[str]:
    """Drop paths that lie under another path of the set (its subtree scan covers them)."""
    result: list[str] = []
    for path in sorted(paths):
        if not result or not path.startswith(result[-1] + "/"):
            result.append(path)
    return result


def _scan_one(scanner: _Scanner, rel: str) -> None:
    folder = scanner.folder
    if not rel.isascii() and not _utf8(rel):
        scanner.bad_name(rel)
        return
    parts = rel.split("/")
    if not folder.recursive and len(parts) > 1:
        return
    for i, name in enumerate(parts):
        if scanner.filters.excludes(name, "/".join(parts[: i + 1])):
            scanner.skipped.append((rel, EXCLUDED))
            return
    # Reach the path the way a full scan would: through real directories only.
    path = scanner.root
    for name in parts[:-1]:
        path = os.path.join(path, name)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return
        except FileNotFoundError:
            return
        except OSError as e:
            scanner.unreadable(rel, e)
            return
    path = os.path.join(path, parts[-1])
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        scanner.unreadable(rel, e)
        return
    name = parts[-1]
    if stat.S_ISDIR(st.st_mode):
        if folder.recursive:
            try:
                scanner.walk(path, rel + "/")
            except OSError as e:
                scanner.unreadable(rel, e, directory=True)
    elif stat.S_ISREG(st.st_mode):
        if not scanner.filters.includes(name, rel):
            scanner.skipped.append((rel, EXCLUDED))
        else:
            scanner.found(path, rel, st)
    elif stat.S_ISLNK(st.st_mode):
        scanner.symlink(path, rel, name)
    else:
        scanner.skipped.append((rel, NOT_REGULAR))
