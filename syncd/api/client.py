"""The one way syncd talks to the service: a typed, retrying client over one ``httpx2.Client``.

Every operation of ``spec/openai-files.yaml`` (the Assistants v1 contract) and of
``spec/openai-vector-stores.yaml`` (Files as served today, Uploads, vector stores) is a method
returning pydantic models; cursor lists are iterators that follow the cursor to the end.
Failures raise the hierarchy in :mod:`syncd.api.errors`; retries follow a
:class:`~syncd.api.retry.RetryPolicy`; requests the service budgets are paced
(:mod:`syncd.api.pacing`); polling follows the service's hint (:mod:`syncd.api.polling`).
Uploads stream from disk — large files in parallel parts (:mod:`syncd.api.uploads`) — and
downloads stream to disk, so memory stays flat whatever the file size.

Two rules go beyond "retry what failed":

* An upload is never sent twice blindly. Once its body may have reached the service, a dropped
  connection, a timeout or a 5xx raises :class:`UploadOutcomeUnknown`; the caller looks for the
  file in :meth:`Client.iter_files` before sending it again.
* A retried delete or attach whose earlier attempt may have been applied reads the service's
  "not found" / "already there" answer as the success it most likely is.

The API key lives only in the auth hook that writes the ``Authorization`` header; no repr,
log line or exception text built here contains it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import ipaddress
import json
import logging
import mimetypes
import os
import posixpath
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import httpx2
import pydantic

from syncd import __version__
from syncd.api.errors import (
    APIError,
    BadRequestError,
    ClientConfigError,
    NotFoundError,
    TimeoutError,
    TransportError,
    UploadOutcomeUnknown,
    error_from_response,
    error_from_transport,
)
from syncd.api.models import (
    Assistant,
    AssistantFile,
    Attributes,
    BatchFile,
    ChunkingStrategy,
    ComparisonFilter,
    CompoundFilter,
    DeletedAssistantFile,
    DeletedFile,
    DeletedVectorStore,
    DeletedVectorStoreFile,
    FileBatch,
    FileContentPage,
    FileObject,
    Message,
    MessageFile,
    Page,
    SearchResults,
    Thread,
    Upload,
    UploadPart,
    VectorStore,
    VectorStoreFile,
)
from syncd.api.names import sent_filename
from syncd.api.pacing import Pacer, bucket_of
from syncd.api.polling import poll_after, poll_until
from syncd.api.retry import RetryPolicy, retrying
from syncd.api.uploads import MAX_SINGLE_REQUEST_BYTES, PartSettings, upload_in_parts
from syncd.api.wire import SEND_BYTES, WireTransport, proxied

log = logging.getLogger("syncd.api")

DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: Files larger than this go through the Uploads API in parts (:meth:`Client.create_file`).
DEFAULT_UPLOAD_THRESHOLD = 64 * 1024 * 1024
#: The most files one file batch may attach.
MAX_BATCH_FILES = 2000
#: The ingestion states a vector-store file list can be filtered by.
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")

Order = Literal["asc", "desc"]
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
PolledT = TypeVar("PolledT", VectorStoreFile, FileBatch)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP exchange, as passed to :attr:`Client.request_log`.

    ``status`` is ``None`` when no response arrived; ``error`` then says why.
    """

    method: str
    path: str
    status: int | None
    duration: float
    request_id: str | None
    error: str | None = None


class _BearerAuth(httpx2.Auth):
    """Adds the key at send time, so it sits in no client-wide header map and no repr."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "_BearerAuth(<key hidden>)"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request

    def raw_header(self) -> tuple[bytes, bytes]:
        """The header as a request sent past httpx2 (:meth:`Client._post_bytes`) carries it."""
        return b"Authorization", f"Bearer {self._api_key}".encode()


class _JoinedBody(httpx2.SyncByteStream):
    """A request body whose pieces are joined into writes of about ``SEND_BYTES``.

    httpx2 yields a multipart body as many small pieces (each boundary, part header and line
    break on its own) and each piece becomes a write of its own: a small upload cost ten
    system calls and ten packets, each waking the server. Joined, it goes out in one. The
    bytes are the same; memory stays within two ``SEND_BYTES``, however large the body.
    """

    def __init__(self, body: httpx2.SyncByteStream) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        pending: list[bytes] = []
        size = 0
        for piece in self._body:
            pending.append(piece)
            size += len(piece)
            if size >= SEND_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)

    def close(self) -> None:
        self._body.close()


class _CallTrace:
    """What the failed attempts of one call have left uncertain."""

    def __init__(self) -> None:
        self.maybe_applied = False

    def note(self, error: APIError) -> None:
        """Remember whether ``error`` leaves open that the service acted on the request."""
        if _may_have_reached_service(error):
            self.maybe_applied = True


def _may_have_reached_service(error: APIError) -> bool:
    if isinstance(error, TransportError):
        return error.request_sent
    return error.status is not None and error.status >= 500


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine: plain http may go there."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _order(order: str | None) -> str | None:
    if order not in (None, "asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    return order


def _status(status: str | None) -> str | None:
    if status not in (None, *FILE_STATUSES):
        raise ValueError(f"status must be one of {', '.join(FILE_STATUSES)}, not {status!r}")
    return status


def _dump(model: pydantic.BaseModel) -> dict[str, Any]:
    """A request model as JSON, leaving out what was not set."""
    return model.model_dump(mode="json", exclude_none=True)


def _attach_options(
    attributes: Attributes | None, chunking_strategy: ChunkingStrategy | None
) -> dict[str, Any]:
    """The optional fields of an attach (one file or a batch): only those given are sent."""
    options: dict[str, Any] = {}
    if attributes is not None:
        options["attributes"] = attributes
    if chunking_strategy is not None:
        options["chunking_strategy"] = _dump(chunking_strategy)
    return options


def _file_expiry_form(expires_after: int | None) -> dict[str, str]:
    """``expires_after`` as the multipart form of ``createFile`` spells a nested object."""
    if expires_after is None:
        return {}
    return {"expires_after[anchor]": "created_at", "expires_after[seconds]": str(expires_after)}


def _form_quoted(name: str) -> bytes:
    """``name`` quoted for a multipart header as httpx2 quotes it (a streamed upload's): the
    name as sent (:func:`~syncd.api.names.sent_filename`), and a backslash doubled."""
    return sent_filename(name).replace("\\", "\\\\").encode()


@functools.lru_cache(maxsize=256)
def _content_type(extension: str) -> str:
    """The type of a file part by its name's extension, as httpx2 guesses it for a streamed
    one; remembered, since every upload of a folder asks for the same few."""
    return mimetypes.guess_type(f"file{extension}")[0] or "application/octet-stream"


def _form_body(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of ``fields`` and ``content`` as the field ``file``
    named ``filename`` (typed by its extension, as httpx2 types a streamed one), and its
    ``Content-Type``."""
    boundary = os.urandom(16).hex().encode("ascii")
    kind = _content_type(posixpath.splitext(filename)[1].lower())
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (boundary, _form_quoted(name), value.encode())
        for name, value in fields.items()
    ]
    parts.append(
        b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
        b"Content-Type: %s\r\n\r\n" % (boundary, _form_quoted(filename), kind.encode())
    )
    parts += [content, b"\r\n--%s--\r\n" % boundary]
    return b"".join(parts), f"multipart/form-data; boundary={boundary.decode()}"


def _parsed(
    content: bytes,
    model: type[ModelT],
    status: int,
    request_id: str | None,
    method: str,
    path: str,
) -> ModelT:
    """A 2xx answer's ``content`` as ``model``; an :class:`APIError` naming what did not fit
    if it is not one."""
    try:
        return model.model_validate_json(content)
    except pydantic.ValidationError as exc:
        raise APIError(
            f"unexpected response: {exc.error_count()} field error(s), first: "
            f"{exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc']))}",
            status=status,
            request_id=request_id,
            method=method,
            path=path,
        ) from None


@functools.lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx2.URL:
    """``url`` parsed, remembered for the paths asked for again and again (``/files`` on every
    upload); an ``httpx2.URL`` never changes, so one may serve every request."""
    return httpx2.URL(url)


@functools.lru_cache(maxsize=64)
def _bare_request(method: str, url: httpx2.URL) -> httpx2.Request:
    """What a response sent past httpx2 names as its request (an error quotes its method and
    path); it is never sent, so one per method and URL serves every response."""
    return httpx2.Request(method, url)


def _default_transport(url: httpx2.URL, max_connections: int) -> WireTransport | None:
    """The lean transport (:mod:`syncd.api.wire`), unless the environment routes ``url``
    through a proxy: then ``None``, and httpx2 builds its own transports, which speak to it."""
    if proxied(url):
        return None
    return WireTransport(max_connections=max_connections)


def _beta_header(path: str) -> dict[str, str]:
    # The Assistants v1 surface answers only when this header is present; /files must not get it.
    if path.startswith(("/assistants", "/threads")):
        return {"OpenAI-Beta": "assistants=v1"}
    return {}


@dataclass(frozen=True, slots=True)
class FilePage:
    """A page of ``GET /files`` as the service sent it: ``text``, its JSON, which
    :data:`FILE_ROWS` reads as rows.

    A large listing is read by SQLite rather than by Python: SQLite's JSON functions run
    without holding the interpreter's lock, so 100,000 files stream into a table while another
    thread scans a folder, where parsing them in Python stalled that scan by as long again.

    Its ``data`` may not have been seen to be a list (see :func:`_file_page`): a page from which
    :data:`FILE_ROWS` reads no row must pass :meth:`check_empty`.
    """

    text: str

    def check_empty(self) -> None:
        """Raise an :class:`APIError` unless this page, which gave no rows, is a page of files
        (an empty list): an answer without one must not pass for a service without files."""
        _page_facts(self.text)


#: SQL reading a :class:`FilePage`'s text (its one parameter) as rows of (id, filename, bytes,
#: purpose, created_at); a field an item lacks is NULL. (Each item is rendered once and read five
#: times: materialised, a third of the work; an SQLite before 3.35 gives the same rows slower.)
FILE_ROWS = (
    "WITH items (item) AS MATERIALIZED (SELECT value FROM json_each(?, '$.data'))"
    " SELECT json_extract(item, '$.id'), json_extract(item, '$.filename'),"
    " json_extract(item, '$.bytes'), json_extract(item, '$.purpose'),"
    " json_extract(item, '$.created_at') FROM items"
)
if sqlite3.sqlite_version_info < (3, 35):
    FILE_ROWS = FILE_ROWS.replace(" MATERIALIZED", "")

#: The end of a page as the service writes it: its list closed, then members with plain values
#: (``],"first_id":"file-…","last_id":"file-…","has_more":true}``). In valid JSON a match is
#: the top level's own members: a ``]`` inside a string would leave the string to end at one of
#: the quotes that follow, and a key or a value then stands where JSON allows neither. (Whether
#: the page is valid JSON, :data:`FILE_ROWS` finds out as it reads it.)
_PAGE_END = re.compile(
    r'\]\s*((?:,\s*"\w+"\s*:\s*(?:"[\w-]*"|true|false|null)\s*)+)\}\s*\Z', re.ASCII
)


def _file_page(response: httpx2.Response) -> tuple[FilePage, bool, str | None]:
    """A page of ``GET /files``, its ``has_more`` and its last id (``None``: it is empty).

    The next page is asked for as soon as its cursor is known, so it is read from the page's
    end when the service put ``has_more`` and ``last_id`` there, as it does; parsing the whole
    page for them took a fifth of each page's turn (the rows are read later, by SQLite, see
    :class:`FilePage`). Otherwise SQLite reads the page whole."""
    text = response.text
    has_more, last = _page_end(text) or _page_facts(text, response)
    return FilePage(text), bool(has_more), last


def _page_end(text: str) -> tuple[bool | None, str] | None:
    """``has_more`` and ``last_id`` as the page's end (:data:`_PAGE_END`) has them; ``None``
    unless it has both, of the right types (then the page is read whole)."""
    end = _PAGE_END.search(text, max(0, len(text) - 1024))
    if end is None:
        return None
    members = json.loads("{" + end[1].lstrip()[1:] + "}")
    has_more, last = members.get("has_more", ""), members.get("last_id")
    if not isinstance(has_more, bool | None) or not isinstance(last, str):
        return None
    return has_more, last


def _page_facts(
    text: str, response: httpx2.Response | None = None
) -> tuple[bool | None, str | None]:
    """``has_more`` and the last id of the page ``text``, read by SQLite: an
    :class:`APIError` (naming ``response``'s status and request id) unless it is an object
    whose ``data`` is a list."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            kind, facts = db.execute(
                "SELECT json_type(?1, '$.data'), json_extract(?1, '$.has_more', '$.last_id')",
                [text],
            ).fetchone()
            if kind != "array":
                raise TypeError("no list of files in it")
            has_more, last = json.loads(facts)
            if has_more and last is None:  # no last_id: the last item's id is the cursor
                (last,) = db.execute(
                    "SELECT json_extract(?1, '$.data[' || (n - 1) || '].id')"
                    " FROM (SELECT json_array_length(?1, '$.data') AS n) WHERE n > 0",
                    [text],
                ).fetchone() or (None,)
        if not isinstance(has_more, bool | None) or not isinstance(last, str | None):
            raise TypeError("has_more or an id of the wrong type")
    except (sqlite3.Error, TypeError, ValueError) as exc:
        raise APIError(
            f"unexpected response: not a page of files ({type(exc).__name__})",
            status=None if response is None else response.status_code,
            request_id=None if response is None else response.headers.get("x-request-id"),
            method="GET",
            path="/files",
        ) from None
    return has_more, last


class _Turn:
    """A request's turn in its pacing ``bucket`` (``None``: not paced), as a context: the
    pacer lets it go on entering, and on leaving learns the budget from the answer's headers
    (:meth:`answered`) and, after a 429 that said how long to wait, holds the bucket that
    long (up to ``cap``)."""

    __slots__ = ("_cap", "_headers", "_pacer", "bucket")

    def __init__(self, pacer: Pacer, bucket: str | None, cap: float) -> None:
        self._pacer, self.bucket, self._cap = pacer, bucket, cap
        self._headers: Mapping[str, str] | None = None

    def answered(self, headers: Mapping[str, str]) -> None:
        """The answer came, with ``headers``."""
        self._headers = headers

    def __enter__(self) -> _Turn:
        if self.bucket is not None:
            self._pacer.acquire(self.bucket)
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if self.bucket is None:
            return
        retry_after = None
        if isinstance(error, APIError) and error.status == 429 and error.retry_after is not None:
            retry_after = min(error.retry_after, self._cap)
        self._pacer.release(self.bucket, self._headers, retry_after=retry_after)


class Client:
    """A client for the Files, Assistant-files and Message-files operations.

    ``base_url``, ``api_key`` and ``organization`` fall back to ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY`` and ``OPENAI_ORG_ID``. Plain ``http://`` is refused for any host but
    loopback unless ``allow_insecure_http``. ``connect_timeout`` bounds making a connection;
    ``timeout`` bounds each read, write and wait for a pooled connection. ``sleep`` and ``clock``
    (monotonic seconds) are what retries, polling and pacing wait with and measure time by.

    Files above ``upload_threshold`` bytes (64 MB by default) go through the Uploads API in
    parts as ``upload_parts`` says. Requests the service limits are paced by :attr:`pacer`
    (:mod:`syncd.api.pacing`), which leaves ``pace_reserve`` requests of each budget unspent.

    Safe to share between threads. ``request_log``, when set, is called with a
    :class:`RequestRecord` after every HTTP exchange (each retry attempt included); the same
    facts go to the ``syncd.api`` logger at DEBUG.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 16,
        transport: httpx2.BaseTransport | None = None,
        upload_threshold: int = DEFAULT_UPLOAD_THRESHOLD,
        upload_parts: PartSettings | None = None,
        pace_reserve: int = 1,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        if not api_key:
            raise ClientConfigError(
                "no API key: pass one in the configuration or set OPENAI_API_KEY"
            )
        url = httpx2.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ClientConfigError(f"base URL must be an http(s) URL, not {base_url!r}")
        if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
            raise ClientConfigError(
                f"refusing plain http:// to {url.host}: the API key would travel unencrypted "
                "(use https://, or allow insecure HTTP explicitly)"
            )
        self.base_url = str(url).rstrip("/")
        self.organization = organization
        self.retry = retry or RetryPolicy()
        self.request_log: Callable[[RequestRecord], None] | None = None
        if not 0 <= upload_threshold <= MAX_SINGLE_REQUEST_BYTES:
            raise ClientConfigError(
                f"upload_threshold must be between 0 and {MAX_SINGLE_REQUEST_BYTES} bytes "
                f"(the most one request may carry), not {upload_threshold}"
            )
        self.upload_threshold = upload_threshold
        self.upload_parts = upload_parts or PartSettings()
        self.pacer = Pacer(clock=clock, sleep=sleep, reserve=pace_reserve)
        self._secret = api_key
        self._sleep = sleep
        self._clock = clock
        headers = {"User-Agent": f"syncd/{__version__} httpx2/{httpx2.__version__}"}
        if organization:
            headers["OpenAI-Organization"] = organization
        self._auth = _BearerAuth(api_key)
        # The lean transport, when this client has it: then a request whose body is in
        # memory goes to it directly (see _post_bytes).
        self._wire = None if transport is not None else _default_transport(url, max_connections)
        self._http = httpx2.Client(
            base_url=self.base_url,
            auth=self._auth,
            headers=headers,
            timeout=httpx2.Timeout(timeout, connect=connect_timeout),
            limits=httpx2.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport or self._wire,
            # (For httpx2's own transport, kept behind a proxy.) Every request goes to
            # base_url: over plain http none speaks TLS, and loading the certificate store
            # would cost each command ~50 ms.
            verify=url.scheme == "https",
        )
        # What httpx2 would send with every request, for those sent past it: its default
        # headers and ours, but no Accept-Encoding (such an answer is read as it comes).
        self._wire_headers = [
            (name, value)
            for name, value in self._http.headers.raw
            if name.lower() != b"accept-encoding"
        ]
        self._wire_timeouts = self._http.timeout.as_dict()

    def __repr__(self) -> str:
        org = f" organization={self.organization}" if self.organization else ""
        return f"<Client {self.base_url}{org}>"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- files --------------------------------------------------------------------------------

    def list_files(self, purpose: str | None = None) -> list[FileObject]:
        """All files of the organization (every page), optionally only those with ``purpose``."""
        return list(self.iter_files(purpose))

    def iter_files(
        self,
        purpose: str | None = None,
        *,
        order: Order | None = None,
        page_size: int | None = None,
    ) -> Iterator[FileObject]:
        """Every file, following ``after`` while the service says ``has_more``.

        ``order`` (by ``created_at``; the service's default is ``desc``) and ``page_size``
        (1–10,000; the service's default is 10,000) are sent only when given.
        """
        if page_size is not None and not 1 <= page_size <= 10_000:
            raise ValueError(f"page_size must be between 1 and 10000, not {page_size}")
        params: dict[str, Any] = {"purpose": purpose, "order": _order(order), "limit": page_size}
        return self._pages("/files", FileObject, params)

    def iter_file_pages(self, *, page_size: int = 10_000) -> Iterator[FilePage]:
        """Every file, as :meth:`iter_files` lists them, a page at a time as the service sent
        it (see :class:`FilePage`): what a sync compares, without a Python object per file.
        Pages are as large as the service allows unless ``page_size``; the next one is asked
        for while the caller reads this one."""

        def fetch(query: dict[str, Any]) -> tuple[FilePage, bool, str | None]:
            return self._retrying(
                lambda: _file_page(self._exchange("GET", "/files", params=query)), "GET /files"
            )

        return self._follow("/files", {"limit": page_size}, fetch, ahead=True)

    def create_file(
        self,
        path: Path,
        purpose: str,
        filename: str | None = None,
        *,
        expires_after: int | None = None,
        content: bytes | None = None,
    ) -> FileObject:
        """Upload the file at ``path`` as ``filename`` (default: its name) and return the File;
        the service deletes it ``expires_after`` seconds after creation (3,600–2,592,000) when
        given.

        Up to :attr:`upload_threshold` bytes it goes in one ``POST /files``; above, through an
        Upload in parts (:func:`~syncd.api.uploads.upload_in_parts`, as :attr:`upload_parts`
        says). Either way it streams from disk, so memory stays flat.

        ``content``: the file's bytes, already read by the caller (a small file it has just
        hashed); they are sent as they are, in one ``POST /files``, and the file is not read
        again — so what goes out is exactly what the caller checked.

        Raises :class:`UploadOutcomeUnknown` when the file may or may not have been stored (the
        body went out and no clear answer came back); an upload is never re-sent blindly.
        """
        if not isinstance(path, Path):  # (making a Path of a Path parses it all again)
            path = Path(path)
        name = filename or path.name
        if content is not None:
            if len(content) > self.upload_threshold:
                raise ValueError(
                    f"content of {len(content)} bytes is above upload_threshold "
                    f"({self.upload_threshold}): pass the path alone, to upload it in parts"
                )
            return self._post_file(content, purpose, name, expires_after)
        if path.stat().st_size <= self.upload_threshold:
            return self._post_file(path, purpose, name, expires_after)
        return upload_in_parts(
            self, path, purpose, name, settings=self.upload_parts, expires_after=expires_after
        )

    def retrieve_file(self, file_id: str) -> FileObject:
        """The file ``file_id``."""
        return self._get(f"/files/{file_id}", FileObject)

    def delete_file(self, file_id: str, *, missing_ok: bool = False) -> bool:
        """Delete the file ``file_id``. ``True`` if deleted; ``False`` if it was already gone
        (only with ``missing_ok``, else :class:`NotFoundError`)."""
        return self._delete(f"/files/{file_id}", DeletedFile, missing_ok=missing_ok)

    def download_file(self, file_id: str, dest: Path | IO[bytes]) -> int:
        """Stream the content of ``file_id`` into ``dest`` and return the number of bytes.

        A path is written through ``<name>.part`` and renamed into place only when complete.
        A stream is rewound and truncated before a retry; one that cannot seek is not retried
        once bytes were written to it.
        """
        path = f"/files/{file_id}/content"
        if isinstance(dest, str | os.PathLike):
            target = Path(dest)
            part = target.with_name(target.name + ".part")
            try:
                with part.open("wb") as out:
                    written = self._download(path, out)
                part.replace(target)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            return written
        return self._download(path, dest)

    def wait_processed(self, file_id: str, timeout: float = 60.0, poll: float = 0.5) -> FileObject:
        """Poll ``file_id`` until its status is ``processed`` or ``error`` and return it.

        The interval starts at ``poll`` and grows by half each time up to 5 s. A file without a
        ``status`` (newer service versions) is returned at once. Raises :class:`TimeoutError`
        if it is still being processed after ``timeout`` seconds.
        """
        start = self._clock()
        delay = poll
        while True:
            file = self.retrieve_file(file_id)
            if file.status in (None, "processed", "error"):
                return file
            if self._clock() - start + delay > timeout:
                raise TimeoutError(
                    f"file {file_id} still {file.status} after {timeout:g} s",
                    method="GET",
                    path=f"/files/{file_id}",
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 5.0)

    # --- uploads (one file in parts) ---------------------------------------------------------

    def create_upload(
        self,
        filename: str,
        purpose: str,
        bytes: int,
        mime_type: str,
        *,
        expires_after: int | None = None,
    ) -> Upload:
        """Open an Upload of ``bytes`` bytes (up to 8 GB; it expires an hour later).

        Retried like any call: an Upload that was opened twice costs nothing, the spare one
        expires unused.
        """
        body: dict[str, Any] = {
            "filename": filename,
            "purpose": purpose,
            "bytes": bytes,
            "mime_type": mime_type,
        }
        if expires_after is not None:
            body["expires_after"] = {"anchor": "created_at", "seconds": expires_after}
        return self._call("POST", "/uploads", Upload, json=body)

    def add_upload_part(self, upload_id: str, data: bytes | IO[bytes] | io.RawIOBase) -> UploadPart:
        """Send one part (at most 64 MB) of ``upload_id``; ``data`` is bytes or a seekable
        stream positioned anywhere (it is rewound with ``seek(0)`` before each attempt).

        Retried on any failure: a part whose answer was lost is sent again, and the orphan
        copy is harmless because only the part ids named on completion count.
        """
        path = f"/uploads/{upload_id}/parts"

        def attempt() -> UploadPart:
            response = self._exchange("POST", path, files={"data": ("part", data)})
            return self._parse(response, UploadPart)

        return self._retrying(attempt, f"POST {path}")

    def complete_upload(
        self, upload: Upload, part_ids: Sequence[str], md5: str | None = None
    ) -> Upload:
        """Join the parts of ``upload`` in the order of ``part_ids`` into a File
        (``Upload.file``); the service checks the byte count, and the content against ``md5``
        when given.

        Raises :class:`UploadOutcomeUnknown` when an attempt may have completed it but the
        retry is refused: the File may exist, and only a look at the file list can tell.
        """
        body: dict[str, Any] = {"part_ids": list(part_ids)}
        if md5 is not None:
            body["md5"] = md5
        trace = _CallTrace()
        sent_at = time.time()
        try:
            return self._call(
                "POST", f"/uploads/{upload.id}/complete", Upload, json=body, trace=trace
            )
        except BadRequestError as error:
            if not trace.maybe_applied:
                raise
            raise UploadOutcomeUnknown(
                filename=upload.filename,
                size=upload.bytes,
                purpose=upload.purpose,
                sent_at=sent_at,
                cause=error,
            ) from error

    def cancel_upload(self, upload_id: str) -> Upload:
        """Cancel ``upload_id``: no part may be added any more."""
        return self._call("POST", f"/uploads/{upload_id}/cancel", Upload)

    # --- vector stores ------------------------------------------------------------------------

    def create_vector_store(
        self,
        name: str | None = None,
        *,
        file_ids: Collection[str] = (),
        metadata: dict[str, str] | None = None,
        expires_after_days: int | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
    ) -> VectorStore:
        """Create a vector store, optionally with files attached at once.

        ``expires_after_days`` (1–365) counts from the store's last activity.
        """
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if file_ids:
            body["file_ids"] = list(file_ids)
        if metadata is not None:
            body["metadata"] = metadata
        if expires_after_days is not None:
            body["expires_after"] = {"anchor": "last_active_at", "days": expires_after_days}
        if chunking_strategy is not None:
            body["chunking_strategy"] = _dump(chunking_strategy)
        return self._call("POST", "/vector_stores", VectorStore, json=body)

    def retrieve_vector_store(self, vector_store_id: str) -> VectorStore:
        """The vector store ``vector_store_id`` (status, file counts, bytes used)."""
        return self._get(f"/vector_stores/{vector_store_id}", VectorStore)

    def update_vector_store(
        self,
        vector_store_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        expires_after_days: int | None = None,
    ) -> VectorStore:
        """Change the fields given (the others are left as they are)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if metadata is not None:
            body["metadata"] = metadata
        if expires_after_days is not None:
            body["expires_after"] = {"anchor": "last_active_at", "days": expires_after_days}
        return self._call("POST", f"/vector_stores/{vector_store_id}", VectorStore, json=body)

    def delete_vector_store(self, vector_store_id: str, *, missing_ok: bool = False) -> bool:
        """Delete the store (its Files stay). ``True`` if deleted; ``False`` if it was already
        gone (only with ``missing_ok``, else :class:`NotFoundError`)."""
        return self._delete(
            f"/vector_stores/{vector_store_id}", DeletedVectorStore, missing_ok=missing_ok
        )

    def iter_vector_stores(
        self, *, order: Order = "desc", page_size: int = 100
    ) -> Iterator[VectorStore]:
        """Every vector store, following the cursor to the end."""
        return self._cursor("/vector_stores", VectorStore, order, page_size)

    # --- vector store files -------------------------------------------------------------------

    def create_vector_store_file(
        self,
        vector_store_id: str,
        file_id: str,
        *,
        attributes: Attributes | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
    ) -> VectorStoreFile:
        """Attach the File ``file_id`` to the store; it answers at once, ``in_progress``.

        Send ``chunking_strategy`` with each attach: the store's own is not applied to files
        added later. If an earlier attempt may have been applied and the retry is refused, the
        attachment is looked up: finding it means the first attempt succeeded.
        """
        body = {"file_id": file_id, **_attach_options(attributes, chunking_strategy)}
        return self._create_or_find(
            f"/vector_stores/{vector_store_id}/files",
            VectorStoreFile,
            body,
            lambda: self.retrieve_vector_store_file(vector_store_id, file_id),
        )

    def retrieve_vector_store_file(self, vector_store_id: str, file_id: str) -> VectorStoreFile:
        """The attachment of ``file_id`` to the store: its ingestion status and attributes."""
        return self._get(f"/vector_stores/{vector_store_id}/files/{file_id}", VectorStoreFile)

    def wait_vector_store_file(
        self, vector_store_id: str, file_id: str, *, timeout: float = 300.0
    ) -> VectorStoreFile:
        """Poll the attachment until its ingestion leaves ``in_progress`` or ``timeout``
        seconds pass, and return the last state seen (still ``in_progress`` on timeout: the
        caller reports it, it is not an error of the call)."""
        path = f"/vector_stores/{vector_store_id}/files/{file_id}"
        return self._poll(path, VectorStoreFile, timeout)

    def update_vector_store_file(
        self, vector_store_id: str, file_id: str, attributes: Attributes | None
    ) -> VectorStoreFile:
        """Replace the attachment's ``attributes`` (the file is not ingested again)."""
        return self._call(
            "POST",
            f"/vector_stores/{vector_store_id}/files/{file_id}",
            VectorStoreFile,
            json={"attributes": attributes},
        )

    def delete_vector_store_file(
        self, vector_store_id: str, file_id: str, *, missing_ok: bool = False
    ) -> bool:
        """Detach ``file_id`` from the store (the File itself stays). ``True`` if detached;
        ``False`` if it was not attached (only with ``missing_ok``)."""
        return self._delete(
            f"/vector_stores/{vector_store_id}/files/{file_id}",
            DeletedVectorStoreFile,
            missing_ok=missing_ok,
        )

    def iter_vector_store_files(
        self,
        vector_store_id: str,
        *,
        status: FileStatus | None = None,
        order: Order = "desc",
        page_size: int = 100,
    ) -> Iterator[VectorStoreFile]:
        """Every file attached to the store (only those in ``status`` when given), following
        the cursor to the end."""
        path = f"/vector_stores/{vector_store_id}/files"
        return self._cursor(path, VectorStoreFile, order, page_size, filter=_status(status))

    def retrieve_vector_store_file_content(
        self, vector_store_id: str, file_id: str
    ) -> FileContentPage:
        """The text the store parsed out of ``file_id``."""
        path = f"/vector_stores/{vector_store_id}/files/{file_id}/content"
        return self._get(path, FileContentPage)

    # --- file batches -------------------------------------------------------------------------

    def create_file_batch(
        self,
        vector_store_id: str,
        file_ids: Sequence[str] | None = None,
        *,
        files: Sequence[BatchFile] | None = None,
        attributes: Attributes | None = None,
        chunking_strategy: ChunkingStrategy | None = None,
    ) -> FileBatch:
        """Attach up to 2,000 files in one request: ``file_ids`` (sharing ``attributes`` and
        ``chunking_strategy``) or ``files`` (each with its own), not both.

        One batch counts once against the store's 300 attach requests a minute, where one
        request per file would count 2,000 times. Retried like any call: a batch sent twice
        attaches the same files, which the store holds once.
        """
        if (file_ids is None) == (files is None):
            raise ValueError("give file_ids or files, not both and not neither")
        count = len(file_ids if file_ids is not None else files or ())
        if not 1 <= count <= MAX_BATCH_FILES:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_FILES} files, not {count}")
        body: dict[str, Any]
        if file_ids is not None:
            body = {"file_ids": list(file_ids), **_attach_options(attributes, chunking_strategy)}
        else:
            if attributes is not None or chunking_strategy is not None:
                raise ValueError("with files, give attributes and chunking_strategy per file")
            body = {"files": [_dump(f) for f in files or ()]}
        return self._call(
            "POST", f"/vector_stores/{vector_store_id}/file_batches", FileBatch, json=body
        )

    def retrieve_file_batch(self, vector_store_id: str, batch_id: str) -> FileBatch:
        """The batch ``batch_id``: its status and file counts."""
        return self._get(f"/vector_stores/{vector_store_id}/file_batches/{batch_id}", FileBatch)

    def wait_file_batch(
        self, vector_store_id: str, batch_id: str, *, timeout: float = 300.0
    ) -> FileBatch:
        """Poll the batch until it leaves ``in_progress`` or ``timeout`` seconds pass, and
        return the last state seen (see :meth:`wait_vector_store_file`)."""
        path = f"/vector_stores/{vector_store_id}/file_batches/{batch_id}"
        return self._poll(path, FileBatch, timeout)

    def cancel_file_batch(self, vector_store_id: str, batch_id: str) -> FileBatch:
        """Cancel the batch: files not yet ingested end ``cancelled``."""
        path = f"/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel"
        return self._call("POST", path, FileBatch)

    def iter_file_batch_files(
        self,
        vector_store_id: str,
        batch_id: str,
        *,
        status: FileStatus | None = None,
        order: Order = "desc",
        page_size: int = 100,
    ) -> Iterator[VectorStoreFile]:
        """Every file of the batch (only those in ``status`` when given), following the
        cursor to the end."""
        path = f"/vector_stores/{vector_store_id}/file_batches/{batch_id}/files"
        return self._cursor(path, VectorStoreFile, order, page_size, filter=_status(status))

    # --- search -------------------------------------------------------------------------------

    def search_vector_store(
        self,
        vector_store_id: str,
        query: str | Sequence[str],
        *,
        filters: ComparisonFilter | CompoundFilter | None = None,
        max_num_results: int | None = None,
        rewrite_query: bool | None = None,
    ) -> SearchResults:
        """The store's files that match ``query`` (and ``filters`` on their attributes), best
        first, at most ``max_num_results`` (1–50; the service's default is 10)."""
        if max_num_results is not None and not 1 <= max_num_results <= 50:
            raise ValueError(f"max_num_results must be between 1 and 50, not {max_num_results}")
        body: dict[str, Any] = {"query": query if isinstance(query, str) else list(query)}
        if filters is not None:
            body["filters"] = _dump(filters)
        if max_num_results is not None:
            body["max_num_results"] = max_num_results
        if rewrite_query is not None:
            body["rewrite_query"] = rewrite_query
        path = f"/vector_stores/{vector_store_id}/search"
        return self._call("POST", path, SearchResults, json=body)

    # --- assistant files ----------------------------------------------------------------------

    def iter_assistant_files(
        self, assistant_id: str, *, order: str = "asc", page_size: int = 100
    ) -> Iterator[AssistantFile]:
        """Every file attached to ``assistant_id``, following the cursor to the end."""
        return self._cursor(f"/assistants/{assistant_id}/files", AssistantFile, order, page_size)

    def create_assistant_file(self, assistant_id: str, file_id: str) -> AssistantFile:
        """Attach ``file_id`` to ``assistant_id``.

        If an earlier attempt of this call may have been applied and the retry is refused, the
        attachment is looked up: finding it means the first attempt succeeded.
        """
        return self._create_or_find(
            f"/assistants/{assistant_id}/files",
            AssistantFile,
            {"file_id": file_id},
            lambda: self.get_assistant_file(assistant_id, file_id),
        )

    def get_assistant_file(self, assistant_id: str, file_id: str) -> AssistantFile:
        """The attachment of ``file_id`` to ``assistant_id``."""
        return self._get(f"/assistants/{assistant_id}/files/{file_id}", AssistantFile)

    def delete_assistant_file(
        self, assistant_id: str, file_id: str, *, missing_ok: bool = False
    ) -> bool:
        """Detach ``file_id`` from ``assistant_id`` (the file itself stays). ``True`` if
        detached; ``False`` if it was not attached (only with ``missing_ok``)."""
        return self._delete(
            f"/assistants/{assistant_id}/files/{file_id}",
            DeletedAssistantFile,
            missing_ok=missing_ok,
        )

    # --- message files ------------------------------------------------------------------------

    def iter_message_files(
        self, thread_id: str, message_id: str, *, order: str = "asc", page_size: int = 100
    ) -> Iterator[MessageFile]:
        """Every file attached to a message, following the cursor to the end."""
        path = f"/threads/{thread_id}/messages/{message_id}/files"
        return self._cursor(path, MessageFile, order, page_size)

    def get_message_file(self, thread_id: str, message_id: str, file_id: str) -> MessageFile:
        """The attachment of ``file_id`` to a message."""
        return self._get(f"/threads/{thread_id}/messages/{message_id}/files/{file_id}", MessageFile)

    # --- assistants, threads, messages (for `syncd check`, tests and demos) -------------------

    def create_assistant(
        self,
        model: str = "gpt-4-turbo",
        name: str | None = None,
        file_ids: Collection[str] = (),
        tools: list[dict[str, Any]] | None = None,
    ) -> Assistant:
        """Create an assistant. ``tools`` defaults to retrieval, which attaching files needs."""
        body: dict[str, Any] = {
            "model": model,
            "file_ids": list(file_ids),
            "tools": tools if tools is not None else [{"type": "retrieval"}],
        }
        if name is not None:
            body["name"] = name
        return self._call("POST", "/assistants", Assistant, json=body)

    def retrieve_assistant(self, assistant_id: str) -> Assistant:
        """The assistant ``assistant_id``."""
        return self._get(f"/assistants/{assistant_id}", Assistant)

    def create_thread(self) -> Thread:
        """Create an empty thread."""
        return self._call("POST", "/threads", Thread, json={})

    def create_message(
        self, thread_id: str, content: str, file_ids: Collection[str] = ()
    ) -> Message:
        """Add a user message with ``file_ids`` attached to ``thread_id``."""
        body = {"role": "user", "content": content, "file_ids": list(file_ids)}
        return self._call("POST", f"/threads/{thread_id}/messages", Message, json=body)

    # --- plumbing -----------------------------------------------------------------------------

    def _post_file(
        self, source: Path | bytes, purpose: str, filename: str, expires_after: int | None
    ) -> FileObject:
        """``POST /files``: the file in one request, streamed from disk (``source`` a path) or
        sent from memory (``source`` the bytes).

        Retried only while nothing can have been stored (no connection made, 408, 409, 429).
        """
        data = {"purpose": purpose, **_file_expiry_form(expires_after)}
        with contextlib.ExitStack() as stack:
            send: Callable[[], FileObject]
            if isinstance(source, bytes):
                # In memory: the form is built here in one piece, cheaper than httpx2's
                # field-by-field stream (a small upload's body is mostly its form).
                body, content_type = _form_body(data, filename, source)
                size = len(source)

                def send() -> FileObject:
                    return self._post_bytes("/files", body, content_type, FileObject)

            else:
                fh = stack.enter_context(source.open("rb"))
                form = {"files": {"file": (filename, fh)}, "data": data}
                size = os.fstat(fh.fileno()).st_size

                def send() -> FileObject:
                    return self._parse(self._exchange("POST", "/files", **form), FileObject)

            def attempt() -> FileObject:
                sent_at = time.time()
                try:
                    return send()
                except APIError as error:
                    if _may_have_reached_service(error):
                        raise UploadOutcomeUnknown(
                            filename=filename,
                            size=size,
                            purpose=purpose,
                            sent_at=sent_at,
                            cause=error,
                        ) from error
                    raise

            return self._retrying(attempt, "POST /files")

    def _retrying(
        self,
        attempt: Callable[[], T],
        what: str,
        trace: _CallTrace | None = None,
    ) -> T:
        def traced() -> T:
            try:
                return attempt()
            except APIError as error:
                if trace is not None:
                    trace.note(error)
                raise

        if trace is None:
            traced = attempt  # (one call less on every request of every upload)

        # Most calls succeed at once: the first attempt is made here, and the retry machinery
        # (a tenacity.Retrying per call, a tenth of a small upload's cost) is built only when
        # it fails. It then starts from that failure, as if it had made the attempt itself.
        start = self._clock()
        try:
            return traced()
        except APIError as error:
            first: APIError | None = error

        def resumed() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return traced()

        policy = retrying(self.retry, sleep=self._sleep, clock=self._clock, what=what, start=start)
        return policy(resumed)

    def _call(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        trace: _CallTrace | None = None,
    ) -> ModelT:
        return self._call_with_hint(method, path, model, params=params, json=json, trace=trace)[0]

    def _call_with_hint(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        trace: _CallTrace | None = None,
    ) -> tuple[ModelT, float | None]:
        """:meth:`_call`, also returning the answer's ``openai-poll-after-ms`` in seconds."""

        def attempt() -> tuple[ModelT, float | None]:
            response = self._exchange(method, path, params=params, json=json)
            return self._parse(response, model), poll_after(response.headers)

        return self._retrying(attempt, f"{method} {path}", trace)

    def _create_or_find(
        self, path: str, model: type[ModelT], body: dict[str, Any], find: Callable[[], ModelT]
    ) -> ModelT:
        """POST an attachment; if a retry is refused after an attempt that may have been
        applied, ``find`` the attachment that attempt made (re-raising if there is none)."""
        trace = _CallTrace()
        try:
            return self._call("POST", path, model, json=body, trace=trace)
        except BadRequestError:
            if not trace.maybe_applied:
                raise
            with contextlib.suppress(NotFoundError):
                return find()
            raise

    def _poll(self, path: str, model: type[PolledT], timeout: float) -> PolledT:
        """GET ``path`` until its ``status`` is not ``in_progress``, as :func:`poll_until`."""
        return poll_until(
            lambda: self._call_with_hint("GET", path, model),
            lambda state: state.status != "in_progress",
            timeout=timeout,
            clock=self._clock,
            sleep=self._sleep,
        )

    def _get(self, path: str, model: type[ModelT]) -> ModelT:
        return self._call("GET", path, model)

    def _delete(self, path: str, model: type[pydantic.BaseModel], *, missing_ok: bool) -> bool:
        trace = _CallTrace()
        try:
            self._call("DELETE", path, model, trace=trace)
        except NotFoundError:
            # Gone after an attempt that may have gone through: that attempt deleted it.
            if trace.maybe_applied:
                return True
            if missing_ok:
                return False
            raise
        return True

    def _pages(self, path: str, model: type[ModelT], params: dict[str, Any]) -> Iterator[ModelT]:
        """Items of a list, following ``after`` while ``has_more`` and the page is not empty.
        Parameters that are ``None`` are not sent."""

        def fetch(query: dict[str, Any]) -> tuple[list[ModelT], bool, str | None]:
            page = self._call("GET", path, Page[model], params=query)  # type: ignore[valid-type]
            last = (page.last_id or page.data[-1].id) if page.data else None  # type: ignore[attr-defined]
            return page.data, page.has_more, last

        for items in self._follow(path, params, fetch):
            yield from items

    def _follow(
        self,
        path: str,
        params: dict[str, Any],
        fetch: Callable[[dict[str, Any]], tuple[T, bool, str | None]],
        *,
        ahead: bool = False,
    ) -> Iterator[T]:
        """The pages of a list: ``fetch`` asks for one (with ``after`` once there is a cursor)
        and returns it, its ``has_more`` and its last id (``None`` when it is empty).
        Parameters that are ``None`` are not sent. ``ahead``: the next page is asked for, on a
        thread, while the caller takes this one."""
        params = {key: value for key, value in params.items() if value is not None}
        pool = ThreadPoolExecutor(1, thread_name_prefix="syncd-page") if ahead else None

        def ask(query: dict[str, Any]) -> Callable[[], tuple[T, bool, str | None]]:
            if pool is None:
                return functools.partial(fetch, query)
            return pool.submit(fetch, query).result

        try:
            pending = ask(params)
            after: str | None = None
            while True:
                page, has_more, last = pending()
                more = has_more and last is not None
                if more:
                    if last == after:
                        raise APIError(
                            f"the service repeated the page after {last}", method="GET", path=path
                        )
                    after = last
                    pending = ask({**params, "after": after})
                yield page
                if not more:
                    return
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _cursor(
        self, path: str, model: type[ModelT], order: str, page_size: int, **params: Any
    ) -> Iterator[ModelT]:
        """A list of the assistants and vector-store families: ``limit`` 1–100."""
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, not {page_size}")
        return self._pages(path, model, {"limit": page_size, "order": _order(order), **params})

    def _download(self, path: str, out: IO[bytes]) -> int:
        try:
            start = out.tell()
        except (OSError, ValueError):
            start = None
        written = 0

        def attempt() -> int:
            nonlocal written
            if written:
                if start is None:
                    # Not a TransportError: retrying cannot help, the bytes are already out.
                    raise APIError(
                        f"download broke after {written} bytes and the destination cannot "
                        "be rewound",
                        method="GET",
                        path=path,
                    )
                out.seek(start)
                out.truncate()
                written = 0
            with self._exchange_stream("GET", path) as response:
                try:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
                except httpx2.TransportError as exc:
                    raise self._transport_error(exc, "GET", path) from exc
            return written

        return self._retrying(attempt, f"GET {path}")

    def _parse(self, response: httpx2.Response, model: type[ModelT]) -> ModelT:
        return _parsed(
            response.content,
            model,
            response.status_code,
            response.headers.get("x-request-id"),
            response.request.method,
            response.request.url.path,
        )

    def _exchange(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """Send one request and read the whole answer; raise an :class:`APIError` unless 2xx."""
        with self._exchange_stream(method, path, **kwargs) as response:
            try:
                response.read()
            except httpx2.TransportError as exc:
                raise self._transport_error(exc, method, path) from exc
        return response

    @contextlib.contextmanager
    def _exchange_stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx2.Response]:
        """Send one request, paced if the service limits it; yield the 2xx response with its
        body unread, or raise."""
        with _Turn(self.pacer, bucket_of(method, path), self.retry.retry_after_cap) as turn:
            on_answer = None if turn.bucket is None else turn.answered
            with self._send(method, path, on_answer=on_answer, **kwargs) as response:
                yield response

    def _post_bytes(self, path: str, body: bytes, content_type: str, model: type[ModelT]) -> ModelT:
        """POST ``body`` (in memory, of ``content_type``), paced; the 2xx answer as ``model``,
        or raise as :meth:`_exchange` does.

        With the lean transport (:mod:`syncd.api.wire`), the request goes to it directly and
        the answer comes back whole, past httpx2's request, client and response layers, which
        cost a small upload more CPU than the exchange itself: the same headers are sent as
        httpx2 would send, and the same errors come back. Without it (a proxy, a transport
        given), it goes through :meth:`_exchange`."""
        if self._wire is None:
            form = {"Content-Type": content_type}
            return self._parse(self._exchange("POST", path, content=body, headers=form), model)
        url = _parsed_url(self.base_url + path)
        raw = [
            (b"Host", url.netloc),
            *self._wire_headers,
            self._auth.raw_header(),
            *((name.encode(), value.encode()) for name, value in _beta_header(path).items()),
            (b"Content-Type", content_type.encode()),
            (b"Content-Length", b"%d" % len(body)),
        ]
        started = self._clock()
        with _Turn(self.pacer, bucket_of("POST", path), self.retry.retry_after_cap) as turn:
            try:
                answer = self._wire.send_bytes("POST", url, raw, body, self._wire_timeouts)
            except httpx2.TransportError as exc:
                raise self._no_answer(exc, "POST", path, started) from exc
            # The few headers read here are never repeated: a dict of the last of each will do.
            headers = {
                name.decode("latin-1").lower(): v.decode("latin-1") for name, v in answer.headers
            }
            turn.answered(headers)
            request_id = headers.get("x-request-id")
            success = 200 <= answer.status < 300
            if success and "content-encoding" not in headers:
                self._record("POST", path, answer.status, started, request_id)
                return _parsed(answer.content, model, answer.status, request_id, "POST", url.path)
            # A refusal, or an answer compressed although none was asked for: as httpx2 reads
            # it (decoded), and as any other answer is judged.
            response = httpx2.Response(
                answer.status,
                headers=answer.headers,
                content=answer.content,
                request=_bare_request("POST", url),
                extensions={"http_version": answer.http_version, "reason_phrase": answer.reason},
            )
            if not success:
                raise self._refusal(response, "POST", path, started)
            self._record("POST", path, answer.status, started, request_id)
            return self._parse(response, model)

    @contextlib.contextmanager
    def _send(
        self,
        method: str,
        path: str,
        *,
        on_answer: Callable[[httpx2.Headers], None] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx2.Response]:
        """Send one request; yield the 2xx response with its body unread, or raise.
        ``on_answer`` is given the headers of any answer, whatever its status."""
        # The whole URL in one parse: given the bare path, httpx2 parses it, then the base URL
        # merged with it (a third of the cost of building a small request). Same URL.
        url = _parsed_url(self.base_url + path)
        headers = {**_beta_header(path), **(headers or {})}
        started = self._clock()
        try:
            request = self._http.build_request(method, url, headers=headers, **kwargs)
            if isinstance(request.stream, httpx2.SyncByteStream):
                request.stream = _JoinedBody(request.stream)
            response = self._http.send(request, stream=True)
        except httpx2.TransportError as exc:
            raise self._no_answer(exc, method, path, started) from exc
        if on_answer is not None:
            on_answer(response.headers)
        try:
            if response.is_success:
                request_id = response.headers.get("x-request-id")
                self._record(method, path, response.status_code, started, request_id)
                yield response
                return
            try:
                response.read()
            except httpx2.TransportError as exc:
                raise self._transport_error(exc, method, path) from exc
            raise self._refusal(response, method, path, started)
        finally:
            response.close()

    def _no_answer(
        self, exc: httpx2.TransportError, method: str, path: str, started: float
    ) -> TransportError:
        """The error of a request that got no answer (recorded)."""
        failure = self._transport_error(exc, method, path)
        self._record(method, path, None, started, None, str(failure))
        return failure

    def _refusal(
        self, response: httpx2.Response, method: str, path: str, started: float
    ) -> APIError:
        """The error of an answer that is not 2xx, its body read (recorded)."""
        error = error_from_response(response, secret=self._secret)
        request_id = response.headers.get("x-request-id")
        self._record(method, path, response.status_code, started, request_id, str(error))
        return error

    def _transport_error(
        self, exc: httpx2.TransportError, method: str, path: str
    ) -> TransportError:
        return error_from_transport(exc, method=method, path=path, secret=self._secret)

    def _record(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        request_id: str | None,
        error: str | None = None,
    ) -> None:
        duration = self._clock() - started
        log.debug(
            "%s %s -> %s in %.3f s%s%s",
            method,
            path,
            status if status is not None else "no response",
            duration,
            f" (request {request_id})" if request_id else "",
            f": {error}" if error else "",
        )
        if self.request_log is not None:
            self.request_log(RequestRecord(method, path, status, duration, request_id, error))


__all__ = ["DEFAULT_BASE_URL", "FILE_ROWS", "Client", "FilePage", "RequestRecord"]
