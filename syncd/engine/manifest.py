"""The manifest: what syncd has done, kept in one SQLite file in ``state_dir``.

It holds one row per local entry (its stat triple, content hash, state, the remote file that
holds its content, retry bookkeeping and any upload intent), one row per attachment syncd made,
the remote files syncd retired but has not cleaned up yet, each folder's root device, and a short
history of passes. ``snapshot()`` turns it into the planner's immutable ``plan.Manifest``.

The file lives in a 0700 directory and is created 0600 (SQLite gives the ``-wal`` and ``-shm``
files beside it the same mode). WAL mode lets ``syncd status`` read while a pass writes.

Durability: every commit survives the process dying (WAL, ``synchronous=NORMAL``). A commit made
``durable=True`` — an upload intent, which must be on disk before its request leaves (invariant
2) — is also synced to disk before the call returns, and with it every commit before it, so it
survives a power cut too. The writes of each upload — its intent, then its answer — that
arrive from several threads while a commit is being made share the next commit (group commit;
synced if any of them must be durable), so concurrent uploads do not queue for a commit and a
sync each; and the sync happens outside the lock, so the other threads read meanwhile (see
``_grouped``). A later commit lost to a power cut is recovered from: its upload's intent is
still there, and the next pass finds and adopts the file.

The schema version is ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a version ``n`` file to
``n + 1``. A file from a newer syncd is refused rather than guessed at.

Writes come from one writer: every method takes the same lock, so the executor's worker threads
can share one connection (``check_same_thread=False``), each write a short transaction.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import operator
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncd.engine.files import hashed_stat
from syncd.engine.model import Attempt, Entry, Manifest, Retired, State

if TYPE_CHECKING:
    # Only a migration needs sqlite-utils (its table helpers): imported then, not by every
    # command that opens the manifest (it costs ~50 ms of each one's start).
    import sqlite_utils

__all__ = [
    "BACKUP_FILENAME",
    "FILENAME",
    "INSTANCE_FILENAME",
    "MIGRATIONS",
    "PASS_HISTORY",
    "SCHEMA_VERSION",
    "Answer",
    "ManifestDB",
    "ManifestDamaged",
    "ManifestError",
    "PassInfo",
    "StateFull",
    "instance_id",
    "integrity_problem",
]

log = logging.getLogger("syncd.manifest")

FILENAME = "manifest.sqlite"
#: The verified copy kept after each pass that changed something (see :meth:`ManifestDB.backup`).
BACKUP_FILENAME = "manifest.backup.sqlite"
#: The file in the state directory that keeps this syncd's instance id. Beside the manifest,
#: not in it: a lost manifest is rebuilt from the store files that carry the id.
INSTANCE_FILENAME = "instance-id"

#: The key under which a pass's unreadable paths ride in its ``counts`` JSON.
_UNREADABLE_KEY = "unreadable_paths"

#: How many passes per folder ``record_pass`` keeps.
PASS_HISTORY = 50


class ManifestError(Exception):
    """The manifest cannot be opened or used as it is; the message says why and what to do."""


class ManifestDamaged(ManifestError):
    """The manifest failed SQLite's integrity check: nothing may be decided from it."""

    def __init__(self, path: Path, detail: str) -> None:
        backup = path.with_name(BACKUP_FILENAME)
        super().__init__(
            f"the manifest at {path} is damaged ({detail}). Nothing was changed. Run "
            f"`syncd repair` to restore the verified copy {backup} and take back what syncd "
            "uploaded since; do not delete the manifest (everything would be uploaded again, "
            "and the copies already there would not be syncd's)"
        )


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """What SQLite's quick check finds wrong with the database, or None when it is sound."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        if "malformed" not in str(e):
            raise  # not a verdict on the file: I/O, a full disk, a lock
        return str(e)
    found = [str(row[0]) for row in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


def _refuse_damaged(path: Path, problem: str | None) -> None:
    """Raise :class:`ManifestDamaged` for what the integrity check found, if anything; an
    empty or foreign file ("not a database") is left to the open that meets it."""
    if problem is not None and "not a database" not in problem:
        raise ManifestDamaged(path, problem)


def _check_beside(path: Path) -> Future[str | None]:
    """The integrity check of the database at ``path``, on a connection and a thread of its
    own (the file is in WAL mode: it reads what is committed while others read and write)."""

    def check() -> str | None:
        with contextlib.closing(
            sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        ) as conn:
            return integrity_problem(conn)

    future: Future[str | None] = Future()

    def run() -> None:
        try:
            future.set_result(check())
        except BaseException as e:  # handed to whoever waits for the verdict
            future.set_exception(e)

    threading.Thread(target=run, name="syncd-check", daemon=True).start()
    return future


class StateFull(ManifestError):
    """The state directory's disk is full: nothing more can be recorded, so nothing more may
    be done. What was committed stays; the next pass carries on from there."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(
            f"the state directory {state_dir} is full (no space left on device): syncd "
            "cannot record what it does, so it stopped; free some space there, and it "
            "carries on where it stopped"
        )


def _full(error: BaseException, directory: Path) -> bool:
    """Whether a database or file error means the disk under ``directory`` is full. SQLite
    says so itself when a write does not fit, but a shared-memory file it cannot grow shows
    as a plain I/O error: then the free space decides."""
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    if not isinstance(error, sqlite3.Error):
        return False
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    if "disk I/O error" not in str(error):
        return False
    try:
        return os.statvfs(directory).f_bavail == 0
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Answer:
    """An upload's answer as :meth:`ManifestDB.record_answers` records it: the attempt sent at
    ``sent_at`` was answered with ``file_id``, the row becomes ``entry``, and the version it
    replaced, if any, is ``retired``."""

    entry: Entry
    sent_at: float
    file_id: str
    retired: Retired | None = None


@dataclass(frozen=True, slots=True)
class PassInfo:
    """One recorded pass over a folder."""

    folder: str
    started_at: float  # unix seconds
    finished_at: float
    counts: dict[str, int]
    error: str | None = None  # why the folder was skipped or the pass stopped, if it was
    #: path -> why: files the pass found but could not read (they need attention)
    unreadable: dict[str, str] = field(default_factory=dict)


def instance_id(state_dir: Path, configured: str | None = None, *, create: bool = True) -> str:
    """This syncd's instance id: ``configured`` (``sync.instance_id``) when set, else the one
    kept in ``state_dir``, generated there the first time (unless not ``create``: then
    ``""``, for a dry run that must not write)."""
    if configured:
        return configured
    path = Path(state_dir).expanduser() / INSTANCE_FILENAME
    try:
        kept = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        kept = ""
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"cannot read the instance id in {path}: {e}") from e
    if kept or not create:
        return kept
    new = f"syncd-{uuid.uuid4().hex[:12]}"
    _secure_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new + "\n", encoding="ascii")
    os.replace(tmp, path)
    return new


# --- schema --------------------------------------------------------------------------------------


def _v1(db: sqlite_utils.Database) -> None:
    """The first schema: entries, attachments, retired ids and folder root devices."""
    db.table("entries").create(
        {
            "folder": str,
            "path": str,
            "size": int,
            "mtime_ns": int,
            "inode": int,
            "sha256": str,
            "state": str,
            "file_id": str,
            "attempts": int,
            "next_attempt_at": float,
            "last_error": str,
            "intent_sha256": str,
            "intent_size": int,
            "intent_at": float,
        },
        pk=("folder", "path"),
        not_null={"size", "mtime_ns", "inode", "sha256", "state", "attempts"},
        defaults={"attempts": 0},
    )
    db.table("entries").create_index(["file_id"])
    db.table("entries").create_index(["state"])
    db.table("attachments").create(
        {"file_id": str, "assistant_id": str}, pk=("file_id", "assistant_id")
    )
    db.table("retired").create(
        {"file_id": str, "folder": str, "delete": int, "replaced_by": str},
        pk="file_id",
        not_null={"folder", "delete"},
    )
    db.table("folders").create({"name": str, "root_dev": int}, pk="name")


def _v2(db: sqlite_utils.Database) -> None:
    """Pass history (for ``syncd status``) and when each entry last changed."""
    db.table("passes").create(
        {
            "id": int,
            "folder": str,
            "started_at": float,
            "finished_at": float,
            "counts": str,
            "error": str,
        },
        pk="id",
        not_null={"folder", "started_at", "finished_at", "counts"},
    )
    db.table("passes").create_index(["folder", "finished_at"])
    db.table("entries").add_column("updated_at", float)


def _v3(db: sqlite_utils.Database) -> None:
    """Every unanswered upload attempt (so that a late copy is known for syncd's own), and
    each entry's ctime (an edit that keeps size and mtime still changes it).

    An intent recorded by an older syncd becomes its one attempt; its purpose was not kept
    (``NULL``: the folder's). The ctime of existing rows is unknown (0): the next scan hashes
    each file once and records it."""
    db.table("attempts").create(
        {
            "folder": str,
            "path": str,
            "filename": str,
            "size": int,
            "purpose": str,
            "sha256": str,
            "sent_at": float,
            "file_id": str,
        },
        pk=("folder", "path", "sent_at"),
        not_null={"filename", "size", "sha256"},
    )
    # Here, not at the top: reading the manifest (``syncd status``) loads no HTTP client.
    from syncd.engine.planner import upload_name

    intents = db.execute(
        "SELECT folder, path, intent_size, intent_sha256, intent_at FROM entries"
        " WHERE state = 'uploading' AND intent_at IS NOT NULL"
        " AND intent_size IS NOT NULL AND intent_sha256 IS NOT NULL"
    ).fetchall()
    db.conn.executemany(
        _PUT_ATTEMPT,
        [
            (folder, path, upload_name(path), size, None, sha256, at)
            for folder, path, size, sha256, at in intents
        ],
    )
    db.table("entries").add_column("ctime_ns", int, not_null_default=0)


def _v4(db: sqlite_utils.Database) -> None:
    """Vector stores: each attachment's ingestion (``status``, the service's ``last_error``)
    and when syncd last learnt it, so that ``syncd status`` can show it without the service."""
    attachments = db.table("attachments")
    attachments.add_column("status", str)
    attachments.add_column("last_error", str)
    attachments.add_column("checked_at", float)


def _v5(db: sqlite_utils.Database) -> None:
    """Entries by folder and state: every pass counts them (the report, the files at rest),
    and over 100,000 rows the index is a sixth of the reading."""
    db.table("entries").create_index(["folder", "state"])


def _v6(db: sqlite_utils.Database) -> None:
    """Each entry's stat as its hash was taken, in one column (:func:`hashed_stat`): a
    no-change scan reads it per file, where having SQLite format the four numbers was half of
    reading 100,000 rows. (Filled by the next version.)"""
    db.table("entries").add_column("hashed_stat", str, not_null_default="")


def _v7(db: sqlite_utils.Database) -> None:
    """``hashed_stat`` packed rather than written out as text (see :func:`hashed_stat`):
    writing out each file's stat to compare it was a fifth of a no-change scan. (The column
    keeps its declared type: SQLite stores the bytes as they are.)"""
    db.conn.create_function("hashed_stat", 5, hashed_stat, deterministic=True)
    db.execute(
        "UPDATE entries SET hashed_stat = hashed_stat(sha256, size, mtime_ns, inode, ctime_ns)"
    )


def _v8(db: sqlite_utils.Database) -> None:
    """Entries by content: a round plans in full the files whose content a busy file has (a
    rename pairs the two; a removal whose content is still here is no loss), and without this
    index it read the whole folder once for each busy file (100 busy files in a folder of
    100,000: 4 s). By content alone, not (folder, content): SQLite took that one for every
    read of a whole folder, and reading the rows in the order of their hashes missed its page
    cache six times as often (a no-change pass over 100,000 files: 213,000 page reads instead
    of 32,000)."""
    db.table("entries").create_index(["sha256"])


#: ``MIGRATIONS[n]`` upgrades a version-``n`` file (0 = empty) to version ``n + 1``.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
)
SCHEMA_VERSION = len(MIGRATIONS)

_SELECT_ENTRIES = (
    "SELECT folder, path, size, mtime_ns, inode, sha256, state, file_id, attempts,"
    " next_attempt_at, last_error, intent_sha256, intent_size, intent_at, ctime_ns FROM entries"
)
_PUT_ENTRY = (
    "INSERT OR REPLACE INTO entries (folder, path, size, mtime_ns, inode, sha256, state, file_id,"
    " attempts, next_attempt_at, last_error, intent_sha256, intent_size, intent_at, ctime_ns,"
    " updated_at, hashed_stat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PUT_ATTEMPT = (
    "INSERT OR REPLACE INTO attempts (folder, path, filename, size, purpose, sha256, sent_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_ANSWER_ATTEMPT = "UPDATE attempts SET file_id = ? WHERE folder = ? AND path = ? AND sent_at = ?"
_PUT_RETIRED = (
    "INSERT OR REPLACE INTO retired (file_id, folder, [delete], replaced_by) VALUES (?, ?, ?, ?)"
)
# A folder filter binds one JSON array, so the SQL text never varies with the input.
_IN_FOLDERS = " WHERE folder IN (SELECT value FROM json_each(?))"
# (folder, path) keys bound as one JSON array of pairs.
_AT_KEYS = (
    " WHERE (folder, path) IN"
    " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
)


# A dict lookup, not ``State(value)``: the enum call is a third of reading 100,000 rows.
_STATES = {state.value: state for state in State}


def _entry(row: tuple) -> Entry:
    folder, path, size, mtime_ns, inode, sha256, state, *rest = row
    return Entry(folder, path, size, mtime_ns, inode, sha256, _STATES[state], *rest)


def _row(e: Entry, now: float) -> tuple:
    return (
        e.folder,
        e.path,
        e.size,
        e.mtime_ns,
        e.inode,
        e.sha256,
        e.state.value,
        e.file_id,
        e.attempts,
        e.next_attempt_at,
        e.last_error,
        e.intent_sha256,
        e.intent_size,
        e.intent_at,
        e.ctime_ns,
        now,
        hashed_stat(e.sha256, e.size, e.mtime_ns, e.inode, e.ctime_ns),
    )


# Attempts sent before ``?`` that no plan looks at any more: unanswered ones of folders no longer
# configured (``?``: the configured folders' names), and answered ones once no unanswered
# attempt has their filename and size.
_PRUNE_UNANSWERED = (
    "DELETE FROM attempts WHERE sent_at < ? AND file_id IS NULL"
    " AND folder NOT IN (SELECT value FROM json_each(?))"
)
_PRUNE_ANSWERED = (
    "DELETE FROM attempts WHERE sent_at < ? AND file_id IS NOT NULL"
    # One key column (a name holds no NUL), so that SQLite looks each row up in a list it
    # builds once: a correlated subquery would scan the table once per row.
    " AND filename || char(0) || size NOT IN"
    " (SELECT filename || char(0) || size FROM attempts WHERE file_id IS NULL)"
)


def _attempt_row(a: Attempt) -> tuple:
    return (a.folder, a.path, a.filename, a.size, a.purpose, a.sha256, a.sent_at)


def _retired_row(r: Retired) -> tuple:
    return (r.file_id, r.folder, int(r.delete), r.replaced_by)


def _secure_file(path: Path) -> None:
    """Create ``path`` as an empty 0600 file, or bring an existing one to 0600."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _secure_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)


class _Latch:
    """A gate that opens once, for every thread waiting at it: a bare lock, held from the
    start. (``threading.Event`` does the same through a condition variable written in Python,
    which a batch of small uploads felt: two per commit.)"""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def open(self) -> None:
        self._lock.release()

    def wait(self) -> None:
        # Each waiter passes the gate and leaves it open for the next.
        with self._lock:
            pass


@dataclass(slots=True)
class _Batch:
    """Writes (statement, parameters) waiting for one shared commit, and how it went."""

    writes: list[tuple[str, Sequence[Any]]] = field(default_factory=list)
    durable: bool = False
    #: Released when the commit before this one has ended: the batch's first writer leads it.
    turn: _Latch = field(default_factory=_Latch)
    #: Released when this batch's commit has ended.
    done: _Latch = field(default_factory=_Latch)
    error: BaseException | None = None


# --- the database --------------------------------------------------------------------------------


class _Connection:
    """The manifest's connection, with the few things of sqlite-utils' ``Database`` that
    reading and writing rows uses; the migrations get the real one."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; a savepoint inside an open one (so an inner failure undoes only
        its own writes)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.rollback()  # nothing to undo if the error already ended it
                raise
            return
        self.conn.execute("SAVEPOINT manifest")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO SAVEPOINT manifest")
                self.conn.execute("RELEASE SAVEPOINT manifest")
            raise
        self.conn.execute("RELEASE SAVEPOINT manifest")

    def enable_wal(self) -> None:
        self.conn.execute("PRAGMA journal_mode=wal")

    def close(self) -> None:
        self.conn.close()


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the manifest, also where nothing may be written.

    ``mode=ro`` reads the write-ahead log too, but needs its shared-memory index, which SQLite
    creates beside the file: in a read-only directory (a snapshot, a read-only mount) that
    fails. Then the file is opened ``immutable``, which reads the database file alone — exact
    when no log is left (a stopped syncd checkpoints it away); otherwise the changes still in
    the log are not seen, and a warning says so.
    """
    conn = sqlite3.connect(
        f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=30
    )
    try:
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        log.warning(
            "%s: cannot open its write-ahead log here (read-only); showing the database file "
            "alone, without its latest changes",
            path,
        )
    return sqlite3.connect(
        f"{path.as_uri()}?immutable=1", uri=True, check_same_thread=False, timeout=30
    )


class ManifestDB:
    """syncd's record of local entries and the remote objects it owns.

    Open it with :meth:`open`; use it from any thread. Read methods return plain values
    (``plan.Entry``, dicts); write methods commit before they return.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self._db = _Connection(conn)
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
        self._owner: int | None = None  # the thread inside transaction(), if any
        # Group commit of the uploads' writes (see _grouped).
        # The write-ahead log, which a durable commit syncs (none for a manifest in memory).
        self._wal = None if path == Path(":memory:") else path.with_name(path.name + "-wal")
        self._group = threading.Lock()
        self._open_batch = _Batch()
        self._committing = False
        #: The integrity check ``open(check_later=True)`` left running (see ensure_sound).
        self._verdict: Future[str | None] | None = None

    @classmethod
    def open(
        cls, state_dir: Path, *, readonly: bool = False, check_later: bool = False
    ) -> ManifestDB:
        """Open (creating and migrating, unless ``readonly``) the manifest in ``state_dir``.

        Raises :class:`ManifestError` when a read-only open finds no manifest or an older
        schema, or when the file was written by a newer syncd; :class:`ManifestDamaged` when
        SQLite's integrity check finds it damaged. ``check_later``: that check runs on a
        connection of its own while the caller goes on reading, and :meth:`ensure_sound`
        waits for its verdict — which the caller must do before it writes, or decides
        anything from what it read (at 100,000 entries the check takes 0.07 s, a twentieth of
        a pass that changes nothing). A migration that is due waits for it first.
        """
        state_dir = Path(state_dir).expanduser()
        path = state_dir / FILENAME
        if readonly:
            if not path.exists():
                raise ManifestError(f"no manifest at {path} yet: run `syncd reconcile` first")
            conn = _connect_readonly(path)
        else:
            _secure_dir(state_dir)
            _secure_file(path)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            manifest = cls(conn, path, readonly=readonly)
            later = check_later and not readonly and manifest.schema_version() == SCHEMA_VERSION
            if path.stat().st_size and not later:
                _refuse_damaged(path, integrity_problem(conn))
            manifest._prepare()
            if later:
                manifest._verdict = _check_beside(path)
        except sqlite3.DatabaseError as e:
            conn.close()
            if _full(e, state_dir):
                raise StateFull(state_dir) from e
            if "malformed" in str(e):
                raise ManifestDamaged(path, str(e)) from e
            raise ManifestError(f"cannot use the manifest at {path}: {e}") from e
        except ManifestError:
            conn.close()
            raise
        return manifest

    @classmethod
    def memory(cls) -> ManifestDB:
        """An empty, current manifest in memory (a dry run before any pass has made one)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        manifest = cls(conn, Path(":memory:"), readonly=False)
        manifest.migrate()
        return manifest

    def _prepare(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"the manifest at {self.path} has schema version {version}, newer than this "
                f"syncd understands ({SCHEMA_VERSION}); upgrade syncd or point state_dir elsewhere"
            )
        if self.readonly:
            if version < SCHEMA_VERSION:
                raise ManifestError(
                    f"the manifest at {self.path} has schema version {version}; run "
                    f"`syncd reconcile` once to upgrade it to {SCHEMA_VERSION}"
                )
            return
        self._db.enable_wal()
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A pass's round tables (syncd.engine.rest) are temporary: kept in memory, a
        # 100,000-file listing is not spilled to a file and read back (a quarter of the work).
        self._db.execute("PRAGMA temp_store=MEMORY")
        self.migrate()

    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Apply the forward migrations from the file's version up to ``target``, each in its
        own transaction together with its ``user_version`` bump."""
        with self._lock:
            due = range(self.schema_version(), target)
            if not due:
                return
            import sqlite_utils  # only a migration needs it (see the top)

            db = sqlite_utils.Database(self._db.conn)
            for version in due:
                with self._db.atomic():
                    MIGRATIONS[version](db)
                    self._db.execute(f"PRAGMA user_version = {version + 1}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def backup(self) -> Path:
        """Keep a verified copy of the manifest beside it (``manifest.backup.sqlite``, 0600),
        for ``syncd repair``. The copy is made with SQLite's backup API (consistent while
        the writer works), checked, then moved over the previous one, so a good copy is
        there at every moment."""
        target = self.path.with_name(BACKUP_FILENAME)
        partial = target.with_name(BACKUP_FILENAME + ".part")
        _secure_file(partial)
        copy = sqlite3.connect(partial)
        try:
            with self._lock:
                self._db.conn.backup(copy)
            # The copy is one plain file: no -wal beside it to lose when it is moved.
            copy.execute("PRAGMA journal_mode=DELETE")
            problem = integrity_problem(copy)
        except sqlite3.Error as e:
            copy.close()
            partial.unlink(missing_ok=True)
            if _full(e, self.path.parent):
                raise StateFull(self.path.parent) from e
            raise
        copy.close()
        if problem is not None:
            partial.unlink(missing_ok=True)
            raise ManifestDamaged(self.path, problem)
        os.replace(partial, target)
        return target

    def __enter__(self) -> ManifestDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[None]:
        """Group several writes into one atomic commit (the lock is held throughout).

        ``durable``: the commit is on disk, not just in the OS's cache, when this returns
        (ignored inside an outer transaction, whose commit decides)."""
        with self._lock:
            outer_owner, self._owner = self._owner, threading.get_ident()
            outermost = not self._db.conn.in_transaction
            if durable and outermost:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                with self._db.atomic():
                    yield
            except (sqlite3.Error, OSError) as e:
                if _full(e, self.path.parent):
                    raise StateFull(self.path.parent) from e
                raise
            finally:
                if durable and outermost:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._owner = outer_owner

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection itself, this thread's alone meanwhile: for a round's temporary
        tables (:mod:`syncd.engine.rest`). What was written is committed on the way out,
        unless a :meth:`transaction` of this thread is open (its commit decides)."""
        with self._lock:
            try:
                yield self._db.conn
            except (sqlite3.Error, OSError) as e:
                if _full(e, self.path.parent):
                    raise StateFull(self.path.parent) from e
                raise
            finally:
                if self._owner is None and self._db.conn.in_transaction:
                    self._db.conn.commit()

    def ensure_sound(self) -> None:
        """Wait for the integrity check :meth:`open` left running (``check_later``), if any;
        :class:`ManifestDamaged` if it found the file damaged (then again at every call)."""
        if self._verdict is None:
            return
        try:
            problem = self._verdict.result()
        except sqlite3.DatabaseError as e:
            raise ManifestError(f"cannot use the manifest at {self.path}: {e}") from e
        _refuse_damaged(self.path, problem)
        self._verdict = None

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one long read, which then does not hold
        :meth:`connection` from the other threads (a scan reading a folder's 100,000 stats kept
        the listing from storing its first pages). It sees what is committed: a thread inside
        its own :meth:`transaction`, a manifest in memory or one opened read-only is lent
        :meth:`connection` instead."""
        if self._owner == threading.get_ident() or self.readonly or self._wal is None:
            with self.connection() as conn:
                yield conn
            return
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            yield conn
        finally:
            conn.close()

    # --- reads -----------------------------------------------------------------------------------

    @staticmethod
    def entry_of(row: Sequence[Any]) -> Entry:
        """The entry a row of ``SELECT folder, path, size, ... ctime_ns`` (the columns of
        the entries table in their order, ``updated_at`` left out) stands for."""
        return _entry(tuple(row))

    def paths(self, folder: str) -> list[str]:
        """The folder's entries' paths."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path FROM entries WHERE folder = ?", [folder]
            ).fetchall()
        return [path for (path,) in rows]

    def count(self, folder: str) -> int:
        """How many entries the folder has."""
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT count(*) FROM entries WHERE folder = ?", [folder]
                ).fetchone()[0]
            )

    def retired_files(self) -> dict[str, Retired]:
        """Every retired id, with its record."""
        with self._lock:
            return {r.file_id: r for r in self._retired(None)}

    def attachments_of(self, file_ids: Collection[str]) -> frozenset[tuple[str, str]]:
        """The (file id, target) attachments syncd recorded for ``file_ids``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT file_id, assistant_id FROM attachments"
                " WHERE file_id IN (SELECT value FROM json_each(?))",
                [json.dumps(sorted(file_ids))],
            ).fetchall()
        return frozenset((file_id, target) for file_id, target in rows)

    def snapshot(self, folders: Collection[str] | None = None) -> Manifest:
        """The planner's view of the given folders (all folders when ``None``)."""
        with self._lock:
            manifest = Manifest(
                entries={(e.folder, e.path): e for e in self._entries(folders)},
                retired={r.file_id: r for r in self._retired(folders)},
                attempts=tuple(self.attempts()),
            )
            owned = manifest.owned_ids()
            attachments = frozenset(
                (file_id, assistant)
                for file_id, assistant in self._db.execute(
                    "SELECT file_id, assistant_id FROM attachments"
                )
                if file_id in owned
            )
        return replace(manifest, attachments=attachments)

    def entries(self, folder: str) -> dict[str, Entry]:
        """The folder's entries by relative path (what a scan may reuse hashes from)."""
        with self._lock:
            return {e.path: e for e in self._entries([folder])}

    def entry(self, folder: str, path: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                _SELECT_ENTRIES + " WHERE folder = ? AND path = ?",
                [folder, path],
            ).fetchone()
        return _entry(row) if row else None

    def entries_at(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        """The rows of ``keys`` (folder, path) that exist, by key: one query for many
        (a batch of uploads), where :meth:`entry` is one each."""
        with self._lock:
            rows = self._db.execute(
                _SELECT_ENTRIES + _AT_KEYS,
                [json.dumps(list(keys))],
            ).fetchall()
        return {(row[0], row[1]): _entry(row) for row in rows}

    def _entries(self, folders: Collection[str] | None) -> Iterator[Entry]:
        if folders is None:
            rows = self._db.execute(_SELECT_ENTRIES).fetchall()
        else:
            rows = self._db.execute(
                _SELECT_ENTRIES + _IN_FOLDERS, [json.dumps(list(folders))]
            ).fetchall()
        return map(_entry, rows)

    def _retired(self, folders: Collection[str] | None) -> Iterator[Retired]:
        sql = "SELECT file_id, folder, [delete], replaced_by FROM retired"
        if folders is None:
            rows = self._db.execute(sql).fetchall()
        else:
            rows = self._db.execute(sql + _IN_FOLDERS, [json.dumps(list(folders))]).fetchall()
        for file_id, folder, delete, replaced_by in rows:
            yield Retired(file_id, folder, bool(delete), replaced_by)

    def attempts(self) -> list[Attempt]:
        """Every unanswered upload attempt, oldest first (all folders: each one holds back
        uploads that could be mistaken for it, wherever they are)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT folder, path, filename, size, purpose, sha256, sent_at, file_id"
                " FROM attempts"
                " ORDER BY sent_at, folder, path"
            ).fetchall()
        return [Attempt(*row) for row in rows]

    def retired(self, file_id: str) -> Retired | None:
        """The retired record of ``file_id``, if it is retired."""
        with self._lock:
            row = self._db.execute(
                "SELECT file_id, folder, [delete], replaced_by FROM retired WHERE file_id = ?",
                [file_id],
            ).fetchone()
        return Retired(row[0], row[1], bool(row[2]), row[3]) if row else None

    def replaced_by(self, file_id: str) -> list[str]:
        """The retired ids waiting for ``file_id``, their replacement, to be attached."""
        with self._lock:
            rows = self._db.execute(
                "SELECT file_id FROM retired WHERE replaced_by = ?", [file_id]
            ).fetchall()
        return [old for (old,) in rows]

    def owns(self, file_id: str) -> bool:
        """Whether ``file_id`` is syncd's: an entry's file or a retired one (invariant 1)."""
        with self._lock:
            return bool(
                self._db.execute(
                    "SELECT EXISTS (SELECT 1 FROM entries WHERE file_id = ?)"
                    " OR EXISTS (SELECT 1 FROM retired WHERE file_id = ?)",
                    [file_id, file_id],
                ).fetchone()[0]
            )

    def assistants_of(self, file_id: str) -> set[str]:
        """The targets (assistants and stores) syncd recorded attaching ``file_id`` to."""
        with self._lock:
            rows = self._db.execute(
                "SELECT assistant_id FROM attachments WHERE file_id = ?", [file_id]
            ).fetchall()
        return {assistant for (assistant,) in rows}

    def next_retry_at(self, max_attempts: int) -> float | None:
        """When the earliest failed entry that has attempts left may be tried again, or an
        unanswered upload's grace period is over."""
        with self._lock:
            return self._db.execute(
                "SELECT min(next_attempt_at) FROM entries WHERE (state = ? AND attempts < ?)"
                " OR state = ?",
                [State.FAILED.value, max_attempts, State.UPLOADING.value],
            ).fetchone()[0]

    def folder_dev(self, folder: str) -> int | None:
        """The device the folder's root was on when last scanned (``None``: never scanned)."""
        with self._lock:
            row = self._db.execute(
                "SELECT root_dev FROM folders WHERE name = ?", [folder]
            ).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, dict[str, int]]:
        """folder -> state -> number of entries."""
        result: dict[str, dict[str, int]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT folder, state, count(*) FROM entries GROUP BY folder, state"
            ).fetchall()
        for folder, state, n in rows:
            result.setdefault(folder, {})[state] = n
        return result

    def problems(self) -> list[Entry]:
        """Entries that failed or were rejected, with their last error, by folder and path."""
        with self._lock:
            rows = self._db.execute(
                _SELECT_ENTRIES + " WHERE state IN (?, ?) ORDER BY folder, path",
                [State.FAILED.value, State.REJECTED.value],
            ).fetchall()
        return [_entry(row) for row in rows]

    def unanswered(self) -> list[Entry]:
        """Entries whose upload's outcome is not known yet (state ``uploading``)."""
        with self._lock:
            rows = self._db.execute(
                _SELECT_ENTRIES + " WHERE state = ? ORDER BY folder, path",
                [State.UPLOADING.value],
            ).fetchall()
        return [_entry(row) for row in rows]

    def retired_count(self) -> int:
        """Remote files syncd still has to detach or delete."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM retired").fetchone()[0]

    def last_pass(self) -> dict[str, PassInfo]:
        """Each folder's most recent pass."""
        with self._lock:
            rows = self._db.execute(
                "SELECT folder, started_at, finished_at, counts, error FROM passes"
                " WHERE id IN (SELECT max(id) FROM passes GROUP BY folder)"
            ).fetchall()
        infos = {}
        for folder, started, finished, counts_json, error in rows:
            counts = json.loads(counts_json)
            # Kept in the counts' JSON (no new column): the unreadable paths and why.
            unreadable = counts.pop(_UNREADABLE_KEY, {})
            infos[folder] = PassInfo(folder, started, finished, counts, error, unreadable)
        return infos

    # --- writes ----------------------------------------------------------------------------------

    def put_entry(self, entry: Entry, *, durable: bool = False) -> None:
        """Insert or replace the row for ``(entry.folder, entry.path)``."""
        self.put_entries([entry], durable=durable)

    def put_intent(self, entry: Entry, attempt: Attempt) -> None:
        """Record an upload's intent and its attempt durably, before the request leaves
        (invariant 2)."""
        self.put_intents([(entry, attempt)])

    def put_intents(self, intents: Collection[tuple[Entry, Attempt]]) -> None:
        """Record the intents (each a row and its attempt) of several uploads in one durable
        commit, before any of their requests leaves (invariant 2)."""
        now = time.time()
        writes: list[tuple[str, Sequence[Any]]] = [
            (_PUT_ENTRY, _row(entry, now)) for entry, _ in intents
        ]
        writes += [(_PUT_ATTEMPT, _attempt_row(attempt)) for _, attempt in intents]
        self._grouped(writes, durable=True)

    def record_answers(self, answers: Collection[Answer]) -> None:
        """Record uploads' answers in one commit: each :class:`Answer`'s attempt was answered
        with its file id (:meth:`answer_attempt`), its row is its ``entry``, and the version it
        replaced, if any, is its ``retired``. Committed together with the answers and intents
        of other threads that arrive meanwhile (see :meth:`_grouped`), so that concurrent
        uploads share commits; it is committed when this returns."""
        now = time.time()
        writes: list[tuple[str, Sequence[Any]]] = [
            (_ANSWER_ATTEMPT, (a.file_id, a.entry.folder, a.entry.path, a.sent_at)) for a in answers
        ]
        writes += [(_PUT_ENTRY, _row(a.entry, now)) for a in answers]
        writes += [(_PUT_RETIRED, _retired_row(a.retired)) for a in answers if a.retired]
        self._grouped(writes, durable=False)

    def put_entries(self, entries: Collection[Entry], *, durable: bool = False) -> None:
        """Insert or replace many rows in one transaction (a bulk restat, a test's setup).

        ``durable`` outside a transaction: the rows are on disk when this returns, committed
        together with those of any other threads' durable writes waiting at the same time."""
        if not entries:
            return
        now = time.time()
        rows = [_row(e, now) for e in entries]
        if durable and self._owner != threading.get_ident():
            self._put_durably(rows)
            return
        if len(rows) == 1 and not durable:
            self._write(_PUT_ENTRY, rows[0])
            return
        with self.transaction(durable=durable):
            self._db.conn.executemany(_PUT_ENTRY, rows)

    def _write(self, sql: str, parameters: Sequence[Any]) -> None:
        """Run one statement in a commit of its own — or, inside a :meth:`transaction` of this
        thread, as part of it. There it needs no savepoint: SQLite undoes a failed statement's
        own changes by itself, which is all a savepoint would add (and it costs two more
        statements, a tenth of recording an upload's answer)."""
        with self._lock:
            if self._owner == threading.get_ident():
                self._db.execute(sql, parameters)
                return
            with self.transaction():
                self._db.execute(sql, parameters)

    def _put_durably(self, rows: list[tuple]) -> None:
        """Write ``rows`` durably, in a commit shared with other threads (:meth:`_grouped`)."""
        self._grouped([(_PUT_ENTRY, row) for row in rows], durable=True)

    def _grouped(self, writes: list[tuple[str, Sequence[Any]]], *, durable: bool) -> None:
        """Commit ``writes`` (in one transaction) together with those of every thread that
        arrives while the commit before is being made (group commit): a commit costs far more
        than a row, and each sync to disk milliseconds. ``durable``: the commit is synced to
        disk before this returns (and with it those it shares).

        Each caller returns once its own writes are committed. The first writer of a batch
        leads its commit — at once if no commit is running, else when the one before ends; the
        others wait for it. The leader commits outside the group's lock and syncs without
        holding the manifest's, so that other threads join the next batch, and read and write,
        meanwhile. Inside this thread's :meth:`transaction` the writes are simply part of it."""
        if self._owner == threading.get_ident():
            for sql, parameters in writes:
                self._db.execute(sql, parameters)
            return
        with self._group:
            batch = self._open_batch
            leads = not batch.writes
            batch.writes.extend(writes)
            batch.durable = batch.durable or durable
            waits_turn = leads and self._committing
            if leads and not waits_turn:
                self._committing = True
                self._open_batch = _Batch()
        if waits_turn:
            batch.turn.wait()
            with self._group:
                self._open_batch = _Batch()  # this batch is closed: later writes go to the next
        if leads:
            self._lead(batch)
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _lead(self, batch: _Batch) -> None:
        """Commit ``batch`` (and sync it if it must be durable), then hand the turn to the
        batch that filled meanwhile, if any."""
        try:
            with self.transaction():
                # A run of one statement goes in one call: a batch of uploads writes its
                # rows, then its attempts, each dozens at a time.
                for sql, run in itertools.groupby(batch.writes, key=operator.itemgetter(0)):
                    self._db.conn.executemany(sql, [parameters for _, parameters in run])
            if batch.durable:
                self._sync_log()
        except BaseException as e:
            batch.error = e
        finally:
            with self._group:
                following = self._open_batch
                if following.writes:
                    following.turn.open()  # still committing: its leader takes over
                else:
                    self._committing = False
            batch.done.open()

    def _sync_log(self) -> None:
        """Put every commit made so far on disk, not just in the OS's cache.

        What ``synchronous=FULL`` does at each commit in WAL mode, done here after the commit
        and outside the lock: sync the write-ahead log, which holds the commits' pages. A
        checkpoint may have moved them into the database file meanwhile, and the log may even
        have been started over; but a checkpoint syncs the log before it copies and the
        database file after (``synchronous=NORMAL``), and the log is started over only once
        all of it is in the database, so the pages are on disk either way once this returns.
        Without a log (another journal mode) the database file itself is synced; a manifest in
        memory has no disk to reach."""
        if self._wal is None:
            return
        try:
            fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        except OSError as e:
            if _full(e, self.path.parent):
                raise StateFull(self.path.parent) from e
            raise
        finally:
            os.close(fd)

    def answer_attempt(self, folder: str, path: str, sent_at: float, file_id: str) -> None:
        """An attempt was answered with ``file_id``."""
        self._write(_ANSWER_ATTEMPT, [file_id, folder, path, sent_at])

    def close_attempt(self, folder: str, path: str, sent_at: float) -> None:
        """An attempt was answered, or its file found: it is no longer outstanding."""
        self._write(
            "DELETE FROM attempts WHERE folder = ? AND path = ? AND sent_at = ?",
            [folder, path, sent_at],
        )

    def prune_attempts(self, before: float, configured: Collection[str]) -> None:
        """Forget the attempts sent before ``before`` (the planner's horizon ago) that no plan
        will read again: an unanswered one of a folder no longer ``configured`` (a configured
        folder's are let go by the plan whose listing proves no copy of theirs can turn up:
        :meth:`close_attempts`), and an answered one once no unanswered attempt has its
        filename and size — its file id is what keeps such an attempt from taking that file
        for its own late copy once syncd has let go of it (``on_delete`` keep or detach)."""
        with self.transaction():
            self._db.execute(_PRUNE_UNANSWERED, [before, json.dumps(sorted(configured))])
            self._db.execute(_PRUNE_ANSWERED, [before])

    def close_attempts(self, attempts: Collection[tuple[str, str, float]]) -> None:
        """Close the attempts named by (folder, path, sent_at) in one commit: a plan found
        that no copy of theirs can turn up any more (``Plan.expired``)."""
        if not attempts:
            return
        with self.transaction():
            self._db.conn.executemany(
                "DELETE FROM attempts WHERE folder = ? AND path = ? AND sent_at = ?",
                sorted(attempts),
            )

    def defer_unanswered(self, until: float, folders: Collection[str]) -> int:
        """Give the uploads a previous process left unanswered a grace period before they
        are sent again (their outcome was never learnt). Returns how many."""
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE entries SET next_attempt_at = ? WHERE state = ?"
                " AND next_attempt_at IS NULL AND folder IN (SELECT value FROM json_each(?))",
                [until, State.UPLOADING.value, json.dumps(list(folders))],
            )
            return cursor.rowcount

    def delete_entry(self, folder: str, path: str) -> None:
        self._write("DELETE FROM entries WHERE folder = ? AND path = ?", [folder, path])

    def add_attachment(self, file_id: str, target: str, *, status: str | None = None) -> None:
        """Remember that syncd attached ``file_id`` to ``target`` (so it may detach it); for a
        store, with its ingestion ``status``."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO attachments (file_id, assistant_id, status, checked_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET status = excluded.status,"
                " last_error = NULL, checked_at = excluded.checked_at",
                [file_id, target, status, time.time()],
            )

    def set_ingestion(
        self, file_id: str, store: str, status: str, last_error: str | None = None
    ) -> None:
        """Record how the ingestion of syncd's attachment of ``file_id`` to ``store`` stands
        (an attachment syncd did not make is ignored). A pass's listing refreshes them all
        at once (:meth:`syncd.engine.rest.RoundTables.record_ingestions`)."""
        with self.transaction():
            self._db.execute(
                "UPDATE attachments SET status = ?, last_error = ?, checked_at = ?"
                " WHERE file_id = ? AND assistant_id = ?"
                " AND (status IS NOT ? OR last_error IS NOT ?)",
                [status, last_error, time.time(), file_id, store, status, last_error],
            )

    def ingestion(self) -> list[tuple[str, str, str, str, str | None, float | None]]:
        """(folder, store, path, status, last error, since) of every store attachment of an
        entry's file, by folder, store and path; ``since``: when the status was learnt."""
        with self._lock:
            return self._db.execute(
                "SELECT e.folder, a.assistant_id, e.path, coalesce(a.status, 'in_progress'),"
                " a.last_error, a.checked_at"
                " FROM attachments a JOIN entries e ON e.file_id = a.file_id"
                " WHERE a.assistant_id LIKE 'vs\\_%' ESCAPE '\\'"
                " ORDER BY e.folder, a.assistant_id, e.path"
            ).fetchall()

    def remove_attachment(self, file_id: str, assistant_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM attachments WHERE file_id = ? AND assistant_id = ?",
                [file_id, assistant_id],
            )

    def put_retired(self, retired: Retired) -> None:
        """Record a remote file syncd owns that no longer stands for a local entry."""
        self._write(_PUT_RETIRED, _retired_row(retired))

    def forget_file(self, file_id: str) -> None:
        """Drop a retired id and every attachment recorded for it: the file is gone (or no
        longer syncd's to manage)."""
        with self.transaction():
            self._db.execute("DELETE FROM retired WHERE file_id = ?", [file_id])
            self._db.execute("DELETE FROM attachments WHERE file_id = ?", [file_id])

    def set_folder_dev(self, folder: str, dev: int) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO folders (name, root_dev) VALUES (?, ?)", [folder, dev]
            )

    def record_pass(
        self,
        folder: str,
        *,
        started_at: float,
        finished_at: float,
        counts: Mapping[str, int],
        error: str | None = None,
        unreadable: Mapping[str, str] | None = None,
    ) -> None:
        """Append a pass to the folder's history, keeping the last :data:`PASS_HISTORY`.
        ``unreadable``: path -> why, for the files the pass could not read."""
        recorded: dict[str, object] = dict(counts)
        if unreadable:
            recorded[_UNREADABLE_KEY] = dict(unreadable)
        with self.transaction():
            self._db.execute(
                "INSERT INTO passes (folder, started_at, finished_at, counts, error)"
                " VALUES (?, ?, ?, ?, ?)",
                [folder, started_at, finished_at, json.dumps(recorded), error],
            )
            self._db.execute(
                "DELETE FROM passes WHERE folder = ? AND id NOT IN"
                " (SELECT id FROM passes WHERE folder = ? ORDER BY id DESC LIMIT ?)",
                [folder, folder, PASS_HISTORY],
            )
