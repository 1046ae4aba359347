"""The one way syncd talks to the service: a typed, retrying client over one ``httpx2.Client``.

Every operation of ``spec/openai-files.yaml`` is a method returning pydantic models; cursor lists
are iterators. Failures raise the hierarchy in :mod:`syncd.api.errors`; retries follow a
:class:`~syncd.api.retry.RetryPolicy`. Uploads stream from disk and downloads stream to disk, so
memory stays flat whatever the file size.

Two rules go beyond "retry what failed":

* An upload is never sent twice blindly. Once its body may have reached the service, a dropped
  connection, a timeout or a 5xx raises :class:`UploadOutcomeUnknown`; the caller looks for the
  file with :meth:`Client.find_upload` before sending it again.
* A retried delete or attach whose earlier attempt may have been applied reads the service's
  "not found" / "already there" answer as the success it most likely is.

The API key lives only in the auth hook that writes the ``Authorization`` header; no repr,
log line or exception text built here contains it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

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
    DeletedAssistantFile,
    DeletedFile,
    FileObject,
    Message,
    MessageFile,
    Page,
    Thread,
)
from syncd.api.retry import RetryPolicy, retrying

log = logging.getLogger("syncd.api")

DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: ``created_at`` is whole seconds and the service's clock is not ours: how far before an
#: upload's send time a matching file may claim to have been created.
CLOCK_SKEW_SLACK = 2.0

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
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

    def auth_flow(self, request: httpx2.Request) -> Iterator[httpx2.Request]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request


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


def _beta_header(path: str) -> dict[str, str]:
    # The Assistants v1 surface answers only when this header is present; /files must not get it.
    if path.startswith(("/assistants", "/threads")):
        return {"OpenAI-Beta": "assistants=v1"}
    return {}


class Client:
    """A client for the Files, Assistant-files and Message-files operations.

    ``base_url``, ``api_key`` and ``organization`` fall back to ``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY`` and ``OPENAI_ORG_ID``. Plain ``http://`` is refused for any host but
    loopback unless ``allow_insecure_http``. ``connect_timeout`` bounds making a connection;
    ``timeout`` bounds each read, write and wait for a pooled connection. ``sleep`` and ``clock``
    (monotonic seconds) are what retries wait with and measure their deadline by.

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
        self._secret = api_key
        self._sleep = sleep
        self._clock = clock
        headers = {"User-Agent": f"syncd/{__version__} httpx2/{httpx2.__version__}"}
        if organization:
            headers["OpenAI-Organization"] = organization
        self._http = httpx2.Client(
            base_url=self.base_url,
            auth=_BearerAuth(api_key),
            headers=headers,
            timeout=httpx2.Timeout(timeout, connect=connect_timeout),
            limits=httpx2.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

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
        """All files of the organization, optionally only those with ``purpose``.

        The spec's ``listFiles`` has no cursor; should the service return ``has_more`` (as its
        newer versions do), the remaining pages are fetched with ``after``.
        """
        params: dict[str, Any] = {"purpose": purpose} if purpose else {}
        return list(self._pages("/files", FileObject, params))

    def create_file(self, path: Path, purpose: str, filename: str | None = None) -> FileObject:
        """Upload the file at ``path`` (streamed from disk) as ``filename`` (default: its name).

        Retried only while nothing can have been stored (no connection made, 408, 409, 429).
        Raises :class:`UploadOutcomeUnknown` when the body went out and no clear answer came back.
        """
        path = Path(path)
        filename = filename or path.name
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size

            def attempt() -> FileObject:
                sent_at = time.time()
                try:
                    response = self._exchange(
                        "POST",
                        "/files",
                        files={"file": (filename, fh)},
                        data={"purpose": purpose},
                    )
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
                return self._parse(response, FileObject)

            return self._retrying(attempt, "POST /files")

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

    def find_upload(
        self,
        filename: str,
        bytes: int,
        purpose: str,
        not_before: float,
        exclude: Collection[str] = (),
    ) -> FileObject | None:
        """The newest file that an upload sent at ``not_before`` (unix seconds) may have stored.

        It must match ``filename``, ``bytes`` and ``purpose``, have been created no earlier than
        ``not_before`` less :data:`CLOCK_SKEW_SLACK`, and not be one of ``exclude`` (ids already
        owned by something else).
        """
        earliest = not_before - CLOCK_SKEW_SLACK
        matches = [
            f
            for f in self.list_files(purpose)
            if f.filename == filename
            and f.bytes == bytes
            and f.purpose == purpose
            and f.created_at >= earliest
            and f.id not in exclude
        ]
        return max(matches, key=lambda f: f.created_at, default=None)

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
        path = f"/assistants/{assistant_id}/files"
        trace = _CallTrace()
        try:
            return self._call("POST", path, AssistantFile, json={"file_id": file_id}, trace=trace)
        except BadRequestError:
            if not trace.maybe_applied:
                raise
            with contextlib.suppress(NotFoundError):
                return self.get_assistant_file(assistant_id, file_id)
            raise

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

        policy = retrying(self.retry, sleep=self._sleep, clock=self._clock, what=what)
        return policy(traced)

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
        def attempt() -> ModelT:
            response = self._exchange(method, path, params=params, json=json)
            return self._parse(response, model)

        return self._retrying(attempt, f"{method} {path}", trace)

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
        """Items of a list, following ``after`` while ``has_more`` and the page is not empty."""
        after: str | None = None
        while True:
            query = {**params, "after": after} if after else params
            page = self._call("GET", path, Page[model], params=query)  # type: ignore[valid-type]
            yield from page.data
            if not page.has_more or not page.data:
                return
            cursor = page.last_id or page.data[-1].id  # type: ignore[attr-defined]
            if cursor == after:
                raise APIError(
                    f"the service repeated the page after {cursor}", method="GET", path=path
                )
            after = cursor

    def _cursor(
        self, path: str, model: type[ModelT], order: str, page_size: int
    ) -> Iterator[ModelT]:
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, not {page_size}")
        return self._pages(path, model, {"limit": page_size, "order": order})

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
        try:
            return model.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise APIError(
                f"unexpected response: {exc.error_count()} field error(s), first: "
                f"{exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc']))}",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                method=response.request.method,
                path=response.request.url.path,
            ) from None

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
        """Send one request; yield the 2xx response with its body unread, or raise."""
        request = self._http.build_request(method, path, headers=_beta_header(path), **kwargs)
        started = self._clock()
        try:
            response = self._http.send(request, stream=True)
        except httpx2.TransportError as exc:
            error = self._transport_error(exc, method, path)
            self._record(method, path, None, started, None, str(error))
            raise error from exc
        try:
            request_id = response.headers.get("x-request-id")
            if response.is_success:
                self._record(method, path, response.status_code, started, request_id)
                yield response
                return
            try:
                response.read()
            except httpx2.TransportError as exc:
                raise self._transport_error(exc, method, path) from exc
            error = error_from_response(response, secret=self._secret)
            self._record(method, path, response.status_code, started, request_id, str(error))
            raise error
        finally:
            response.close()

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


__all__ = ["DEFAULT_BASE_URL", "Client", "RequestRecord"]
