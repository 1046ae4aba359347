"""Short ways to write the planner's inputs in a test: contents stand for their hashes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syncd.engine.model import (
    Action,
    Attempt,
    Cleanup,
    Detach,
    Entry,
    FolderSpec,
    LocalFile,
    LocalFolder,
    Manifest,
    Plan,
    Remote,
    RemoteFile,
    Retired,
    State,
    StoreFile,
)
from syncd.engine.planner import plan

from .sim import INSTANCE, sha

A, B, X = "asst_a", "asst_b", "asst_x"  # X is configured nowhere: someone else's
NOW = 1_000_000.0
DOCS = FolderSpec("docs", "assistants", (A,), on_delete="delete")


def local(
    path: str, content: str = "v1", *, problem: str | None = None, stat: int = 1
) -> LocalFile:
    """A scanned file; ``stat`` stands for its mtime and inode."""
    return LocalFile(path, len(content), stat, stat, sha(content), problem)


def folder(spec: FolderSpec = DOCS, *files: LocalFile, error: str | None = None) -> LocalFolder:
    return LocalFolder(spec, {f.path: f for f in files}, error)


def entry(
    path: str,
    content: str = "v1",
    file_id: str | None = "file-1",
    state: State = State.SYNCED,
    *,
    folder: str = "docs",
    stat: int = 1,
    **fields: object,
) -> Entry:
    """A manifest row whose stat matches ``local(path, content, stat=stat)``."""
    return Entry(folder, path, len(content), stat, stat, sha(content), state, file_id, **fields)  # type: ignore[arg-type]


def remote_file(
    file_id: str,
    filename: str = "a.md",
    size: int = 2,
    *,
    created_at: int = int(NOW) - 100,
    purpose: str = "assistants",
) -> RemoteFile:
    return RemoteFile(file_id, filename, size, purpose, created_at)


def run(
    folders: LocalFolder | list[LocalFolder],
    entries: Iterable[Entry] = (),
    files: Iterable[RemoteFile | str] = (),
    attached: Mapping[str, Iterable[str]] | None = None,
    *,
    recorded: Iterable[tuple[str, str]] = (),
    retired: Iterable[Retired] = (),
    attempts: Iterable[Attempt] = (),
    now: float = NOW,
    stores: Mapping[str, Mapping[str, StoreFile]] | None = None,
    unavailable: Mapping[str, str] | None = None,
    **options: object,
) -> Plan:
    """Plan for these snapshots. A bare id in ``files`` is a remote file named ``a.md``;
    ``attached`` lists each assistant's files (A, B and X are listed, empty, by default);
    ``stores`` each store's files (also listed as its attachments)."""
    remote_files = {}
    for f in files:
        f = remote_file(f) if isinstance(f, str) else f
        remote_files[f.id] = f
    listing: dict[str, frozenset[str]] = {A: frozenset(), B: frozenset(), X: frozenset()}
    listing |= {a: frozenset(ids) for a, ids in (attached or {}).items()}
    listing |= {v: frozenset(found) for v, found in (stores or {}).items()}
    manifest = Manifest(
        {(e.folder, e.path): e for e in entries},
        frozenset(recorded),
        {r.file_id: r for r in retired},
        tuple(attempts),
    )
    return plan(
        folders if isinstance(folders, list) else [folders],
        manifest,
        Remote(remote_files, listing, stores or {}, unavailable or {}),
        now=now,
        instance=INSTANCE,
        **options,  # type: ignore[arg-type]
    )


def where(action: Action) -> tuple[str, str | None]:
    """An action's (folder, path); Detach and Cleanup name only a remote id."""
    if isinstance(action, Detach | Cleanup):
        raise TypeError(f"{action} names no folder or path")
    return action.folder, action.path
