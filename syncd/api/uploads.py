"""Large files through the Uploads API: parts read from disk in parallel, memory flat.

``POST /files`` takes one request of at most 512 MB; an Upload takes up to 8 GB in parts of at
most 64 MB, sent in any order and in parallel, then joined by ``complete`` in the order of the
part ids (the service checks the byte count and the md5 we send). :func:`upload_in_parts` does
that for a file on disk:

* each part is streamed from its offset through its own file handle, 64 KB at a time, so memory
  does not grow with the file or the part size;
* a part whose connection broke is sent again (the client's retry policy); parts already
  acknowledged are never re-sent — a lost answer leaves only an orphan part, which the service
  ignores because ``complete`` names the parts that count;
* an Upload that expired (an hour after it was opened) before it was completed is opened again
  and the file sent afresh;
* on giving up for any other reason the Upload is cancelled, so nothing is left pending.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from syncd.api.errors import APIError, BadRequestError, NotFoundError, UploadOutcomeUnknown
from syncd.api.models import FileObject, Upload

if TYPE_CHECKING:
    from syncd.api.client import Client

log = logging.getLogger("syncd.api")

MB = 1024 * 1024
#: The largest part the service takes.
MAX_PART_BYTES = 64 * MB
#: The largest file ``POST /files`` takes in one request.
MAX_SINGLE_REQUEST_BYTES = 512 * MB
_READ_BYTES = MB


class UploadExpired(Exception):
    """The Upload expired before it was completed; a new one must be opened."""


@dataclass(frozen=True)
class PartSettings:
    """How a large file is cut and sent: ``part_size`` bytes a part (at most 64 MB),
    ``workers`` parts at a time, and how many times an expired Upload is opened again."""

    part_size: int = MAX_PART_BYTES
    workers: int = 4
    restarts: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.part_size <= MAX_PART_BYTES:
            raise ValueError(
                f"part_size must be between 1 and {MAX_PART_BYTES}, not {self.part_size}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.restarts < 0:
            raise ValueError(f"restarts must not be negative, not {self.restarts}")


class FilePart(io.RawIOBase):
    """``length`` bytes of ``file`` from ``offset``, as a stream of their own.

    Seeking and telling are relative to the part, and it has no ``fileno``, so an HTTP library
    measures the part (not the whole file) and rewinds to the part's start before a retry.
    """

    def __init__(self, file: IO[bytes], offset: int, length: int) -> None:
        super().__init__()
        self._file = file
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + offset), self._length)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._file.seek(self._offset + self._pos)
        data = self._file.read(want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def file_md5(path: Path) -> str:
    """The hex md5 of the file at ``path``, read a megabyte at a time."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def guess_mime_type(filename: str) -> str:
    """The MIME type an Upload is declared with, from the file's extension."""
    if filename.lower().endswith(".jsonl"):
        return "application/jsonl"  # not in every platform's table
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def upload_in_parts(
    client: Client,
    path: Path,
    purpose: str,
    filename: str,
    *,
    settings: PartSettings,
    expires_after: int | None = None,
    now: Callable[[], float] = time.time,
) -> FileObject:
    """Send the file at ``path`` through an Upload and return the File it became.

    Raises :class:`UploadOutcomeUnknown` if ``complete`` may have been applied but its answer
    was lost, and any other :class:`APIError` (the Upload cancelled) when a part or the
    completion fails for good. A file past the Uploads API's 8 GB is refused by the service
    when the Upload is opened, in its own words.
    """
    size = path.stat().st_size
    spans = [(o, min(settings.part_size, size - o)) for o in range(0, size, settings.part_size)]
    mime_type = guess_mime_type(filename)
    with ThreadPoolExecutor(settings.workers + 1, thread_name_prefix="syncd-part") as pool:
        md5 = pool.submit(file_md5, path)
        restarts = 0
        while True:
            upload = client.create_upload(
                filename, purpose, size, mime_type, expires_after=expires_after
            )
            log.debug("upload %s of %s: %d parts", upload.id, filename, len(spans))
            try:
                part_ids = _send_parts(client, pool, upload, path, spans, now)
                return _complete(client, upload, part_ids, md5.result(), now)
            except UploadExpired:
                if restarts == settings.restarts:
                    raise APIError(
                        f"upload of {filename} expired {restarts + 1} times before it was complete",
                        method="POST",
                        path=f"/uploads/{upload.id}/complete",
                    ) from None
                restarts += 1
                log.info("upload %s of %s expired; starting it again", upload.id, filename)
            except UploadOutcomeUnknown:
                raise  # complete may have worked: there is nothing to cancel
            except BaseException:
                _cancel(client, upload)
                raise


class _Stopped(Exception):
    """A part not sent because another part already failed."""


def _send_parts(
    client: Client,
    pool: ThreadPoolExecutor,
    upload: Upload,
    path: Path,
    spans: list[tuple[int, int]],
    now: Callable[[], float],
) -> list[str]:
    """Send every span as a part, ``pool``'s workers at a time; the part ids in file order."""
    stop = threading.Event()

    def send(offset: int, length: int) -> str:
        if stop.is_set():
            raise _Stopped
        if now() >= upload.expires_at:
            raise UploadExpired
        with path.open("rb") as f:
            try:
                return client.add_upload_part(upload.id, FilePart(f, offset, length)).id
            except (BadRequestError, NotFoundError):
                if now() >= upload.expires_at:
                    raise UploadExpired from None
                raise

    futures: list[Future[str]] = [pool.submit(send, o, n) for o, n in spans]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            error = failed.exception()
            assert error is not None
            raise error
        return [f.result() for f in futures]
    finally:
        # On failure (or an interrupt), parts not yet started are not sent; those under way
        # finish before the Upload is cancelled.
        stop.set()
        wait(futures)


def _complete(
    client: Client, upload: Upload, part_ids: list[str], md5: str, now: Callable[[], float]
) -> FileObject:
    try:
        done = client.complete_upload(upload, part_ids, md5)
    except (BadRequestError, NotFoundError):
        if now() >= upload.expires_at:
            raise UploadExpired from None
        raise
    if done.file is None:
        raise APIError(
            f"upload {upload.id} completed without a file",
            method="POST",
            path=f"/uploads/{upload.id}/complete",
        )
    return done.file


def _cancel(client: Client, upload: Upload) -> None:
    """Cancel ``upload`` as part of giving up: a failure to cancel is logged, not raised (the
    Upload expires on its own within the hour)."""
    try:
        client.cancel_upload(upload.id)
    except APIError as error:
        log.info("could not cancel upload %s (it expires on its own): %s", upload.id, error)


__all__ = [
    "MAX_PART_BYTES",
    "MAX_SINGLE_REQUEST_BYTES",
    "FilePart",
    "PartSettings",
    "file_md5",
    "guess_mime_type",
    "upload_in_parts",
]
