"""The emulator's state: files, assistants, threads, messages and their attachments; the tables
of vector stores and Uploads (their logic lives in ``vector_stores.py`` and ``multipart.py``).

Metadata lives in SQLite — a file in the data directory, or ``:memory:`` when the emulator keeps
no state across restarts. File contents always live on disk, one blob per upload (in the data
directory, or in a private temporary directory), so that a 512 MB upload never sits in memory.

Every method takes one lock, so requests served concurrently see each other's changes whole:
a limit such as 20 files per assistant is checked and enforced in the same critical section.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.emulator import errors, ids
from syncd.emulator.pagination import PageRequest, unknown_cursor

#: Limits of the Assistants v1 service.
MAX_FILES_PER_ASSISTANT = 20
MAX_FILES_PER_MESSAGE = 10
#: Batch files expire after 30 days unless the upload says otherwise.
BATCH_FILE_LIFETIME_S = 30 * 24 * 3600

#: ``PRAGMA user_version`` of the current schema. 0 is a data directory from before vector
#: stores, whose files table lacks ``expires_at``; 1 one whose files lack ``head`` (see
#: ``_migrate``).
SCHEMA_VERSION = 2

_SCHEMA = """
-- head: the file object's JSON up to its status, which changes with time (_FILE_HEAD).
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    processed_at REAL NOT NULL,
    expires_at INTEGER,
    head TEXT NOT NULL DEFAULT ''
);
-- The order of GET /files, so that a page is read without sorting every file.
CREATE INDEX IF NOT EXISTS files_by_age ON files (created_at, seq);
CREATE TABLE IF NOT EXISTS assistants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    name TEXT,
    description TEXT,
    model TEXT NOT NULL,
    instructions TEXT,
    tools TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS threads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL
);
-- owner_id is an assistant id or a message id; the prefixes keep them apart.
CREATE TABLE IF NOT EXISTS attachments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, file_id)
);
CREATE INDEX IF NOT EXISTS attachments_by_file ON attachments (file_id);
CREATE TABLE IF NOT EXISTS vector_stores (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    expires_days INTEGER,
    last_active_at INTEGER NOT NULL
);
-- One row per file attached to a store. Its status is derived when read (see vector_stores.py):
-- cancelled if cancelled, else in_progress until ready_at (for good when outcome is 'stuck'),
-- then the outcome ('completed' or 'failed').
CREATE TABLE IF NOT EXISTS vector_store_files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    vector_store_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    ready_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL,
    chunking TEXT NOT NULL,
    UNIQUE (vector_store_id, file_id)
);
CREATE INDEX IF NOT EXISTS vector_store_files_by_file ON vector_store_files (file_id);
-- The order of a store's file list, so that a page is read without sorting the store's files.
CREATE INDEX IF NOT EXISTS vector_store_files_by_age
    ON vector_store_files (vector_store_id, created_at, seq);
CREATE TABLE IF NOT EXISTS file_batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    vector_store_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS file_batch_members (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    UNIQUE (batch_id, file_id)
);
CREATE TABLE IF NOT EXISTS uploads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    expires_at REAL NOT NULL,
    file_expires_after INTEGER,
    status TEXT NOT NULL,
    file_id TEXT
);
CREATE TABLE IF NOT EXISTS upload_parts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    upload_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
"""

#: Every table, children before parents, for ``reset``.
_TABLES = (
    "upload_parts",
    "uploads",
    "file_batch_members",
    "file_batches",
    "vector_store_files",
    "vector_stores",
    "attachments",
    "messages",
    "threads",
    "assistants",
    "files",
)


@dataclass(frozen=True, slots=True)
class FileRecord:
    """An uploaded file."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    processed_at: float  # Unix time at which a fine-tune file's status becomes "processed"
    expires_at: int | None = None

    def to_api(self, now: float) -> dict[str, Any]:
        """The service's ``file`` object as of Unix time ``now`` (with today's ``expires_at`` and
        the deprecated, still-sent ``status_details``)."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed" if now >= self.processed_at else "uploaded",
            "status_details": None,
        }


#: What a row of ``files`` keeps of its ``file`` object: the JSON of every field before the
#: status, which changes with time and is added when the object is read (``_FILE_JSON``). Made
#: once, when the row is: rendering whole objects for each page of 10,000 files took a third
#: more. ``{of}`` is where each field's value comes from: ``:`` for the parameters of an
#: INSERT, nothing for the columns of a row.
_FILE_HEAD = (
    "rtrim(json_object('id', {of}id, 'object', 'file', 'bytes', {of}bytes,"
    " 'created_at', {of}created_at, 'expires_at', {of}expires_at, 'filename', {of}filename,"
    " 'purpose', {of}purpose), '}}') || ',\"status\":\"'"
)
#: A new row of ``files``, in named parameters, its ``head`` made from them.
_INSERT_FILE = (
    "INSERT INTO files (id, bytes, created_at, filename, purpose, processed_at, expires_at, head)"  # noqa: S608 - fixed
    " VALUES (:id, :bytes, :created_at, :filename, :purpose, :processed_at, :expires_at,"
    f" {_FILE_HEAD.format(of=':')})"
)
#: The ``file`` object of a row of ``files`` as of Unix time ``:now``, for pages of files: the
#: object ``FileRecord.to_api`` makes (tests/emulator/test_files_pages.py holds the two to each
#: other), the status compared the same way.
_FILE_JSON = (
    "head || CASE WHEN :now >= processed_at THEN 'processed' ELSE 'uploaded' END"
    ' || \'","status_details":null}\''
)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page of a list: its items as JSON, in page order, and whether more lie beyond it."""

    items: list[str]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def of(cls, rows: list[sqlite3.Row], has_more: bool) -> RenderedPage:
        """The page of ``page_rows`` whose columns are each item's id, then its JSON."""
        return cls(
            items=[row[1] for row in rows],
            first_id=rows[0][0] if rows else None,
            last_id=rows[-1][0] if rows else None,
            has_more=has_more,
        )


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to an assistant or to a message."""

    owner_id: str
    file_id: str
    created_at: int

    def to_assistant_file(self) -> dict[str, Any]:
        """The service's ``assistant.file`` object."""
        return {
            "id": self.file_id,
            "object": "assistant.file",
            "created_at": self.created_at,
            "assistant_id": self.owner_id,
        }

    def to_message_file(self) -> dict[str, Any]:
        """The service's ``thread.message.file`` object."""
        return {
            "id": self.file_id,
            "object": "thread.message.file",
            "created_at": self.created_at,
            "message_id": self.owner_id,
        }


@dataclass(frozen=True, slots=True)
class AssistantRecord:
    """An assistant, with the ids of its attached files (oldest attachment first)."""

    id: str
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[Any]
    metadata: dict[str, Any]
    file_ids: list[str]

    def to_api(self) -> dict[str, Any]:
        """The service's ``assistant`` object (Assistants v1)."""
        return {
            "id": self.id,
            "object": "assistant",
            "created_at": self.created_at,
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "instructions": self.instructions,
            "tools": self.tools,
            "file_ids": self.file_ids,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A thread."""

    id: str
    created_at: int
    metadata: dict[str, Any]

    def to_api(self) -> dict[str, Any]:
        """The service's ``thread`` object."""
        return {
            "id": self.id,
            "object": "thread",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message of a thread, with the ids of its files."""

    id: str
    thread_id: str
    created_at: int
    role: str
    content: str
    metadata: dict[str, Any]
    file_ids: list[str]

    def to_api(self) -> dict[str, Any]:
        """The service's ``thread.message`` object (Assistants v1)."""
        return {
            "id": self.id,
            "object": "thread.message",
            "created_at": self.created_at,
            "thread_id": self.thread_id,
            "role": self.role,
            "content": [{"type": "text", "text": {"value": self.content, "annotations": []}}],
            "file_ids": self.file_ids,
            "assistant_id": None,
            "run_id": None,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What a client asks for when it creates a message (already type-checked)."""

    role: str
    content: str
    file_ids: list[str]
    metadata: dict[str, Any]


def _write_new(path: str, content: bytes) -> None:
    """Create the file ``path`` holding ``content``: with the system calls alone, as a small
    upload's blob is written (a Python file object cost more than the writing)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class Store:
    """All the emulator's state, on disk under ``data_dir`` or in memory when it is None."""

    def __init__(self, data_dir: Path | None = None) -> None:
        #: The source of ``created_at`` times and of file statuses; tests may replace it.
        self.clock: Callable[[], float] = time.time
        self._lock = threading.Lock()
        self._temporary_dir: Path | None = None
        if data_dir is None:
            self._temporary_dir = Path(tempfile.mkdtemp(prefix="syncd-emulator-"))
            self._blobs = self._temporary_dir / "blobs"
            database = ":memory:"
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._blobs = data_dir / "blobs"
            database = str(data_dir / "emulator.db")
        self._blob_prefix = f"{self._blobs}{os.sep}"
        self._incoming = self._blobs / ".incoming"
        self._incoming.mkdir(parents=True, exist_ok=True)
        # Uploads cut off by a crash or a restart leave partial blobs that belong to no file.
        for leftover in self._incoming.iterdir():
            leftover.unlink()
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if data_dir is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode, NORMAL loses no commit when the process dies, only on a power cut;
            # the blobs are not synced either, and FULL made every upload wait for the disk.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        """Create the tables, bringing a data directory of an older emulator up to date."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the emulator's database has schema version {version}, newer than this "
                f"emulator's ({SCHEMA_VERSION}); use a newer syncd or another --data-dir"
            )
        has_files = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'files'"
        ).fetchone()
        if has_files and version < SCHEMA_VERSION:
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(files)")}
            if "expires_at" not in columns:
                self._db.execute("ALTER TABLE files ADD COLUMN expires_at INTEGER")
            if "head" not in columns:
                self._db.execute("ALTER TABLE files ADD COLUMN head TEXT NOT NULL DEFAULT ''")
            self._db.execute(f"UPDATE files SET head = {_FILE_HEAD.format(of='')}")  # noqa: S608
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def blobs_dir(self) -> Path:
        """The directory of the blobs (Upload parts keep theirs in a subdirectory)."""
        return self._blobs

    def close(self) -> None:
        """Close the database; an in-memory store also removes its blobs."""
        with self._lock:
            self._db.close()
            if self._temporary_dir is not None:
                shutil.rmtree(self._temporary_dir, ignore_errors=True)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The database, under the lock, for a consistent read of several rows."""
        with self._lock:
            yield self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The database, under the lock, in one transaction (rolled back on an exception)."""
        with self._transaction() as db:
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        """Forget every file, assistant, thread, message, vector store and upload."""
        with self._transaction() as db:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            for blob in self._blobs.iterdir():
                if blob.is_file():
                    blob.unlink()
            parts = self._blobs / "parts"
            if parts.is_dir():
                for blob in parts.iterdir():
                    blob.unlink()

    # --- files ------------------------------------------------------------------------------

    def incoming_path(self) -> Path:
        """A fresh path for an upload in progress, on the same file system as the blobs."""
        return self._incoming / ids.request_id()

    def blob_path(self, file_id: str) -> Path:
        """Where the content of ``file_id`` is kept."""
        return Path(self._blob_name(file_id))

    def _blob_name(self, file_id: str) -> str:
        """``blob_path`` as a string: what a small upload's blob is written to (a ``Path`` made
        per upload was a cost of its own)."""
        return self._blob_prefix + file_id

    def add_file(
        self,
        *,
        filename: str,
        purpose: str,
        size: int,
        incoming: Path | bytes,
        processing_delay: float,
        expires_after: int | None = None,
    ) -> FileRecord:
        """Record an upload whose content was written to the file ``incoming``, which becomes
        its blob, or whose content ``incoming`` is (a small upload read whole), written to it.

        Fine-tune files become ``processed`` ``processing_delay`` seconds from now; the others
        are processed at once. The file expires ``expires_after`` seconds after its creation
        (batch files: 30 days unless told otherwise; the others never).
        """
        # Under the lock, not in a transaction: the INSERT is the only write, atomic alone, and
        # BEGIN and COMMIT around it were two more statements per upload.
        with self._lock:
            return self.add_file_in_transaction(
                filename=filename,
                purpose=purpose,
                size=size,
                incoming=incoming,
                processing_delay=processing_delay,
                expires_after=expires_after,
            )

    def add_file_in_transaction(
        self,
        *,
        filename: str,
        purpose: str,
        size: int,
        incoming: Path | bytes,
        processing_delay: float,
        expires_after: int | None,
    ) -> FileRecord:
        """``add_file`` for a caller inside ``transaction()`` (an Upload completing)."""
        now = self.clock()
        if expires_after is None and purpose == "batch":
            expires_after = BATCH_FILE_LIFETIME_S
        record = FileRecord(
            id=ids.file_id(),
            bytes=size,
            created_at=int(now),
            filename=filename,
            purpose=purpose,
            processed_at=now + processing_delay if purpose == "fine-tune" else now,
            expires_at=None if expires_after is None else int(now) + expires_after,
        )
        if isinstance(incoming, bytes):
            _write_new(self._blob_name(record.id), incoming)
        else:
            os.replace(incoming, self._blob_name(record.id))
        self._db.execute(
            _INSERT_FILE,
            {
                "id": record.id,
                "bytes": record.bytes,
                "created_at": record.created_at,
                "filename": record.filename,
                "purpose": record.purpose,
                "processed_at": record.processed_at,
                "expires_at": record.expires_at,
            },
        )
        return record

    def get_file(self, file_id: str) -> FileRecord:
        """The file ``file_id``, or a 404."""
        with self._lock:
            return self.find_file(file_id, param="id")

    def find_file(self, file_id: str, *, param: str) -> FileRecord:
        """The live file ``file_id``, or a 404 naming ``param`` (the caller holds the lock).

        An expired file is gone, as on the service; its row is dropped when next seen.
        """
        row = self._db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None or _expired(row, self.clock()):
            raise errors.file_not_found(file_id, param=param)
        return _file_record(row)

    def files_page(self, purpose: str | None, request: PageRequest) -> RenderedPage:
        """One page of the live files (of one ``purpose``, when given), rendered as of now: what
        ``paginate`` cuts from the list of them all, oldest first.

        Rendered by SQLite (``_FILE_JSON``): made into Python objects and encoded again, a page
        of 10,000 files cost four times as much.
        """
        live = ["(expires_at IS NULL OR expires_at > :now)"]  # not _expired()
        args: dict[str, Any] = {"now": self.clock(), "purpose": purpose}
        if purpose is not None:
            live.append("purpose = :purpose")
        with self._lock:
            rows, has_more = page_rows(
                self._db, "files", f"id, {_FILE_JSON}", "id", live, args, request
            )
        return RenderedPage.of(rows, has_more)

    def delete_file(self, file_id: str) -> None:
        """Delete a file and detach it from every assistant, message and vector store (the
        service "deletes a file and removes it from all vector stores"), or raise a 404."""
        with self._transaction() as db:
            self.find_file(file_id, param="id")
            db.execute("DELETE FROM attachments WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM vector_store_files WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM file_batch_members WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            # A download already streaming keeps its open descriptor; unlinking is safe.
            self.blob_path(file_id).unlink(missing_ok=True)

    # --- assistants -------------------------------------------------------------------------

    def create_assistant(
        self,
        *,
        model: str,
        name: str | None,
        description: str | None,
        instructions: str | None,
        tools: list[Any],
        metadata: dict[str, Any],
        file_ids: list[str],
    ) -> AssistantRecord:
        """Create an assistant with ``file_ids`` attached (each must be an assistants file)."""
        if len(file_ids) > MAX_FILES_PER_ASSISTANT:
            raise errors.array_too_long("file_ids", MAX_FILES_PER_ASSISTANT, len(file_ids))
        assistant_id = ids.assistant_id()
        now = int(self.clock())
        with self._transaction() as db:
            self._check_attachable(file_ids)
            db.execute(
                "INSERT INTO assistants"
                " (id, created_at, name, description, model, instructions, tools, metadata)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    assistant_id,
                    now,
                    name,
                    description,
                    model,
                    instructions,
                    json.dumps(tools),
                    json.dumps(metadata),
                ),
            )
            self._insert_attachments(assistant_id, dict.fromkeys(file_ids), now)
            return self._get_assistant(assistant_id)

    def get_assistant(self, assistant_id: str) -> AssistantRecord:
        """The assistant ``assistant_id``, or a 404."""
        with self._lock:
            return self._get_assistant(assistant_id)

    def _get_assistant(self, assistant_id: str) -> AssistantRecord:
        row = self._db.execute("SELECT * FROM assistants WHERE id = ?", (assistant_id,)).fetchone()
        if row is None:
            raise errors.assistant_not_found(assistant_id)
        return AssistantRecord(
            id=row["id"],
            created_at=row["created_at"],
            name=row["name"],
            description=row["description"],
            model=row["model"],
            instructions=row["instructions"],
            tools=json.loads(row["tools"]),
            metadata=json.loads(row["metadata"]),
            file_ids=[a.file_id for a in self._attachments(assistant_id)],
        )

    def list_assistants(self) -> list[AssistantRecord]:
        """Every assistant, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM assistants ORDER BY created_at, seq").fetchall()
            return [self._get_assistant(row["id"]) for row in rows]

    def delete_assistant(self, assistant_id: str) -> None:
        """Delete an assistant and its attachments (not the files), or raise a 404."""
        with self._transaction() as db:
            self._get_assistant(assistant_id)
            db.execute("DELETE FROM attachments WHERE owner_id = ?", (assistant_id,))
            db.execute("DELETE FROM assistants WHERE id = ?", (assistant_id,))

    def attach_to_assistant(self, assistant_id: str, file_id: str) -> Attachment:
        """Attach an assistants file to an assistant.

        Attaching a file that is already attached answers the existing attachment, unchanged.
        """
        with self._transaction() as db:
            self._get_assistant(assistant_id)
            self._check_attachable([file_id])
            existing = self._attachment(assistant_id, file_id)
            if existing is not None:
                return existing
            count = db.execute(
                "SELECT count(*) FROM attachments WHERE owner_id = ?", (assistant_id,)
            ).fetchone()[0]
            if count >= MAX_FILES_PER_ASSISTANT:
                raise errors.ApiError(
                    400,
                    f"Assistant {assistant_id} already has the maximum of "
                    f"{MAX_FILES_PER_ASSISTANT} files attached.",
                    param="file_id",
                )
            self._insert_attachments(assistant_id, {file_id: None}, int(self.clock()))
            attachment = self._attachment(assistant_id, file_id)
            assert attachment is not None  # inserted just above, under the lock
            return attachment

    def assistant_files(self, assistant_id: str) -> list[Attachment]:
        """The files attached to an assistant, oldest attachment first; 404 for no assistant."""
        with self._lock:
            self._get_assistant(assistant_id)
            return self._attachments(assistant_id)

    def get_assistant_file(self, assistant_id: str, file_id: str) -> Attachment:
        """One attachment of an assistant, or a 404."""
        with self._lock:
            self._get_assistant(assistant_id)
            attachment = self._attachment(assistant_id, file_id)
        if attachment is None:
            raise errors.assistant_file_not_found(assistant_id, file_id)
        return attachment

    def detach_from_assistant(self, assistant_id: str, file_id: str) -> None:
        """Detach a file from an assistant (the file stays), or raise a 404."""
        with self._transaction() as db:
            self._get_assistant(assistant_id)
            deleted = db.execute(
                "DELETE FROM attachments WHERE owner_id = ? AND file_id = ?",
                (assistant_id, file_id),
            ).rowcount
        if not deleted:
            raise errors.assistant_file_not_found(assistant_id, file_id)

    # --- threads and messages ---------------------------------------------------------------

    def create_thread(self, metadata: dict[str, Any], messages: list[NewMessage]) -> ThreadRecord:
        """Create a thread, with its first messages."""
        record = ThreadRecord(id=ids.thread_id(), created_at=int(self.clock()), metadata=metadata)
        with self._transaction() as db:
            for message in messages:
                self._check_message(message)
            db.execute(
                "INSERT INTO threads (id, created_at, metadata) VALUES (?, ?, ?)",
                (record.id, record.created_at, json.dumps(metadata)),
            )
            for message in messages:
                self._insert_message(record.id, message)
        return record

    def get_thread(self, thread_id: str) -> ThreadRecord:
        """The thread ``thread_id``, or a 404."""
        with self._lock:
            return self._get_thread(thread_id)

    def _get_thread(self, thread_id: str) -> ThreadRecord:
        row = self._db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None:
            raise errors.thread_not_found(thread_id)
        return ThreadRecord(
            id=row["id"], created_at=row["created_at"], metadata=json.loads(row["metadata"])
        )

    def create_message(self, thread_id: str, message: NewMessage) -> MessageRecord:
        """Add a message, with its files, to a thread."""
        with self._transaction():
            self._get_thread(thread_id)
            self._check_message(message)
            message_id = self._insert_message(thread_id, message)
            return self._get_message(thread_id, message_id)

    def get_message(self, thread_id: str, message_id: str) -> MessageRecord:
        """A message of a thread, or a 404."""
        with self._lock:
            self._get_thread(thread_id)
            return self._get_message(thread_id, message_id)

    def _get_message(self, thread_id: str, message_id: str) -> MessageRecord:
        row = self._db.execute(
            "SELECT * FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id)
        ).fetchone()
        if row is None:
            raise errors.message_not_found(message_id)
        return MessageRecord(
            id=row["id"],
            thread_id=row["thread_id"],
            created_at=row["created_at"],
            role=row["role"],
            content=row["content"],
            metadata=json.loads(row["metadata"]),
            file_ids=[a.file_id for a in self._attachments(message_id)],
        )

    def message_files(self, thread_id: str, message_id: str) -> list[Attachment]:
        """The files of a message, oldest first; 404 for no thread or message."""
        with self._lock:
            self._get_thread(thread_id)
            self._get_message(thread_id, message_id)
            return self._attachments(message_id)

    def get_message_file(self, thread_id: str, message_id: str, file_id: str) -> Attachment:
        """One file of a message, or a 404."""
        with self._lock:
            self._get_thread(thread_id)
            self._get_message(thread_id, message_id)
            attachment = self._attachment(message_id, file_id)
        if attachment is None:
            raise errors.message_file_not_found(message_id, file_id)
        return attachment

    # --- shared helpers (the caller holds the lock) -----------------------------------------

    def _check_message(self, message: NewMessage) -> None:
        if len(message.file_ids) > MAX_FILES_PER_MESSAGE:
            raise errors.array_too_long("file_ids", MAX_FILES_PER_MESSAGE, len(message.file_ids))
        self._check_attachable(message.file_ids)

    def _insert_message(self, thread_id: str, message: NewMessage) -> str:
        message_id = ids.message_id()
        now = int(self.clock())
        self._db.execute(
            "INSERT INTO messages (id, thread_id, created_at, role, content, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                message_id,
                thread_id,
                now,
                message.role,
                message.content,
                json.dumps(message.metadata),
            ),
        )
        self._insert_attachments(message_id, dict.fromkeys(message.file_ids), now)
        return message_id

    def _check_attachable(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            record = self.find_file(file_id, param="file_id")
            if record.purpose != "assistants":
                raise errors.wrong_purpose_for_attachment(file_id, record.purpose)

    def _insert_attachments(self, owner_id: str, file_ids: dict[str, None], now: int) -> None:
        # dict keys: duplicates in a request collapse into one attachment, in first-seen order.
        self._db.executemany(
            "INSERT OR IGNORE INTO attachments (owner_id, file_id, created_at) VALUES (?, ?, ?)",
            [(owner_id, file_id, now) for file_id in file_ids],
        )

    def _attachments(self, owner_id: str) -> list[Attachment]:
        rows = self._db.execute(
            "SELECT * FROM attachments WHERE owner_id = ? ORDER BY created_at, seq", (owner_id,)
        ).fetchall()
        return [_attachment(row) for row in rows]

    def _attachment(self, owner_id: str, file_id: str) -> Attachment | None:
        row = self._db.execute(
            "SELECT * FROM attachments WHERE owner_id = ? AND file_id = ?", (owner_id, file_id)
        ).fetchone()
        return None if row is None else _attachment(row)


def page_rows(
    db: sqlite3.Connection,
    table: str,
    columns: str,
    id_column: str,
    where: list[str],
    args: dict[str, Any],
    request: PageRequest,
) -> tuple[list[sqlite3.Row], bool]:
    """One page of the rows of ``table`` (a table, or a SELECT in parentheses) that meet every
    condition of ``where`` (in named ``args``), ordered by ``created_at`` then ``seq`` as
    ``paginate`` orders a list, with its cursors naming rows by ``id_column``; and whether more
    lie beyond it. The caller holds the lock.

    Cut in SQL at the cursors' places, so a page costs its own size: read whole for every page,
    listing 100,000 files 10,000 at a time cost the emulator seconds. A cursor naming no row of
    the list is the 400 ``paginate`` answers.
    """
    cut = list(where)
    places = dict(args)
    for name, cursor in (("after", request.after), ("before", request.before)):
        if cursor is None:
            continue
        place = db.execute(
            f"SELECT created_at, seq FROM {table}"  # noqa: S608 - fixed names and clauses
            f" WHERE {id_column} = :cursor AND {' AND '.join(where)}",
            {**args, "cursor": cursor},
        ).fetchone()
        if place is None:
            raise unknown_cursor(name, cursor)
        later = (name == "after") == (request.order == "asc")
        cut.append(f"(created_at, seq) {'>' if later else '<'} (:{name}_at, :{name}_seq)")
        places |= {f"{name}_at": place["created_at"], f"{name}_seq": place["seq"]}
    # With only ``before``, the page is the end of the window nearest to the cursor.
    from_end = request.before is not None and request.after is None
    ascending = (request.order == "asc") != from_end
    direction = "ASC" if ascending else "DESC"
    rows = db.execute(
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(cut)}"  # noqa: S608 - as above
        f" ORDER BY created_at {direction}, seq {direction} LIMIT :limit",
        {**places, "limit": request.limit + 1},
    ).fetchall()
    page = rows[: request.limit]
    if from_end:
        page.reverse()
    return page, len(rows) > request.limit


def _file_record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(
        id=row["id"],
        bytes=row["bytes"],
        created_at=row["created_at"],
        filename=row["filename"],
        purpose=row["purpose"],
        processed_at=row["processed_at"],
        expires_at=row["expires_at"],
    )


def _expired(row: sqlite3.Row, now: float) -> bool:
    return row["expires_at"] is not None and now >= row["expires_at"]


def _attachment(row: sqlite3.Row) -> Attachment:
    return Attachment(
        owner_id=row["owner_id"], file_id=row["file_id"], created_at=row["created_at"]
    )
