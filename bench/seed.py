"""A synced state made without syncing: for timing a no-change pass over more files than a
first sync could upload in the time a benchmark has.

:func:`seed` writes, for a tree of small files, what a first sync would leave: the emulator's
data directory holding one file per tree file (its blob a hard link to the tree file), and
syncd's manifest with one ``synced`` entry per file (its stat, its SHA-256, the file's id). A
no-change ``syncd reconcile`` over it then does everything it would do after a real first
sync — scans, lists every file over HTTP, plans, finds nothing to do — which is what is timed.

Only for folders of purpose ``assistants`` with no targets (the benchmark's folder).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from syncd.emulator.store import Store
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry, State

__all__ = ["seed"]

BATCH = 10_000


def seed(tree: Path, folder: str, state_dir: Path, data_dir: Path) -> int:
    """Make ``data_dir`` (an emulator's ``--data-dir``) and ``state_dir`` (syncd's) hold
    ``tree`` as synced into folder ``folder``; returns how many files."""
    store = Store(data_dir)
    ids: dict[str, str] = {}
    incoming = data_dir / "blobs" / ".incoming"
    try:
        with store.transaction():
            for rel, path in _files(tree):
                link = incoming / f"seed-{len(ids)}"
                os.link(path, link)  # the blob is the tree file itself: no copy
                record = store.add_file_in_transaction(
                    filename=os.path.basename(rel),
                    purpose="assistants",
                    size=os.stat(path).st_size,
                    incoming=link,
                    processing_delay=0.0,
                    expires_after=None,
                )
                ids[rel] = record.id
    finally:
        store.close()
    # A link changes the file's ctime: the manifest takes each stat after all of them.
    manifest = ManifestDB.open(state_dir)
    try:
        manifest.set_folder_dev(folder, os.stat(tree).st_dev)
        batch: list[Entry] = []
        for rel, path in _files(tree):
            st = os.stat(path)
            with open(path, "rb") as f:
                sha256 = hashlib.sha256(f.read()).hexdigest()
            batch.append(
                Entry(
                    folder,
                    rel,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ino,
                    sha256,
                    State.SYNCED,
                    ids[rel],
                    ctime_ns=st.st_ctime_ns,
                )
            )
            if len(batch) == BATCH:
                manifest.put_entries(batch)
                batch = []
        manifest.put_entries(batch)
    finally:
        manifest.close()
    return len(ids)


def _files(tree: Path) -> Iterator[tuple[str, str]]:
    """(relative path, path) of every file under ``tree``, in a stable order."""
    for directory, dirs, names in os.walk(tree):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            yield os.path.relpath(path, tree).replace(os.sep, "/"), path
