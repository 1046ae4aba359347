"""Files at rest: what a round leaves out of the plan, found inside SQLite.

A no-change pass over a large folder must not make every file a Python object: at 100,000
files the objects alone weigh hundreds of megabytes, and building them is most of the pass.
So a round works in the manifest's connection, in temporary tables:

* the scan checks each file's stat against the manifest's (:class:`FolderTable` is the
  scanner's sink) and hashes only the files whose stat changed; those, and the files that
  are gone, go to ``round_changed`` — an unchanged file is a string compared and dropped;
* the listing streams the service's files into ``round_files`` and what every configured
  target holds into ``round_attached``;
* :meth:`RoundTables.select` finds the files **at rest** — nothing the planner could decide
  would touch them — and hands the planner everything else, as before.

A file is at rest when its stat is the manifest's, and either its entry is ``rejected`` with no
remote file (its verdict stands until it changes), or its entry is ``synced`` and its remote
file exists with the folder's purpose, is attached to every configured target (ingested,
``completed``, in a store, with the attributes syncd gives it), and syncd recorded attaching
it there and nowhere else. Then it is left out — unless a rule of the planner reads it from
another path: a file whose content a removed file also had (the removal is then no loss), and
a file a retired one waits for (invariant 4). The test is conservative: a file that might need
anything is planned in full; the planner's state machine (``tests/plan/test_machine.py``)
checks at every pass that what is left out never changes a plan.

The service's listing is cut down the same way: the planner gets the remote files it can act
on (those of the entries it plans and of retired ids) and those a lost upload could have left
(unowned files with the name and size of an unanswered attempt) — never the rest.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from syncd.api import FILE_ROWS, APIError, FilePage
from syncd.engine.files import stat_key
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import (
    Attempt,
    Entry,
    FolderSpec,
    LocalFile,
    LocalFolder,
    Manifest,
    Remote,
    RemoteFile,
    State,
    StoreFile,
    store_attributes,
    target_kind,
)
from syncd.engine.planner import upload_name
from syncd.engine.scan import known_file, unchanged

__all__ = ["FolderTable", "RoundTables", "Selection"]

#: Rows sent to SQLite at once: big enough to amortise the call, small enough to hold.
_BATCH = 2000

_SCHEMA = (
    # The paths whose local side is not as the manifest has it: the scan holds the file
    # (``present``: hashed this round, or kept as last known because it could not be read),
    # or it is gone.
    "CREATE TEMP TABLE round_changed (folder TEXT, path TEXT, present INT,"
    " PRIMARY KEY (folder, path)) WITHOUT ROWID",
    # The listing: indexed only once it is in (see _INDEXES).
    "CREATE TEMP TABLE round_files (id TEXT NOT NULL, filename TEXT NOT NULL,"
    " bytes INT NOT NULL CHECK (typeof(bytes) = 'integer'), purpose TEXT NOT NULL,"
    " created_at INT NOT NULL CHECK (typeof(created_at) = 'integer'))",
    # ``status`` and the rest: NULL for an assistant's file.
    "CREATE TEMP TABLE round_attached (target TEXT, file_id TEXT, status TEXT,"
    " created_at INT, attributes TEXT, last_error TEXT)",
    # The entries of the planned folders that are not at rest in this round.
    "CREATE TEMP TABLE round_busy (folder TEXT, path TEXT, PRIMARY KEY (folder, path))"
    " WITHOUT ROWID",
)
#: Built when the listing is in: sorting 100,000 ids once costs a fraction of keeping an index
#: while they arrive in random order (which spilled the temporary B-tree to disk).
_INDEXES = (
    # With the purpose, the test of a file at rest needs nothing more of the row.
    "CREATE INDEX IF NOT EXISTS temp.round_files_id ON round_files (id, purpose)",
    "CREATE INDEX IF NOT EXISTS temp.round_attached_file ON round_attached (file_id, target)",
)
_DROP = (
    "DROP TABLE IF EXISTS temp.round_changed",
    "DROP TABLE IF EXISTS temp.round_files",
    "DROP TABLE IF EXISTS temp.round_attached",
    "DROP TABLE IF EXISTS temp.round_busy",
)

_STATUSES = ("in_progress", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Selection:
    """What a round plans from: the planner's three inputs, without the files at rest."""

    folders: list[LocalFolder]
    manifest: Manifest
    remote: Remote
    #: Files left out whose rejection stands (they count as rejected); the synced ones left
    #: out, by folder, are ``manifest.resting``.
    rejected: int


class RoundTables:
    """The temporary tables of one round, on the manifest's connection.

    Made afresh for each round; :meth:`close` empties them. Safe to fill from two threads
    (the scan and the listing): every call holds the manifest's lock.
    """

    def __init__(self, manifest: ManifestDB) -> None:
        self.manifest = manifest
        self.listed: set[str] = set()  # the targets whose files were listed
        # The folders whose entries the listing shows not at rest are in round_busy already.
        self._unlisted: set[str] = set()
        with manifest.connection() as conn:
            for statement in _DROP + _SCHEMA:
                conn.execute(statement)

    def close(self) -> None:
        with self.manifest.connection() as conn:
            for statement in _DROP:
                conn.execute(statement)

    def __enter__(self) -> RoundTables:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def folder(self, name: str, *, whole: bool) -> FolderTable:
        """The sink a scan of folder ``name`` (``whole``: all of it) streams into."""
        return FolderTable(self.manifest, name, whole=whole)

    # --- the listing ----------------------------------------------------------------------------

    def add_file_page(self, page: FilePage) -> None:
        """A page of the service's files, as the listing goes: SQLite reads it (see
        :class:`~syncd.api.FilePage`). An :class:`~syncd.api.APIError` if an item of it is
        not a file, or if it is no page of files."""
        try:
            with self.manifest.connection() as conn:
                read = conn.execute(f"INSERT INTO round_files {FILE_ROWS}", [page.text]).rowcount
        except sqlite3.Error as e:
            # A field missing or of the wrong type fails the table's constraints; an item
            # that is no object at all, SQLite's JSON reading.
            if not isinstance(e, sqlite3.IntegrityError) and "JSON" not in str(e):
                raise
            raise APIError(
                "unexpected response: an item of the file list is not a file",
                method="GET",
                path="/files",
            ) from None
        if not read:
            page.check_empty()

    def listing_done(self) -> None:
        """The listing is all in: index it now, on the listing's thread, while the scan is
        likely still going (otherwise :meth:`select` does)."""
        with self.manifest.connection() as conn:
            for statement in _INDEXES:
                conn.execute(statement)

    def add_attached(self, target: str, files: Iterable[tuple[str, StoreFile | None]]) -> None:
        """What ``target`` holds: (file id, its store file; ``None`` for an assistant)."""
        self.listed.add(target)
        rows = (
            (target, file_id, None, None, None, None)
            if found is None
            else (
                target,
                file_id,
                found.status if found.status in _STATUSES else "in_progress",
                found.created_at,
                _canonical(found.attributes),
                found.last_error,
            )
            for file_id, found in files
        )
        self._insert("INSERT INTO round_attached VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record_ingestions(self) -> None:
        """Keep what the listing showed of each store attachment syncd made (for ``syncd
        status``, which does not ask the service)."""
        with self.manifest.connection() as conn:
            # (Not UPDATE ... FROM: SQLite before 3.33, as some distributions ship, lacks it.)
            conn.execute(
                "UPDATE attachments SET"
                " status = (SELECT a.status FROM round_attached a"
                " WHERE a.file_id = attachments.file_id AND a.target = attachments.assistant_id),"
                " last_error = (SELECT a.last_error FROM round_attached a"
                " WHERE a.file_id = attachments.file_id AND a.target = attachments.assistant_id),"
                " checked_at = ? WHERE EXISTS (SELECT 1 FROM round_attached a"
                " WHERE a.file_id = attachments.file_id AND a.target = attachments.assistant_id"
                " AND a.status IS NOT NULL AND (attachments.status IS NOT a.status"
                " OR attachments.last_error IS NOT a.last_error))",
                [time.time()],
            )

    def _insert(self, sql: str, rows: Iterable[tuple]) -> None:
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) == _BATCH:
                self._flush(sql, batch)
                batch = []
        self._flush(sql, batch)

    def _flush(self, sql: str, batch: list[tuple]) -> None:
        if batch:
            with self.manifest.connection() as conn:
                conn.executemany(sql, batch)

    # --- the selection --------------------------------------------------------------------------

    def select(
        self,
        folders: list[LocalFolder],
        *,
        unavailable: Mapping[str, str],
        instance: str,
    ) -> Selection:
        """The planner's inputs for ``folders`` (as scanned: ``files`` holds what the scan
        hashed or kept; every other file of the folder is as the manifest has it), with the
        files at rest left out. ``unavailable``: targets the service no longer serves, with
        why."""
        available = [f for f in folders if f.error is None]
        self.listing_done()
        names = [f.spec.name for f in available]
        self.find_unlisted(
            [f.spec for f in available if f.spec.name not in self._unlisted],
            unavailable=unavailable,
            instance=instance,
        )
        with self.manifest.connection() as conn:
            # A folder that cannot be planned this round (found so after the listing) keeps
            # nothing here.
            listed_names = json.dumps(names)
            conn.execute(
                "DELETE FROM round_busy WHERE folder NOT IN (SELECT value FROM json_each(?))",
                [listed_names],
            )
            conn.execute(
                "INSERT OR IGNORE INTO round_busy SELECT e.folder, e.path FROM round_changed c"
                " JOIN entries e ON e.folder = c.folder AND e.path = c.path"
                " WHERE c.folder IN (SELECT value FROM json_each(?))",
                [listed_names],
            )
            self._keep_what_rules_read(conn, names)
            synced, rejected = self._counts(conn, names)
            entries = self._active_entries(conn)
            planned = [self._planned(conn, f, entries) for f in folders]
            attempts = [
                Attempt(*row)
                for row in conn.execute(
                    "SELECT folder, path, filename, size, purpose, sha256, sent_at, file_id"
                    " FROM attempts WHERE file_id IS NULL ORDER BY sent_at, folder, path"
                )
            ]
            retired = self.manifest.retired_files()
            ids = {e.file_id for e in entries.values() if e.file_id}
            ids |= set(retired)
            ids |= {r.replaced_by for r in retired.values() if r.replaced_by}
            ids |= self._candidates(conn, attempts, entries.values())
            remote = self._remote(conn, ids, unavailable)
            recorded = self.manifest.attachments_of(ids)
        manifest = Manifest(
            entries={(e.folder, e.path): e for e in entries.values()},
            attachments=recorded,
            retired=retired,
            attempts=tuple(attempts),
            resting=synced,
        )
        return Selection(planned, manifest, remote, rejected)

    def find_unlisted(
        self,
        specs: Iterable[FolderSpec],
        *,
        unavailable: Mapping[str, str],
        instance: str,
    ) -> None:
        """Put in ``round_busy`` the entries of the folders ``specs`` that are not at rest for
        what the manifest and the listing say (a round's changed paths are added by
        :meth:`select`). ``unavailable``: as for :meth:`select`, which it must equal.

        Called on the listing's thread once the listing is in, while the scan likely goes on:
        on a large folder this is most of the selection, and SQLite does it without holding
        the interpreter's lock. (Most files of a large folder are at rest: the few others are
        what is written.)"""
        with self.manifest.connection() as conn:
            for spec in specs:
                self._find_unlisted(conn, spec, unavailable, instance)
                self._unlisted.add(spec.name)

    def _find_unlisted(
        self,
        conn: sqlite3.Connection,
        spec: FolderSpec,
        unavailable: Mapping[str, str],
        instance: str,
    ) -> None:
        targets = [t for t in spec.targets if t not in unavailable]
        allowed = targets + [t for t in spec.targets if t in unavailable]
        conn.execute(
            # (The list of files attached where they should not be is made once, not looked up
            # a file at a time.)
            "INSERT OR IGNORE INTO round_busy SELECT e.folder, e.path FROM entries e"
            " WHERE e.folder = :folder AND NOT (e.sha256 != ''"
            " AND ((e.state = 'rejected' AND e.file_id IS NULL) OR (e.state = 'synced'"
            " AND EXISTS (SELECT 1 FROM round_files f WHERE f.id = e.file_id"
            " AND f.purpose = :purpose)"
            " AND (:n = 0 OR (SELECT count(*) FROM round_attached a"
            " WHERE a.file_id = e.file_id AND a.target IN (SELECT value FROM json_each(:targets))"
            " AND (a.status IS NULL OR a.status = 'completed')) = :n)"
            " AND (:n = 0 OR (SELECT count(*) FROM attachments m WHERE m.file_id = e.file_id"
            " AND m.assistant_id IN (SELECT value FROM json_each(:targets))) = :n)"
            " AND e.file_id NOT IN (SELECT m.file_id FROM attachments m"
            " WHERE m.file_id IS NOT NULL"
            " AND m.assistant_id NOT IN (SELECT value FROM json_each(:allowed))))))",
            {
                "folder": spec.name,
                "purpose": spec.purpose,
                "targets": json.dumps(targets),
                "n": len(targets),
                "allowed": json.dumps(allowed),
            },
        )
        stores = [t for t in targets if target_kind(t) == "store"]
        if not stores:
            return
        # The attributes a store file should carry are made in one place, in Python: compare
        # them there, a row at a time (nothing is kept).
        wrong = [
            (spec.name, path)
            for path, sha256, mtime_ns, attributes in conn.execute(
                "SELECT e.path, e.sha256, e.mtime_ns, a.attributes FROM entries e"
                " JOIN round_attached a ON a.file_id = e.file_id"
                " WHERE e.folder = ? AND e.state = 'synced'"
                " AND a.target IN (SELECT value FROM json_each(?)) AND NOT EXISTS"
                " (SELECT 1 FROM round_busy b WHERE b.folder = e.folder AND b.path = e.path)",
                [spec.name, json.dumps(stores)],
            )
            if attributes != _canonical(store_attributes(spec, instance, path, sha256, mtime_ns))
        ]
        conn.executemany("INSERT OR IGNORE INTO round_busy VALUES (?, ?)", wrong)

    def _keep_what_rules_read(self, conn: sqlite3.Connection, names: list[str]) -> None:
        """Plan in full the files at rest that a rule reads from another path: one a retired
        file waits for (invariant 4), and one holding the content of a file planned in full
        (a removed file whose content is still here is no loss; a rename pairs the two)."""
        conn.execute(
            "INSERT OR IGNORE INTO round_busy SELECT e.folder, e.path FROM entries e"
            " WHERE e.folder IN (SELECT value FROM json_each(?)) AND e.file_id IN"
            " (SELECT replaced_by FROM retired WHERE replaced_by IS NOT NULL)",
            [json.dumps(names)],
        )
        conn.execute(
            # From the busy files to their entries, then to the entries with their content
            # (by the index of entries by content), never the other way round: that read every
            # entry of the folder, once for each busy file.
            "INSERT OR IGNORE INTO round_busy SELECT e.folder, e.path"
            " FROM (SELECT DISTINCT b.folder, b.sha256 FROM round_busy r CROSS JOIN entries b"
            " ON b.folder = r.folder AND b.path = r.path) s"
            " CROSS JOIN entries e ON e.folder = s.folder AND e.sha256 = s.sha256"
        )

    def _counts(self, conn: sqlite3.Connection, names: list[str]) -> tuple[dict[str, int], int]:
        """Files at rest: synced ones by folder, and rejected ones (every entry that is not
        busy is one or the other)."""
        synced = dict.fromkeys(names, 0)
        rejected = 0
        for folder, state, n in conn.execute(
            # (A count for each folder and state reads only the index; GROUP BY took twice as
            # long to count 100,000 files.)
            "SELECT f.value, s.value, (SELECT count(*) FROM entries e"
            " WHERE e.folder = f.value AND e.state = s.value)"
            ' FROM json_each(?) f, json_each(\'["synced", "rejected"]\') s',
            [json.dumps(names)],
        ):
            if state == State.SYNCED.value:
                synced[folder] += n
            else:
                rejected += n
        for folder, state, n in conn.execute(
            "SELECT e.folder, e.state, count(*) FROM round_busy b"
            " JOIN entries e ON e.folder = b.folder AND e.path = b.path"
            " WHERE e.state IN ('synced', 'rejected') GROUP BY e.folder, e.state"
        ):
            if state == State.SYNCED.value:
                synced[folder] -= n
            else:
                rejected -= n
        return synced, rejected

    def _active_entries(self, conn: sqlite3.Connection) -> dict[tuple[str, str], Entry]:
        rows = conn.execute(
            "SELECT e.folder, e.path, e.size, e.mtime_ns, e.inode, e.sha256, e.state,"
            " e.file_id, e.attempts, e.next_attempt_at, e.last_error, e.intent_sha256,"
            " e.intent_size, e.intent_at, e.ctime_ns FROM round_busy b"
            " JOIN entries e ON e.folder = b.folder AND e.path = b.path"
        )
        return {(row[0], row[1]): ManifestDB.entry_of(row) for row in rows}

    def _planned(
        self,
        conn: sqlite3.Connection,
        folder: LocalFolder,
        entries: Mapping[tuple[str, str], Entry],
    ) -> LocalFolder:
        """The folder as the planner sees it: what the scan holds, and the files whose stat
        is the manifest's that are not at rest (as the manifest last saw them)."""
        if folder.error is not None:
            return folder
        name = folder.spec.name
        files = dict(folder.files)
        for (path,) in conn.execute(
            "SELECT b.path FROM round_busy b WHERE b.folder = ? AND NOT EXISTS"
            " (SELECT 1 FROM round_changed c WHERE c.folder = b.folder AND c.path = b.path)",
            [name],
        ):
            files[path] = known_file(entries[(name, path)])
        return LocalFolder(folder.spec, files)

    def _candidates(
        self, conn: sqlite3.Connection, attempts: list[Attempt], entries: Iterable[Entry]
    ) -> set[str]:
        """Unowned remote files with the name (as sent) and size of an unanswered upload:
        what a lost upload may have left. An entry waiting for its upload's answer stands
        for its attempt, as in the planner."""
        keys = {(a.filename, a.size) for a in attempts}
        keys |= {
            (upload_name(e.path), e.intent_size)
            for e in entries
            if e.state is State.UPLOADING and e.intent_size is not None
        }
        if not keys:
            return set()
        rows = conn.execute(
            "SELECT f.id FROM round_files f"
            " JOIN json_each(?) k ON f.filename = json_extract(k.value, '$[0]')"
            " AND f.bytes = json_extract(k.value, '$[1]')"
            " WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.file_id = f.id)"
            " AND NOT EXISTS (SELECT 1 FROM retired r WHERE r.file_id = f.id)"
            " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.file_id = f.id)",
            [json.dumps(sorted(keys))],
        )
        return {file_id for (file_id,) in rows}

    def _remote(
        self,
        conn: sqlite3.Connection,
        ids: Collection[str],
        unavailable: Mapping[str, str],
    ) -> Remote:
        """The listing, cut down to ``ids``; an assistant's attachments whole (its file
        limit counts them all)."""
        wanted = json.dumps(sorted(ids))
        files = {
            row[0]: RemoteFile(*row)
            for row in conn.execute(
                "SELECT id, filename, bytes, purpose, created_at FROM round_files"
                " WHERE id IN (SELECT value FROM json_each(?))",
                [wanted],
            )
        }
        attachments: dict[str, frozenset[str]] = {}
        store_files: dict[str, dict[str, StoreFile]] = {}
        for target in sorted(self.listed):
            if target_kind(target) == "assistant":
                attachments[target] = frozenset(
                    file_id
                    for (file_id,) in conn.execute(
                        "SELECT file_id FROM round_attached WHERE target = ?", [target]
                    )
                )
                continue
            found: dict[str, StoreFile] = {}
            for file_id, status, created_at, attributes, last_error in conn.execute(
                "SELECT file_id, status, created_at, attributes, last_error FROM round_attached"
                " WHERE target = ? AND file_id IN (SELECT value FROM json_each(?))",
                [target, wanted],
            ):
                found[file_id] = StoreFile(
                    status, created_at, json.loads(attributes or "{}"), last_error
                )
            store_files[target] = found
            attachments[target] = frozenset(found)
        return Remote(files, attachments, store_files, dict(unavailable))


class FolderTable:
    """One folder's scan, as the sink it streams into (see :class:`syncd.engine.scan.Sink`):
    it says which files the manifest has at their stat, and writes to ``round_changed`` only
    the others and the files that are gone.

    For a scan of the whole folder (``whole``) the manifest's stats are read at once, as one
    short key per path, and each file seen takes its own out; those left at the end are
    gone. A scan of some paths looks each one up.
    """

    def __init__(self, manifest: ManifestDB, folder: str, *, whole: bool) -> None:
        self.manifest = manifest
        self.name = folder
        self.whole = whole
        self._stats: dict[str, bytes] | None = None  # whole: path -> stat of every entry
        self._seen: set[str] = set()  # a scan of some paths: those the manifest has

    def unchanged(self, rel: str, st: os.stat_result) -> bool:
        """Whether the manifest has ``rel`` hashed at the stat ``st``."""
        if self.whole:  # (once a file of a scan's hot path: no call that is not needed)
            stats = self._stats if self._stats is not None else self._recorded()
            return stats.pop(rel, None) == stat_key(
                st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns
            )
        entry = self.manifest.entry(self.name, rel)
        if entry is None or not unchanged(entry, st):
            return False
        self._seen.add(rel)
        return True

    def settle(self, files: Mapping[str, LocalFile], looked_at: frozenset[str] | None) -> None:
        """The scan is done: ``files`` (those it hashed or kept) are present; a known path it
        neither saw unchanged nor holds is gone — for a scan of some paths, only one at or
        below a path it looked at (the others stand as the manifest has them)."""
        rows = [(self.name, path, 1) for path in files]
        if self.whole:
            rows += [(self.name, path, 0) for path in self._recorded() if path not in files]
            self._stats = None
        with self.manifest.connection() as conn:
            conn.executemany("INSERT OR REPLACE INTO round_changed VALUES (?, ?, ?)", rows)
            if not self.whole:
                conn.execute(
                    "INSERT OR IGNORE INTO round_changed SELECT folder, path, 0 FROM entries e"
                    " WHERE e.folder = ? AND EXISTS (SELECT 1 FROM json_each(?) j"
                    " WHERE e.path = j.value OR substr(e.path, 1, length(j.value) + 1)"
                    " = j.value || '/') AND e.path NOT IN (SELECT value FROM json_each(?))",
                    [
                        self.name,
                        json.dumps(sorted(looked_at or ())),
                        json.dumps(sorted(self._seen | set(files))),
                    ],
                )
        self._seen = set()

    def unsettled(self) -> list[str]:
        """The paths whose entry is not at rest in the manifest (not synced or rejected):
        they may hold news the manifest does not."""
        with self.manifest.connection() as conn:
            rows = conn.execute(
                "SELECT path FROM entries WHERE folder = ? AND state NOT IN (?, ?)",
                [self.name, State.SYNCED.value, State.REJECTED.value],
            ).fetchall()
        return [path for (path,) in rows]

    def known(self) -> Mapping[str, Entry]:
        """The folder's entries, looked up one at a time (the scan needs a few: those of a
        file it could not read, or that changed while it was read)."""
        return _Known(self.manifest, self.name)

    def _recorded(self) -> dict[str, bytes]:
        if self._stats is None:
            with self.manifest.reader() as conn:
                rows = conn.execute(
                    "SELECT path, hashed_stat FROM entries WHERE folder = ?", [self.name]
                )
                self._stats = dict(rows)
        return self._stats


class _Known(Mapping[str, Entry]):
    """A folder's manifest entries, read on demand."""

    def __init__(self, manifest: ManifestDB, folder: str) -> None:
        self.manifest = manifest
        self.folder = folder

    def __getitem__(self, path: str) -> Entry:
        entry = self.manifest.entry(self.folder, path)
        if entry is None:
            raise KeyError(path)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self.manifest.paths(self.folder))

    def __len__(self) -> int:
        return self.manifest.count(self.folder)


def _canonical(attributes: Mapping[str, object]) -> str:
    """One text for equal attributes (whatever order the service lists them in)."""
    return json.dumps(attributes, sort_keys=True, separators=(",", ":"))
