"""The Uploads API: a file of up to 8 GB sent as parts of up to 64 MB, in any order and in
parallel, then completed into a File.

Each part streams to its own blob under ``blobs/parts`` (memory stays flat); completing joins
them in the order of ``part_ids`` into the new File's blob, checking the byte count and, when
given, the md5. An Upload accepts parts for ``upload_lifetime_s`` (an hour, as on the service;
a setting so tests can use seconds), then answers ``expired``; the parts of an expired or
cancelled Upload are deleted.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.emulator import errors, ids
from syncd.emulator.bodies import (
    check_file_expiry,
    json_object,
    list_of,
    optional_str,
    required_str,
)
from syncd.emulator.errors import ApiError
from syncd.emulator.knobs import KnobHolder
from syncd.emulator.store import FileRecord, Store
from syncd.emulator.uploads import receive_upload

__all__ = ["MAX_PART_BYTES", "MAX_UPLOAD_BYTES", "UPLOAD_PURPOSES", "Uploads", "upload_routes"]

MAX_PART_BYTES = 64 * 1024 * 1024
MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024
#: In the order the service's purpose error lists them.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision")
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An Upload and, once completed, its File."""

    id: str
    created_at: int
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    expires_at: float
    file_expires_after: int | None
    stored_status: str  # pending | completed | cancelled
    file: FileRecord | None

    def status(self, now: float) -> str:
        if self.stored_status == "pending" and now >= self.expires_at:
            return "expired"
        return self.stored_status

    def to_api(self, now: float) -> dict[str, Any]:
        """The service's ``upload`` object."""
        return {
            "id": self.id,
            "object": "upload",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status(now),
            "expires_at": int(self.expires_at),
            "file": None if self.file is None else self.file.to_api(now),
        }


class Uploads:
    """Upload state, in the emulator's ``Store`` (same database and lock)."""

    def __init__(self, store: Store, knobs: KnobHolder, processing_delay: float) -> None:
        self.store = store
        self.knobs = knobs
        self.processing_delay = processing_delay
        self.parts_dir = store.blobs_dir / "parts"
        self.parts_dir.mkdir(exist_ok=True)

    def create(
        self,
        *,
        filename: str,
        purpose: str,
        size: int,
        mime_type: str,
        file_expires_after: int | None,
    ) -> UploadRecord:
        now = self.store.clock()
        upload_id = ids.upload_id()
        with self.store.transaction() as db:
            self._sweep(db, now)
            db.execute(
                "INSERT INTO uploads (id, created_at, filename, purpose, bytes, mime_type,"
                " expires_at, file_expires_after, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    upload_id,
                    int(now),
                    filename,
                    purpose,
                    size,
                    mime_type,
                    now + self.knobs.knobs.upload_lifetime_s,
                    file_expires_after,
                    "pending",
                ),
            )
            return self._get(db, upload_id)

    def add_part(self, upload_id: str, incoming: Path, size: int) -> dict[str, Any]:
        """Keep the bytes at ``incoming`` as the Upload's next part; answers the part object."""
        part_id = ids.part_id()
        now = int(self.store.clock())
        with self.store.transaction() as db:
            record = self._pending(db, upload_id)
            received = db.execute(
                "SELECT coalesce(sum(bytes), 0) FROM upload_parts WHERE upload_id = ?",
                (upload_id,),
            ).fetchone()[0]
            if received + size > MAX_UPLOAD_BYTES:
                raise ApiError(
                    400,
                    f"Upload {record.id} would exceed the maximum of 8 GB.",
                    param="data",
                )
            incoming.replace(self.parts_dir / part_id)
            db.execute(
                "INSERT INTO upload_parts (id, upload_id, created_at, bytes) VALUES (?, ?, ?, ?)",
                (part_id, upload_id, now, size),
            )
        return {"id": part_id, "object": "upload.part", "created_at": now, "upload_id": upload_id}

    def complete(self, upload_id: str, part_ids: list[str], md5: str | None) -> UploadRecord:
        """Join the parts in ``part_ids`` order into a new File (blocking: run it in a worker).

        Parts not named are discarded, as the service does.
        """
        with self.store.read() as db:
            record = self._pending(db, upload_id)
            sizes = dict(
                db.execute(
                    "SELECT id, bytes FROM upload_parts WHERE upload_id = ?", (upload_id,)
                ).fetchall()
            )
        if len(set(part_ids)) != len(part_ids):
            raise ApiError(400, "Each part may be named only once in 'part_ids'.", param="part_ids")
        for part_id in part_ids:
            if part_id not in sizes:
                raise ApiError(
                    400, f"No part with id '{part_id}' in upload {upload_id}.", param="part_ids"
                )
        total = sum(sizes[p] for p in part_ids)
        if total != record.bytes:
            raise ApiError(
                400,
                f"The parts add up to {total} bytes, but the upload was created for "
                f"{record.bytes} bytes.",
                param="part_ids",
            )
        incoming = self.store.incoming_path()
        try:
            digest = self._join(part_ids, incoming)
            if md5 is not None and md5.lower() != digest:
                raise ApiError(
                    400,
                    f"The md5 checksum of the uploaded bytes ({digest}) does not match the one "
                    f"given ({md5}).",
                    param="md5",
                )
            with self.store.transaction() as db:
                self._pending(db, upload_id)  # not cancelled or completed meanwhile
                file = self.store.add_file_in_transaction(
                    filename=record.filename,
                    purpose=record.purpose,
                    size=total,
                    incoming=incoming,
                    processing_delay=self.processing_delay,
                    expires_after=record.file_expires_after,
                )
                db.execute(
                    "UPDATE uploads SET status = 'completed', file_id = ? WHERE id = ?",
                    (file.id, upload_id),
                )
                self._drop_parts(db, upload_id)
                return self._get(db, upload_id)
        finally:
            incoming.unlink(missing_ok=True)  # gone already when the File was stored

    def cancel(self, upload_id: str) -> UploadRecord:
        with self.store.transaction() as db:
            self._pending(db, upload_id)
            db.execute("UPDATE uploads SET status = 'cancelled' WHERE id = ?", (upload_id,))
            self._drop_parts(db, upload_id)
            return self._get(db, upload_id)

    def _join(self, part_ids: list[str], target: Path) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with target.open("wb") as out:
            for part_id in part_ids:
                with (self.parts_dir / part_id).open("rb") as part:
                    while chunk := part.read(_COPY_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        return digest.hexdigest()

    def _pending(self, db: sqlite3.Connection, upload_id: str) -> UploadRecord:
        record = self._get(db, upload_id)
        status = record.status(self.store.clock())
        if status != "pending":
            raise ApiError(
                400,
                f"Upload {upload_id} is {status}; it accepts no more changes.",
                param="upload_id",
            )
        return record

    def _get(self, db: sqlite3.Connection, upload_id: str) -> UploadRecord:
        row = db.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            raise errors.upload_not_found(upload_id)
        file = None
        if row["file_id"] is not None:
            try:
                file = self.store.find_file(row["file_id"], param="file_id")
            except ApiError:  # the File was deleted since
                file = None
        return UploadRecord(
            id=row["id"],
            created_at=row["created_at"],
            filename=row["filename"],
            purpose=row["purpose"],
            bytes=row["bytes"],
            mime_type=row["mime_type"],
            expires_at=row["expires_at"],
            file_expires_after=row["file_expires_after"],
            stored_status=row["status"],
            file=file,
        )

    def _drop_parts(self, db: sqlite3.Connection, upload_id: str) -> None:
        rows = db.execute("SELECT id FROM upload_parts WHERE upload_id = ?", (upload_id,))
        for row in rows.fetchall():
            (self.parts_dir / row["id"]).unlink(missing_ok=True)
        db.execute("DELETE FROM upload_parts WHERE upload_id = ?", (upload_id,))

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """Delete the parts of Uploads that expired, so a long run does not fill the disk."""
        expired = db.execute(
            "SELECT id FROM uploads WHERE status = 'pending' AND expires_at <= ?", (now,)
        ).fetchall()
        for row in expired:
            self._drop_parts(db, row["id"])


def upload_routes(prefix: str, uploads: Uploads) -> list[Route]:
    """The four Uploads endpoints under ``prefix`` (``/v1``)."""
    r = _Routes(uploads)
    one = f"{prefix}/uploads/{{upload_id}}"
    return [
        Route(f"{prefix}/uploads", r.create, methods=["POST"]),
        Route(f"{one}/parts", r.add_part, methods=["POST"]),
        Route(f"{one}/complete", r.complete, methods=["POST"]),
        Route(f"{one}/cancel", r.cancel, methods=["POST"]),
    ]


class _Routes:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads

    def _answer(self, record: UploadRecord) -> Response:
        return JSONResponse(record.to_api(self.uploads.store.clock()))

    async def create(self, request: Request) -> Response:
        body = await json_object(
            request, {"filename", "purpose", "bytes", "mime_type", "expires_after"}
        )
        filename = required_str(body, "filename")
        purpose = required_str(body, "purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise errors.invalid_purpose(purpose, UPLOAD_PURPOSES)
        size = body.get("bytes")
        if size is None:
            raise errors.missing_parameter("bytes")
        if isinstance(size, bool) or not isinstance(size, int):
            raise errors.invalid_type("bytes", "an integer", size)
        if size < 1:
            raise errors.integer_below_min("bytes", 1, size)
        if size > MAX_UPLOAD_BYTES:
            raise errors.integer_above_max("bytes", MAX_UPLOAD_BYTES, size)
        mime_type = required_str(body, "mime_type")
        expiry = body.get("expires_after")
        file_expires_after = None
        if expiry is not None:
            if not isinstance(expiry, dict):
                raise errors.invalid_type("expires_after", "an object", expiry)
            file_expires_after = check_file_expiry(expiry.get("anchor"), expiry.get("seconds"))
        return self._answer(
            self.uploads.create(
                filename=filename,
                purpose=purpose,
                size=size,
                mime_type=mime_type,
                file_expires_after=file_expires_after,
            )
        )

    async def add_part(self, request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        incoming = self.uploads.store.incoming_path()
        try:
            part = await receive_upload(
                request.headers.get("content-type"),
                request.stream(),
                incoming,
                MAX_PART_BYTES,
                file_field="data",
            )
            for name in part.fields:
                raise errors.unrecognized_argument(name)
            if not part.has_file:
                raise errors.missing_parameter("data")
            if part.too_large:
                raise ApiError(
                    400,
                    f"Part is too large ({part.size} bytes). The maximum part size is 64 MB.",
                    param="data",
                )
            answer = self.uploads.add_part(upload_id, incoming, part.size)
        finally:
            incoming.unlink(missing_ok=True)  # moved already when the part was kept
        return JSONResponse(answer)

    async def complete(self, request: Request) -> Response:
        body = await json_object(request, {"part_ids", "md5"})
        if "part_ids" not in body:
            raise errors.missing_parameter("part_ids")
        part_ids = list_of(body, "part_ids", str, "an array of strings")
        md5 = optional_str(body, "md5")
        record = await run_in_threadpool(
            self.uploads.complete, request.path_params["upload_id"], part_ids, md5
        )
        return self._answer(record)

    async def cancel(self, request: Request) -> Response:
        return self._answer(self.uploads.cancel(request.path_params["upload_id"]))
