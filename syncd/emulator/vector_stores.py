"""Vector stores, the files attached to them and file batches: records, validation and state.

Ingestion is not a background job: each attached file records when it is ready (``ready_at``)
and how it ends (``outcome``: ``completed``, ``failed``, or ``stuck`` for one that never ends),
and every read derives the status from the clock. Counts, ``usage_bytes`` and the store's and
batches' statuses are derived the same way, so they can never disagree with the files, and the
behaviour survives a restart with ``--data-dir`` unchanged.

Emulator choices where the service's behaviour is unknown (see the README):

* attaching a file that is already in the store answers the existing vector-store file
  unchanged (a retried attach is harmless); in a batch it joins the batch as it is;
* a vector-store file's ``usage_bytes`` is the File's size once ``completed``, 0 before;
* a batch ends ``completed`` when none of its files is ``in_progress`` (even if some failed),
  ``cancelled`` when cancelled while some were;
* an expired store (``expires_after`` passed since ``last_active_at``) answers ``expired`` and
  keeps working.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from syncd.emulator import errors, ids
from syncd.emulator.ingest import SUPPORTED_EXTENSIONS, can_parse, extension
from syncd.emulator.knobs import KnobHolder
from syncd.emulator.pagination import PageRequest
from syncd.emulator.store import FileRecord, RenderedPage, Store, page_rows

__all__ = [
    "ATTACHING",
    "DEFAULT_CHUNKING",
    "MAX_BATCH_FILES",
    "MAX_CREATE_FILES",
    "STATUSES",
    "BatchRecord",
    "NewAttachment",
    "VectorStoreFileRecord",
    "VectorStoreRecord",
    "VectorStores",
    "parse_attributes",
    "parse_chunking",
    "parse_metadata",
    "parse_store_expiry",
]

MAX_ATTRIBUTES = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512
MAX_BATCH_FILES = 2000
MAX_CREATE_FILES = 500
DAY_S = 24 * 3600
#: What the service answers for ``auto``: its current static parameters.
DEFAULT_CHUNKING: dict[str, Any] = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}
PARSE_ERROR = {"code": "invalid_file", "message": "The file could not be parsed."}
#: The moment to render an attach's own answer at: before ingestion began, so it says
#: ``in_progress`` as the service's does, however short ``ingestion_seconds`` is.
ATTACHING = -math.inf
STATUSES = ("in_progress", "completed", "failed", "cancelled")
_PARSE_ERROR_JSON = json.dumps(PARSE_ERROR)


# --- validation -----------------------------------------------------------------------------


def parse_metadata(value: object, name: str = "metadata") -> dict[str, str] | None:
    """Metadata: at most 16 keys of at most 64 characters, string values of at most 512."""
    return _parse_mapping(value, name, _check_metadata_value)


def parse_attributes(value: object, name: str = "attributes") -> dict[str, Any] | None:
    """Attributes: like metadata, but values may also be numbers and booleans."""
    return _parse_mapping(value, name, _check_attribute_value)


def _parse_mapping(
    value: object, name: str, check_value: Callable[[object, str], None]
) -> dict[str, Any] | None:
    """``value`` if it is ``None`` or an object whose keys pass and whose values pass
    ``check_value`` (given each value and its parameter name)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.invalid_type(name, "an object", value)
    _check_keys(value, name)
    for key, item in value.items():
        check_value(item, f"{name}.{key}")
    return value


def _check_metadata_value(item: object, name: str) -> None:
    if not isinstance(item, str):
        raise errors.invalid_type(name, "a string", item)
    _check_string(item, name)


def _check_attribute_value(item: object, name: str) -> None:
    if isinstance(item, str):
        _check_string(item, name)
    elif not isinstance(item, int | float | bool):
        raise errors.invalid_type(name, "a string, number or boolean", item)


def _check_keys(value: dict[str, Any], name: str) -> None:
    if len(value) > MAX_ATTRIBUTES:
        raise errors.too_many_properties(name, MAX_ATTRIBUTES, len(value))
    for key in value:
        if len(key) > MAX_KEY_CHARS:
            raise errors.property_name_too_long(name, MAX_KEY_CHARS, key)


def _check_string(value: str, name: str) -> None:
    if len(value) > MAX_VALUE_CHARS:
        raise errors.string_too_long(name, MAX_VALUE_CHARS, len(value))


def parse_chunking(value: object, name: str = "chunking_strategy") -> dict[str, Any]:
    """A chunking strategy request, as the service echoes it (``auto`` becomes its static
    800/400)."""
    if value is None:
        return DEFAULT_CHUNKING
    if not isinstance(value, dict):
        raise errors.invalid_type(name, "an object", value)
    kind = value.get("type")
    if kind == "auto":
        _only_keys(value, {"type"}, name)
        return DEFAULT_CHUNKING
    if kind != "static":
        raise errors.invalid_value(
            f"{name}.type", f"expected one of 'auto' or 'static', but got {kind!r}."
        )
    _only_keys(value, {"type", "static"}, name)
    static = value.get("static")
    where = f"{name}.static"
    if static is None:
        raise errors.missing_parameter(where)
    if not isinstance(static, dict):
        raise errors.invalid_type(where, "an object", static)
    _only_keys(static, {"max_chunk_size_tokens", "chunk_overlap_tokens"}, where)
    size = _required_int(static, "max_chunk_size_tokens", where)
    overlap = _required_int(static, "chunk_overlap_tokens", where)
    if size < 100:
        raise errors.integer_below_min(f"{where}.max_chunk_size_tokens", 100, size)
    if size > 4096:
        raise errors.integer_above_max(f"{where}.max_chunk_size_tokens", 4096, size)
    if overlap < 0:
        raise errors.integer_below_min(f"{where}.chunk_overlap_tokens", 0, overlap)
    if overlap > size // 2:
        raise errors.invalid_value(
            f"{where}.chunk_overlap_tokens",
            f"chunk_overlap_tokens ({overlap}) must not exceed half of max_chunk_size_tokens "
            f"({size}).",
        )
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


def _only_keys(value: dict[str, Any], allowed: set[str], name: str) -> None:
    for key in value:
        if key not in allowed:
            raise errors.unrecognized_argument(f"{name}.{key}")


def _required_int(body: dict[str, Any], key: str, where: str) -> int:
    value = body.get(key)
    name = f"{where}.{key}"
    if value is None:
        raise errors.missing_parameter(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.invalid_type(name, "an integer", value)
    return value


def parse_store_expiry(value: object, name: str = "expires_after") -> int | None:
    """``{"anchor": "last_active_at", "days": 1..365}`` → the number of days (None: never)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.invalid_type(name, "an object", value)
    _only_keys(value, {"anchor", "days"}, name)
    anchor = value.get("anchor")
    if anchor != "last_active_at":
        raise errors.invalid_value(
            f"{name}.anchor", f"expected 'last_active_at', but got {anchor!r}."
        )
    days = _required_int(value, "days", name)
    if days < 1:
        raise errors.integer_below_min(f"{name}.days", 1, days)
    if days > 365:
        raise errors.integer_above_max(f"{name}.days", 365, days)
    return days


# --- records --------------------------------------------------------------------------------


def _counts(statuses: Iterable[tuple[str, int]]) -> dict[str, int]:
    """``file_counts`` of (status, how many files) pairs."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in statuses:
        counts[status] += count
    return {**counts, "total": sum(counts.values())}


def _status(cancelled: bool, outcome: str, ready_at: float, now: float) -> str:
    """A store file's status as of ``now``: ``in_progress`` until ingestion is over (for good
    when stuck), then its outcome.

    ``_FILES_WITH_STATUS`` says the same of a row (tests/emulator/test_vector_store_pages.py
    holds the two to each other)."""
    if cancelled:
        return "cancelled"
    if outcome == "stuck" or now < ready_at:
        return "in_progress"
    return outcome


#: The rows of ``vector_store_files`` with their ``status`` as of ``:now``: what
#: ``VectorStoreFileRecord.status`` says of them, for pages cut and rendered in SQL.
_FILES_WITH_STATUS = (
    "(SELECT *, CASE WHEN cancelled THEN 'cancelled'"
    " WHEN outcome = 'stuck' OR :now < ready_at THEN 'in_progress' ELSE outcome END AS status"
    " FROM vector_store_files)"
)
#: The ``vector_store.file`` object of a row of ``_FILES_WITH_STATUS``: the object
#: ``VectorStoreFileRecord.to_api`` makes (tests/emulator/test_vector_store_pages.py holds the
#: two to each other). ``:parse_error`` is ``_PARSE_ERROR_JSON``.
_FILE_JSON = (
    "json_object('id', file_id, 'object', 'vector_store.file',"
    " 'usage_bytes', CASE WHEN status = 'completed' THEN bytes ELSE 0 END,"
    " 'created_at', created_at, 'vector_store_id', vector_store_id, 'status', status,"
    " 'last_error', CASE WHEN status = 'failed' THEN json(:parse_error) END,"
    " 'chunking_strategy', json(chunking), 'attributes', json(attributes))"
)


@dataclass(frozen=True, slots=True)
class VectorStoreFileRecord:
    """A File attached to a vector store."""

    vector_store_id: str
    file_id: str
    created_at: int
    bytes: int
    ready_at: float
    outcome: str  # completed | failed | stuck
    cancelled: bool
    attributes: dict[str, Any] | None
    chunking: dict[str, Any]

    def status(self, now: float) -> str:
        """The file's status as of ``now`` (see ``_status``)."""
        return _status(self.cancelled, self.outcome, self.ready_at, now)

    def to_api(self, now: float) -> dict[str, Any]:
        """The service's ``vector_store.file`` object as of ``now``."""
        status = self.status(now)
        return {
            "id": self.file_id,
            "object": "vector_store.file",
            "usage_bytes": self.bytes if status == "completed" else 0,
            "created_at": self.created_at,
            "vector_store_id": self.vector_store_id,
            "status": status,
            "last_error": PARSE_ERROR if status == "failed" else None,
            "chunking_strategy": self.chunking,
            "attributes": self.attributes,
        }


@dataclass(frozen=True, slots=True)
class Ingestion:
    """Files of a store whose ingestion goes the same way: what a store's status and counts
    need of them, so that a store of 100,000 files is not read as 100,000 records."""

    cancelled: bool
    outcome: str
    ready_at: float
    count: int
    bytes: int

    def status(self, now: float) -> str:
        """These files' status as of ``now`` (see ``_status``)."""
        return _status(self.cancelled, self.outcome, self.ready_at, now)


@dataclass(frozen=True, slots=True)
class VectorStoreRecord:
    """A vector store, with its files grouped by how their ingestion goes."""

    id: str
    created_at: int
    name: str
    metadata: dict[str, str] | None
    expires_days: int | None
    last_active_at: int
    ingestions: list[Ingestion] = field(default_factory=list)

    @property
    def expires_at(self) -> int | None:
        if self.expires_days is None:
            return None
        return self.last_active_at + self.expires_days * DAY_S

    def to_api(self, now: float) -> dict[str, Any]:
        """The service's ``vector_store`` object as of ``now``."""
        statuses = [i.status(now) for i in self.ingestions]
        expires_at = self.expires_at
        if expires_at is not None and now >= expires_at:
            status = "expired"
        elif "in_progress" in statuses:
            status = "in_progress"
        else:
            status = "completed"
        answer: dict[str, Any] = {
            "id": self.id,
            "object": "vector_store",
            "created_at": self.created_at,
            "name": self.name,
            "usage_bytes": sum(
                i.bytes for i, s in zip(self.ingestions, statuses, strict=True) if s == "completed"
            ),
            "file_counts": _counts(
                (s, i.count) for i, s in zip(self.ingestions, statuses, strict=True)
            ),
            "status": status,
            "expires_at": expires_at,
            "last_active_at": self.last_active_at,
            "metadata": self.metadata,
        }
        # The spec's expiration policy is not nullable: a store that never expires omits it.
        if self.expires_days is not None:
            answer["expires_after"] = {"anchor": "last_active_at", "days": self.expires_days}
        return answer


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A file batch with the store files it attached (those still in the store)."""

    id: str
    vector_store_id: str
    created_at: int
    cancelled: bool
    files: list[VectorStoreFileRecord]

    def to_api(self, now: float) -> dict[str, Any]:
        """The service's ``vector_store.files_batch`` object as of ``now``."""
        statuses = [f.status(now) for f in self.files]
        if self.cancelled:
            status = "cancelled"
        elif "in_progress" in statuses:
            status = "in_progress"
        else:
            status = "completed"
        return {
            "id": self.id,
            "object": "vector_store.files_batch",
            "created_at": self.created_at,
            "vector_store_id": self.vector_store_id,
            "status": status,
            "file_counts": _counts((s, 1) for s in statuses),
        }


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """One file to attach, with its (validated) attributes and chunking strategy."""

    file_id: str
    attributes: dict[str, Any] | None = None
    chunking: dict[str, Any] = field(default_factory=lambda: DEFAULT_CHUNKING)


# --- state ----------------------------------------------------------------------------------

_UNSET: Any = object()


class VectorStores:
    """Vector-store operations over the emulator's ``Store`` (same database, same lock).

    Methods that read blobs (attaching checks whether each file parses) block: call them from
    a worker thread.
    """

    def __init__(self, store: Store, knobs: KnobHolder, *, seed: int | None = None) -> None:
        self.store = store
        self.knobs = knobs
        self._rng = random.Random(seed)

    # --- stores -----------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        metadata: dict[str, str] | None,
        expires_days: int | None,
        attachments: list[NewAttachment],
    ) -> VectorStoreRecord:
        """Create a store, attaching ``attachments`` (checked before anything is created)."""
        outcomes = self._plan(attachments)
        now = int(self.store.clock())
        vs_id = ids.vector_store_id()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO vector_stores"
                " (id, created_at, name, metadata, expires_days, last_active_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (vs_id, now, name, json.dumps(metadata), expires_days, now),
            )
            self._insert(db, vs_id, attachments, outcomes)
            return self._get(db, vs_id)

    def list_stores(self) -> list[VectorStoreRecord]:
        """Every store, oldest first."""
        with self.store.read() as db:
            rows = db.execute("SELECT id FROM vector_stores ORDER BY created_at, seq").fetchall()
            return [self._get(db, row["id"]) for row in rows]

    def get(self, vs_id: str) -> VectorStoreRecord:
        """The store ``vs_id``, or a 404."""
        with self.store.read() as db:
            return self._get(db, vs_id)

    def modify(
        self,
        vs_id: str,
        *,
        name: str | None = _UNSET,
        expires_days: int | None = _UNSET,
        metadata: dict[str, str] | None = _UNSET,
    ) -> VectorStoreRecord:
        """Change what was given (``None`` clears ``expires_after`` and ``metadata``)."""
        with self.store.transaction() as db:
            self._check(db, vs_id)
            if name is not _UNSET and name is not None:
                db.execute("UPDATE vector_stores SET name = ? WHERE id = ?", (name, vs_id))
            if expires_days is not _UNSET:
                db.execute(
                    "UPDATE vector_stores SET expires_days = ? WHERE id = ?", (expires_days, vs_id)
                )
            if metadata is not _UNSET:
                db.execute(
                    "UPDATE vector_stores SET metadata = ? WHERE id = ?",
                    (json.dumps(metadata), vs_id),
                )
            self._touch(db, vs_id)
            return self._get(db, vs_id)

    def delete(self, vs_id: str) -> None:
        """Delete a store and its attachments and batches (never the Files), or raise a 404."""
        with self.store.transaction() as db:
            self._check(db, vs_id)
            db.execute(
                "DELETE FROM file_batch_members WHERE batch_id IN"
                " (SELECT id FROM file_batches WHERE vector_store_id = ?)",
                (vs_id,),
            )
            db.execute("DELETE FROM file_batches WHERE vector_store_id = ?", (vs_id,))
            db.execute("DELETE FROM vector_store_files WHERE vector_store_id = ?", (vs_id,))
            db.execute("DELETE FROM vector_stores WHERE id = ?", (vs_id,))

    def touch(self, vs_id: str) -> None:
        """Note activity (a search) on a store: its expiry counts from now."""
        with self.store.transaction() as db:
            self._check(db, vs_id)
            self._touch(db, vs_id)

    # --- files ------------------------------------------------------------------------------

    def attach(self, vs_id: str, attachment: NewAttachment) -> tuple[VectorStoreFileRecord, bool]:
        """Attach one File; an already attached one is answered unchanged. Also says whether
        the file was newly attached."""
        with self.store.read() as db:
            self._check(db, vs_id)
        outcomes = self._plan([attachment])
        with self.store.transaction() as db:
            self._check(db, vs_id)
            added = self._insert(db, vs_id, [attachment], outcomes)
            self._touch(db, vs_id)
            return self._file(db, vs_id, attachment.file_id), added > 0

    def files_page(
        self, vs_id: str, request: PageRequest, now: float, status: str | None = None
    ) -> RenderedPage:
        """One page of the store's files (of one ``status`` as of ``now``, when given), rendered
        as of ``now``: what ``paginate`` cuts from the list of them all, oldest attachment
        first; 404 for no store.

        Cut (``page_rows``) and rendered (``_FILE_JSON``) in SQL: a page of 100 of a store's
        100,000 files read all of them, and decoding and encoding each file's JSON columns was
        most of what was left.
        """
        where = ["vector_store_id = :store"]
        if status is not None:
            where.append("status = :status")
        args = {"store": vs_id, "now": now, "status": status, "parse_error": _PARSE_ERROR_JSON}
        with self.store.read() as db:
            self._check(db, vs_id)
            rows, has_more = page_rows(
                db, _FILES_WITH_STATUS, f"file_id, {_FILE_JSON}", "file_id", where, args, request
            )
        return RenderedPage.of(rows, has_more)

    def get_file(self, vs_id: str, file_id: str) -> VectorStoreFileRecord:
        """One file of a store, or a 404."""
        with self.store.read() as db:
            self._check(db, vs_id)
            return self._file(db, vs_id, file_id)

    def update_attributes(
        self, vs_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> VectorStoreFileRecord:
        """Replace a file's attributes; ingestion is not redone."""
        with self.store.transaction() as db:
            self._check(db, vs_id)
            self._file(db, vs_id, file_id)
            db.execute(
                "UPDATE vector_store_files SET attributes = ?"
                " WHERE vector_store_id = ? AND file_id = ?",
                (json.dumps(attributes), vs_id, file_id),
            )
            self._touch(db, vs_id)
            return self._file(db, vs_id, file_id)

    def detach(self, vs_id: str, file_id: str) -> None:
        """Remove a file from a store (the File stays), or raise a 404."""
        with self.store.transaction() as db:
            self._check(db, vs_id)
            deleted = db.execute(
                "DELETE FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?",
                (vs_id, file_id),
            ).rowcount
            if not deleted:
                raise errors.vector_store_file_not_found(vs_id, file_id)
            # The file leaves the store's batches too: attached again later, it is no batch's.
            db.execute(
                "DELETE FROM file_batch_members WHERE file_id = ? AND batch_id IN"
                " (SELECT id FROM file_batches WHERE vector_store_id = ?)",
                (file_id, vs_id),
            )
            self._touch(db, vs_id)

    def file_with_source(
        self, vs_id: str, file_id: str
    ) -> tuple[VectorStoreFileRecord, FileRecord]:
        """A store file and the File it reads (whose blob is ``store.blob_path(file_id)``)."""
        with self.store.read() as db:
            self._check(db, vs_id)
            return self._file(db, vs_id, file_id), self.store.find_file(file_id, param="file_id")

    def searchable(self, vs_id: str) -> list[tuple[VectorStoreFileRecord, FileRecord]]:
        """The store's ``completed`` files with their Files, oldest attachment first."""
        args = {"store": vs_id, "now": self.store.clock()}
        with self.store.read() as db:
            self._check(db, vs_id)
            rows = db.execute(
                f"SELECT * FROM {_FILES_WITH_STATUS} WHERE vector_store_id = :store"  # noqa: S608 - fixed
                " AND status = 'completed' ORDER BY created_at, seq",
                args,
            ).fetchall()
            return [
                (_file_record(row), self.store.find_file(row["file_id"], param="file_id"))
                for row in rows
            ]

    # --- batches ----------------------------------------------------------------------------

    def create_batch(self, vs_id: str, attachments: list[NewAttachment]) -> BatchRecord:
        """Attach several Files as one batch."""
        with self.store.read() as db:
            self._check(db, vs_id)
        outcomes = self._plan(attachments)
        batch_id = ids.file_batch_id()
        with self.store.transaction() as db:
            self._check(db, vs_id)
            db.execute(
                "INSERT INTO file_batches (id, vector_store_id, created_at) VALUES (?, ?, ?)",
                (batch_id, vs_id, int(self.store.clock())),
            )
            self._insert(db, vs_id, attachments, outcomes)
            db.executemany(
                "INSERT OR IGNORE INTO file_batch_members (batch_id, file_id) VALUES (?, ?)",
                [(batch_id, a.file_id) for a in attachments],
            )
            self._touch(db, vs_id)
            return self._batch(db, vs_id, batch_id)

    def get_batch(self, vs_id: str, batch_id: str) -> BatchRecord:
        """A batch of a store, or a 404."""
        with self.store.read() as db:
            self._check(db, vs_id)
            return self._batch(db, vs_id, batch_id)

    def cancel_batch(self, vs_id: str, batch_id: str) -> BatchRecord:
        """Cancel the batch's files still in progress; a batch with none left is unchanged."""
        now = self.store.clock()
        with self.store.transaction() as db:
            self._check(db, vs_id)
            batch = self._batch(db, vs_id, batch_id)
            pending = [f.file_id for f in batch.files if f.status(now) == "in_progress"]
            if pending:
                db.executemany(
                    "UPDATE vector_store_files SET cancelled = 1"
                    " WHERE vector_store_id = ? AND file_id = ?",
                    [(vs_id, file_id) for file_id in pending],
                )
                db.execute("UPDATE file_batches SET cancelled = 1 WHERE id = ?", (batch_id,))
            return self._batch(db, vs_id, batch_id)

    # --- helpers (the caller holds the lock, except for _plan) --------------------------------

    def _plan(self, attachments: list[NewAttachment]) -> list[str]:
        """How each file's ingestion will end; refuses unsupported extensions at once.

        Called without the lock: checking that a file parses reads its whole blob.
        """
        with self.store.read():
            sources = [self.store.find_file(a.file_id, param="file_id") for a in attachments]
        unsupported = sorted(
            {extension(s.filename) or "(none)" for s in sources} - SUPPORTED_EXTENSIONS
        )
        if unsupported:
            raise errors.unsupported_extensions(unsupported)
        stuck_rate = self.knobs.knobs.stuck_rate
        outcomes = []
        for source in sources:
            try:
                parses = can_parse(self.store.blob_path(source.id), source.filename)
            except FileNotFoundError:  # deleted meantime: _insert reports the 404
                parses = True
            if not parses:
                outcomes.append("failed")
            elif stuck_rate and self._rng.random() < stuck_rate:
                outcomes.append("stuck")
            else:
                outcomes.append("completed")
        return outcomes

    def _insert(
        self,
        db: sqlite3.Connection,
        vs_id: str,
        attachments: list[NewAttachment],
        outcomes: list[str],
    ) -> int:
        """Insert the attachments not in the store yet; answers how many were."""
        now = self.store.clock()
        added = 0
        ready_at = now + self.knobs.knobs.ingestion_seconds
        for attachment, outcome in zip(attachments, outcomes, strict=True):
            source = self.store.find_file(attachment.file_id, param="file_id")
            added += db.execute(
                "INSERT OR IGNORE INTO vector_store_files (vector_store_id, file_id, created_at,"
                " bytes, ready_at, outcome, attributes, chunking)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    vs_id,
                    source.id,
                    int(now),
                    source.bytes,
                    ready_at,
                    outcome,
                    json.dumps(attachment.attributes),
                    json.dumps(attachment.chunking),
                ),
            ).rowcount
        return added

    def _touch(self, db: sqlite3.Connection, vs_id: str) -> None:
        db.execute(
            "UPDATE vector_stores SET last_active_at = ? WHERE id = ?",
            (int(self.store.clock()), vs_id),
        )

    def _check(self, db: sqlite3.Connection, vs_id: str) -> None:
        """A 404 unless the store exists: without reading its files, as ``_get`` does."""
        if db.execute("SELECT 1 FROM vector_stores WHERE id = ?", (vs_id,)).fetchone() is None:
            raise errors.vector_store_not_found(vs_id)

    def _get(self, db: sqlite3.Connection, vs_id: str) -> VectorStoreRecord:
        row = db.execute("SELECT * FROM vector_stores WHERE id = ?", (vs_id,)).fetchone()
        if row is None:
            raise errors.vector_store_not_found(vs_id)
        # Files attached together (a batch) share their ingestion: a few rows for many files.
        ingestions = db.execute(
            "SELECT cancelled, outcome, ready_at, count(*), sum(bytes) FROM vector_store_files"
            " WHERE vector_store_id = ? GROUP BY cancelled, outcome, ready_at",
            (vs_id,),
        ).fetchall()
        return VectorStoreRecord(
            id=row["id"],
            created_at=row["created_at"],
            name=row["name"],
            metadata=json.loads(row["metadata"]),
            expires_days=row["expires_days"],
            last_active_at=row["last_active_at"],
            ingestions=[Ingestion(bool(c), o, r, n, b) for c, o, r, n, b in ingestions],
        )

    def _file(self, db: sqlite3.Connection, vs_id: str, file_id: str) -> VectorStoreFileRecord:
        row = db.execute(
            "SELECT * FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?",
            (vs_id, file_id),
        ).fetchone()
        if row is None:
            raise errors.vector_store_file_not_found(vs_id, file_id)
        return _file_record(row)

    def _batch(self, db: sqlite3.Connection, vs_id: str, batch_id: str) -> BatchRecord:
        row = db.execute(
            "SELECT * FROM file_batches WHERE id = ? AND vector_store_id = ?", (batch_id, vs_id)
        ).fetchone()
        if row is None:
            raise errors.file_batch_not_found(batch_id)
        files = db.execute(
            "SELECT f.* FROM vector_store_files f JOIN file_batch_members m"
            " ON m.file_id = f.file_id AND f.vector_store_id = ?"
            " WHERE m.batch_id = ? ORDER BY f.created_at, f.seq",
            (vs_id, batch_id),
        ).fetchall()
        return BatchRecord(
            id=row["id"],
            vector_store_id=row["vector_store_id"],
            created_at=row["created_at"],
            cancelled=bool(row["cancelled"]),
            files=[_file_record(f) for f in files],
        )


def _file_record(row: sqlite3.Row) -> VectorStoreFileRecord:
    return VectorStoreFileRecord(
        vector_store_id=row["vector_store_id"],
        file_id=row["file_id"],
        created_at=row["created_at"],
        bytes=row["bytes"],
        ready_at=row["ready_at"],
        outcome=row["outcome"],
        cancelled=bool(row["cancelled"]),
        attributes=json.loads(row["attributes"]),
        chunking=json.loads(row["chunking"]),
    )
