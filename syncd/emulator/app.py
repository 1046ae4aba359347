"""The emulator's ASGI application: the Files, Assistant-files and Message-files operations of
the contract, the few assistant, thread and message operations that make them usable, today's
vector stores and Uploads (``vector_store_routes.py``, ``multipart.py``), and the admin endpoints
under ``/_emulator``.

Layers, outermost first: ``RequestLog`` (request ids, the request log), ``RateLimitMiddleware``
(the service's budgets, when on), ``FaultMiddleware`` (injected faults), ``Gate`` (API key and
``OpenAI-Beta`` checks), then the routes.

Beside the ASGI application, ``DirectRoutes``: small uploads, which the HTTP server
(``server.py``) answers itself when those layers would do nothing but the gate and the log.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.emulator import errors, ids
from syncd.emulator.bodies import (
    check_file_expiry,
    json_object,
    list_of,
    metadata,
    optional_str,
    required_str,
)
from syncd.emulator.errors import ApiError
from syncd.emulator.faults import FAULT_SCOPE_KEY, FaultInjector, FaultMiddleware, Faults
from syncd.emulator.jsonl import first_bad_line
from syncd.emulator.knobs import KnobHolder, Knobs
from syncd.emulator.multipart_uploads import Uploads, upload_routes
from syncd.emulator.pagination import list_response, paginate, parse_page_request
from syncd.emulator.ratelimits import RateLimiter, RateLimitMiddleware
from syncd.emulator.store import FileRecord, NewMessage, Store
from syncd.emulator.uploads import WHOLE_BODY_BYTES, Upload, read_upload, receive_upload
from syncd.emulator.vector_store_routes import vector_store_routes
from syncd.emulator.vector_stores import VectorStores

log = logging.getLogger("syncd.emulator")

API_PREFIX = "/v1"
ADMIN_PREFIX = "/_emulator"
#: Upload purposes, in the order the service's error message lists them.
PURPOSES = ("fine-tune", "assistants", "batch", "user_data", "vision", "evals")
#: ``GET /files`` pages: up to 10,000 files, all of them by default.
FILES_PAGE_LIMIT = 10_000

DOWNLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """What the routes need besides the store."""

    api_key: str | None
    max_file_bytes: int
    processing_delay: float


@dataclass(frozen=True, slots=True)
class EmulatorApp:
    """The emulator as an ASGI application, and the requests its server may answer directly."""

    asgi: ASGIApp
    direct: DirectRoutes


def create_app(
    store: Store,
    injector: FaultInjector,
    settings: Settings,
    *,
    initial_faults: Faults,
    knobs: KnobHolder | None = None,
    initial_knobs: Knobs | None = None,
) -> EmulatorApp:
    """The whole emulator: one ASGI application, and the direct routes beside it."""
    knobs = knobs or KnobHolder(initial_knobs)
    limiter = RateLimiter()
    routes = _Routes(
        store, injector, settings, initial_faults, knobs, initial_knobs or Knobs(), limiter
    )
    vector_stores = VectorStores(store, knobs)
    uploads = Uploads(store, knobs, settings.processing_delay)
    v1 = API_PREFIX
    starlette = Starlette(
        routes=[
            Route(f"{v1}/files", routes.list_files, methods=["GET"]),
            Route(f"{v1}/files", routes.create_file, methods=["POST"]),
            Route(f"{v1}/files/{{file_id}}", routes.retrieve_file, methods=["GET"]),
            Route(f"{v1}/files/{{file_id}}", routes.delete_file, methods=["DELETE"]),
            Route(f"{v1}/files/{{file_id}}/content", routes.download_file, methods=["GET"]),
            Route(f"{v1}/assistants", routes.list_assistants, methods=["GET"]),
            Route(f"{v1}/assistants", routes.create_assistant, methods=["POST"]),
            Route(f"{v1}/assistants/{{assistant_id}}", routes.get_assistant, methods=["GET"]),
            Route(f"{v1}/assistants/{{assistant_id}}", routes.delete_assistant, methods=["DELETE"]),
            Route(
                f"{v1}/assistants/{{assistant_id}}/files",
                routes.list_assistant_files,
                methods=["GET"],
            ),
            Route(
                f"{v1}/assistants/{{assistant_id}}/files",
                routes.create_assistant_file,
                methods=["POST"],
            ),
            Route(
                f"{v1}/assistants/{{assistant_id}}/files/{{file_id}}",
                routes.get_assistant_file,
                methods=["GET"],
            ),
            Route(
                f"{v1}/assistants/{{assistant_id}}/files/{{file_id}}",
                routes.delete_assistant_file,
                methods=["DELETE"],
            ),
            Route(f"{v1}/threads", routes.create_thread, methods=["POST"]),
            Route(f"{v1}/threads/{{thread_id}}", routes.get_thread, methods=["GET"]),
            Route(f"{v1}/threads/{{thread_id}}/messages", routes.create_message, methods=["POST"]),
            Route(
                f"{v1}/threads/{{thread_id}}/messages/{{message_id}}",
                routes.get_message,
                methods=["GET"],
            ),
            Route(
                f"{v1}/threads/{{thread_id}}/messages/{{message_id}}/files",
                routes.list_message_files,
                methods=["GET"],
            ),
            Route(
                f"{v1}/threads/{{thread_id}}/messages/{{message_id}}/files/{{file_id}}",
                routes.get_message_file,
                methods=["GET"],
            ),
            *vector_store_routes(v1, vector_stores, knobs),
            *upload_routes(v1, uploads),
            Route(f"{ADMIN_PREFIX}/faults", routes.get_faults, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/faults", routes.put_faults, methods=["PUT"]),
            Route(f"{ADMIN_PREFIX}/settings", routes.get_settings, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/settings", routes.put_settings, methods=["PUT"]),
            Route(f"{ADMIN_PREFIX}/reset", routes.reset, methods=["POST"]),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _invalid_url,
            Exception: _internal_error,
        },
    )
    gated = Gate(starlette, api_key=settings.api_key, knobs=knobs)
    faulted = FaultMiddleware(gated, injector, admin_prefix=ADMIN_PREFIX)
    direct = DirectRoutes(
        {(b"POST", f"{v1}/files".encode()): routes.create_small_file}, gated, injector, knobs
    )
    return EmulatorApp(
        RequestLog(RateLimitMiddleware(faulted, limiter, knobs, admin_prefix=ADMIN_PREFIX)), direct
    )


class _Routes:
    """The endpoints; each one is a thin translation between HTTP and the store."""

    def __init__(
        self,
        store: Store,
        injector: FaultInjector,
        settings: Settings,
        initial_faults: Faults,
        knobs: KnobHolder,
        initial_knobs: Knobs,
        limiter: RateLimiter,
    ) -> None:
        self.store = store
        self.injector = injector
        self.settings = settings
        self.initial_faults = initial_faults
        self.knobs = knobs
        self.initial_knobs = initial_knobs
        self.limiter = limiter

    # --- files ------------------------------------------------------------------------------

    async def list_files(self, request: Request) -> Response:
        page = parse_page_request(
            request.query_params, default_limit=FILES_PAGE_LIMIT, max_limit=FILES_PAGE_LIMIT
        )
        purpose = request.query_params.get("purpose") or None
        files = self.store.files_page(purpose, page)
        return list_response(
            files.items, first_id=files.first_id, last_id=files.last_id, has_more=files.has_more
        )

    async def create_file(self, request: Request) -> Response:
        incoming = self.store.incoming_path()
        try:
            upload = await receive_upload(
                request.headers.get("content-type"),
                request.stream(),
                incoming,
                self.settings.max_file_bytes,
            )
            form = self._file_form(upload)
            if form.purpose == "fine-tune":
                # Reading a large file line by line would stall every other request on the
                # event loop.
                bad_line = await run_in_threadpool(first_bad_line, incoming)
                _check_fine_tune_lines(bad_line)
            record = self._add_file(incoming, upload.size, form)
        except BaseException:
            incoming.unlink(missing_ok=True)  # a stored upload's is its blob now
            raise
        return JSONResponse(record.to_api(self.store.clock()))

    def create_small_file(self, scope: Scope, body: bytes) -> Response:
        """``create_file`` for the server's direct path: the same upload, its body (at most
        ``WHOLE_BODY_BYTES``) already read whole, the file's bytes written once, to its blob."""
        upload = read_upload(_header(scope, b"content-type"), body, self.settings.max_file_bytes)
        form = self._file_form(upload)
        assert upload.content is not None  # a file was sent, within the limit: _file_form
        if form.purpose == "fine-tune":
            _check_fine_tune_lines(first_bad_line(upload.content))
        record = self._add_file(upload.content, upload.size, form)
        return JSONResponse(record.to_api(self.store.clock()))

    def _file_form(self, upload: Upload) -> _FileForm:
        """The upload's purpose and expiry, or the service's 400 for what is wrong with it."""
        for name in upload.fields:
            if name not in ("purpose", "file", *_EXPIRES_AFTER_FIELDS):
                raise errors.unrecognized_argument(name)
        purpose = upload.fields.get("purpose")
        if purpose is None:
            raise errors.missing_parameter("purpose")
        if purpose not in PURPOSES:
            raise errors.invalid_purpose(purpose, PURPOSES)
        expires_after = _form_expires_after(upload.fields)
        if upload.filename is None:
            raise errors.missing_parameter("file")
        if upload.too_large:
            raise ApiError(
                400,
                f"File is too large ({upload.size} bytes). The maximum file size is "
                f"{_human_bytes(self.settings.max_file_bytes)}.",
                param="file",
            )
        if upload.size == 0:
            raise ApiError(400, "File is empty. Please upload a file with content.", param="file")
        if purpose == "fine-tune" and not upload.filename.endswith(".jsonl"):
            raise ApiError(
                400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file"
            )
        return _FileForm(upload.filename, purpose, expires_after)

    def _add_file(self, incoming: Path | bytes, size: int, form: _FileForm) -> FileRecord:
        return self.store.add_file(
            filename=form.filename,
            purpose=form.purpose,
            size=size,
            incoming=incoming,
            processing_delay=self.settings.processing_delay,
            expires_after=form.expires_after,
        )

    async def retrieve_file(self, request: Request) -> Response:
        record = self.store.get_file(request.path_params["file_id"])
        return JSONResponse(record.to_api(self.store.clock()))

    async def delete_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        self.store.delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def download_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        record = self.store.get_file(file_id)
        if record.purpose == "assistants":
            raise ApiError(400, "Not allowed to download files of purpose: assistants.")
        try:
            # Opened here, so that a delete racing with this download cannot cut it short.
            handle = self.store.blob_path(file_id).open("rb")
        except FileNotFoundError:
            raise errors.file_not_found(file_id) from None
        return StreamingResponse(
            _read_chunks(handle),
            media_type="application/octet-stream",
            headers={"content-length": str(record.bytes)},
        )

    # --- assistants -------------------------------------------------------------------------

    async def create_assistant(self, request: Request) -> Response:
        body = await json_object(
            request,
            {"model", "name", "description", "instructions", "tools", "file_ids", "metadata"},
        )
        model = required_str(body, "model")
        record = self.store.create_assistant(
            model=model,
            name=optional_str(body, "name"),
            description=optional_str(body, "description"),
            instructions=optional_str(body, "instructions"),
            tools=list_of(body, "tools", dict, "an array of objects"),
            metadata=metadata(body),
            file_ids=list_of(body, "file_ids", str, "an array of strings"),
        )
        return JSONResponse(record.to_api())

    async def list_assistants(self, request: Request) -> Response:
        page = parse_page_request(request.query_params)
        assistants = self.store.list_assistants()
        return paginate(assistants, page, item_id=lambda a: a.id, render=lambda a: a.to_api())

    async def get_assistant(self, request: Request) -> Response:
        return JSONResponse(self.store.get_assistant(request.path_params["assistant_id"]).to_api())

    async def delete_assistant(self, request: Request) -> Response:
        assistant_id = request.path_params["assistant_id"]
        self.store.delete_assistant(assistant_id)
        return JSONResponse({"id": assistant_id, "object": "assistant.deleted", "deleted": True})

    async def list_assistant_files(self, request: Request) -> Response:
        page = parse_page_request(request.query_params)
        attachments = self.store.assistant_files(request.path_params["assistant_id"])
        return paginate(
            attachments,
            page,
            item_id=lambda a: a.file_id,
            render=lambda a: a.to_assistant_file(),
        )

    async def create_assistant_file(self, request: Request) -> Response:
        body = await json_object(request, {"file_id"})
        file_id = required_str(body, "file_id")
        attachment = self.store.attach_to_assistant(request.path_params["assistant_id"], file_id)
        return JSONResponse(attachment.to_assistant_file())

    async def get_assistant_file(self, request: Request) -> Response:
        attachment = self.store.get_assistant_file(
            request.path_params["assistant_id"], request.path_params["file_id"]
        )
        return JSONResponse(attachment.to_assistant_file())

    async def delete_assistant_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        self.store.detach_from_assistant(request.path_params["assistant_id"], file_id)
        return JSONResponse({"id": file_id, "object": "assistant.file.deleted", "deleted": True})

    # --- threads and messages ---------------------------------------------------------------

    async def create_thread(self, request: Request) -> Response:
        body = await json_object(request, {"messages", "metadata"}, allow_empty_body=True)
        raw_messages = list_of(body, "messages", dict, "an array of objects")
        messages = [_new_message(raw, f"messages[{i}]") for i, raw in enumerate(raw_messages)]
        record = self.store.create_thread(metadata(body), messages)
        return JSONResponse(record.to_api())

    async def get_thread(self, request: Request) -> Response:
        return JSONResponse(self.store.get_thread(request.path_params["thread_id"]).to_api())

    async def create_message(self, request: Request) -> Response:
        body = await json_object(request, {"role", "content", "file_ids", "metadata"})
        record = self.store.create_message(request.path_params["thread_id"], _new_message(body))
        return JSONResponse(record.to_api())

    async def get_message(self, request: Request) -> Response:
        record = self.store.get_message(
            request.path_params["thread_id"], request.path_params["message_id"]
        )
        return JSONResponse(record.to_api())

    async def list_message_files(self, request: Request) -> Response:
        page = parse_page_request(request.query_params)
        attachments = self.store.message_files(
            request.path_params["thread_id"], request.path_params["message_id"]
        )
        return paginate(
            attachments, page, item_id=lambda a: a.file_id, render=lambda a: a.to_message_file()
        )

    async def get_message_file(self, request: Request) -> Response:
        attachment = self.store.get_message_file(
            request.path_params["thread_id"],
            request.path_params["message_id"],
            request.path_params["file_id"],
        )
        return JSONResponse(attachment.to_message_file())

    # --- admin ------------------------------------------------------------------------------

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self._faults_state())

    async def put_faults(self, request: Request) -> Response:
        body = await json_object(request, None)
        try:
            self.injector.update(**body)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse(self._faults_state())

    async def reset(self, request: Request) -> Response:
        self.store.reset()
        self.injector.replace(self.initial_faults)
        self.knobs.replace(self.initial_knobs)
        self.limiter.clear()
        return JSONResponse({"reset": True, **self._faults_state()})

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse({"settings": self.knobs.knobs.as_dict()})

    async def put_settings(self, request: Request) -> Response:
        body = await json_object(request, None)
        try:
            self.knobs.update(**body)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse({"settings": self.knobs.knobs.as_dict()})

    def _faults_state(self) -> dict[str, Any]:
        return {"faults": self.injector.faults.as_dict(), "injected": self.injector.counts()}


#: ``expires_after`` arrives as form fields, the way the official SDK flattens objects.
_EXPIRES_AFTER_FIELDS = ("expires_after[anchor]", "expires_after[seconds]")


def _form_expires_after(fields: dict[str, str]) -> int | None:
    """The seconds of an upload's ``expires_after`` form fields, or None when absent."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    return check_file_expiry(anchor, seconds)


@dataclass(frozen=True, slots=True)
class _FileForm:
    """What a Files upload asks for, checked."""

    filename: str
    purpose: str
    expires_after: int | None


def _check_fine_tune_lines(bad_line: int | None) -> None:
    """The service's 400 for a fine-tune file whose line ``bad_line`` is not a JSON object."""
    if bad_line is not None:
        raise ApiError(
            400,
            "Expected file to have JSONL format, where every line is a valid JSON "
            f"dictionary. Line {bad_line} is not a dictionary.",
            param="file",
        )


def _header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header of a request, as Starlette's ``Request.headers`` reads it
    (names in lower case, as ASGI servers give them)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _new_message(body: dict[str, Any], where: str = "") -> NewMessage:
    prefix = f"{where}." if where else ""
    for name in body:
        if name not in ("role", "content", "file_ids", "metadata"):
            raise errors.unrecognized_argument(prefix + name)
    role = required_str(body, "role")
    if role != "user":
        raise ApiError(
            400, f"Invalid value: '{role}'. Supported values are: 'user'.", param=prefix + "role"
        )
    return NewMessage(
        role=role,
        content=required_str(body, "content"),
        file_ids=list_of(body, "file_ids", str, "an array of strings"),
        metadata=metadata(body),
    )


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(DOWNLOAD_CHUNK):
            yield chunk


def _human_bytes(size: int) -> str:
    """``512 MB``, ``97.66 KB``, ``12 bytes`` (binary multiples, as the service counts them)."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.4g} {unit}"


# --- errors ---------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _invalid_url(request: Request, exc: Exception) -> Response:
    # The service answers unknown paths and unsupported methods alike: 404 "Invalid URL".
    return errors.invalid_url(request.method, request.url.path).response()


async def _internal_error(request: Request, exc: Exception) -> Response:
    return errors.server_error().response()


# --- middleware -----------------------------------------------------------------------------


class Gate:
    """Checks the API key on every request, and ``OpenAI-Beta`` on assistants and threads paths
    (which answer as today's service does when ``assistants_api`` is ``retired``).

    Without a configured key any non-empty bearer token is accepted; the admin paths need the key
    only when one is configured.
    """

    def __init__(self, app: ASGIApp, *, api_key: str | None, knobs: KnobHolder) -> None:
        self.app = app
        self.api_key = api_key
        self.knobs = knobs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self.check(scope)
            if error is not None:
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> ApiError | None:
        """The error that answers this request, or None when it may go on."""
        path: str = scope["path"]
        # Only two headers matter: a dict of them all was a cost on every request. ASGI servers
        # give header names in lower case; of a repeated header the last counts.
        authorization = beta = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"openai-beta":
                beta = value
        if not path.startswith(ADMIN_PREFIX) or self.api_key is not None:
            error = self._check_key(authorization.decode("latin-1"))
            if error is not None:
                return error
        if path.startswith((f"{API_PREFIX}/assistants", f"{API_PREFIX}/threads")):
            betas = [value.strip() for value in beta.decode("latin-1").split(",")]
            if self.knobs.knobs.assistants_api == "retired":
                # v1 was switched off on 2024-12-18; the whole Assistants API on 2026-08-26.
                if "assistants=v1" in betas:
                    return errors.v1_retired()
                return errors.invalid_url(scope["method"], path)
            if "assistants=v1" not in betas:
                return errors.invalid_beta()
        return None

    def _check_key(self, authorization: str) -> ApiError | None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return errors.missing_api_key()
        if self.api_key is not None and not hmac.compare_digest(
            token.encode(), self.api_key.encode()
        ):
            return errors.incorrect_api_key()
        return None


class RequestLog:
    """Adds ``x-request-id`` (and the service's version header) to every answer, and logs each
    request in one line: ``POST /v1/files → 200 (1.2 MB in, 35 ms)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ids.request_id()
        status: int | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    *_service_headers(request_id, started),
                ]
            await send(message)

        outcome = ""
        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            outcome = "client went away"
        finally:
            if log.isEnabledFor(logging.INFO):  # no line is made when nobody would see it
                log.info(_log_line(scope, status, outcome, time.perf_counter() - started))


def _service_headers(request_id: str, started: float) -> list[tuple[bytes, bytes]]:
    """The headers the service adds to every answer: the request's id, the API version, and
    how long the request took (since ``started``, a ``perf_counter`` time)."""
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    return [
        (b"x-request-id", request_id.encode()),
        (b"openai-version", b"2020-10-01"),
        (b"openai-processing-ms", str(elapsed_ms).encode()),
    ]


def _log_line(scope: Scope, status: int | None, outcome: str, elapsed_s: float) -> str:
    target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
    fault = scope.get(FAULT_SCOPE_KEY)
    if fault in ("drop_before", "drop_after"):
        phase = "before" if fault == "drop_before" else "after"
        result = f"connection dropped {phase} processing (injected)"
    elif outcome or status is None:
        # A client that hung up mid-request may still have been "sent" an error answer by
        # Starlette; it never arrived, so the log says what really happened.
        result = outcome or "no answer"
    else:
        result = str(status) + (" (injected)" if fault else "")
    details = [f"{elapsed_s * 1000:.0f} ms"]
    for name, value in scope["headers"]:
        if name == b"content-length" and value != b"0":
            details.insert(0, _human_bytes(int(value)) + " in")
    return f"{scope['method']} {target} → {result} ({', '.join(details)})"


# --- the direct path ------------------------------------------------------------------------

#: A route the server may answer without ASGI: the request's scope and whole body in, the
#: answer out.
DirectRoute = Callable[[Scope, bytes], Response]


@dataclass(frozen=True, slots=True)
class DirectAnswer:
    """An answer made on the direct path, ready to be written: status, headers and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class DirectRoutes:
    """The requests the HTTP server answers itself instead of through the ASGI stack
    (``server.py``): small uploads, what a first sync sends by the thousand.

    Through ASGI such a request crossed four middleware layers and Starlette's five, as a task
    with its own messages: more than half of the emulator's CPU per upload. On the direct path
    it meets the same rules, each called where it lives: the ``Gate`` and the route's own
    function, then ``RequestLog``'s headers and log line. It is taken only when the layers it
    skips would do nothing: no fault set (``FaultInjector.inactive``) and no rate limits.
    """

    #: The largest body a direct request may have: the server reads it whole before answering.
    max_body = WHOLE_BODY_BYTES

    def __init__(
        self,
        routes: dict[tuple[bytes, bytes], DirectRoute],
        gate: Gate,
        injector: FaultInjector,
        knobs: KnobHolder,
    ) -> None:
        self._routes = routes
        self._gate = gate
        self._injector = injector
        self._knobs = knobs

    def route(self, method: bytes, target: bytes) -> DirectRoute | None:
        """The direct route of a request (its method and request target, query and all), or
        None when it goes through ASGI: another route, a query string, a fault or a rate limit
        that could apply."""
        route = self._routes.get((method, target))
        if route is None or not self._injector.inactive or self._knobs.knobs.rate_limits:
            return None
        return route

    def answer(self, route: DirectRoute, scope: Scope, body: bytes) -> DirectAnswer:
        """Answer one request of ``route`` (``scope`` as an ASGI server makes it), and log it."""
        started = time.perf_counter()
        request_id = ids.request_id()
        try:
            error = self._gate.check(scope)
            response = error.response() if error is not None else route(scope, body)
        except ApiError as exc:
            response = exc.response()
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = errors.server_error().response()
        status = response.status_code
        headers = [*response.raw_headers, *_service_headers(request_id, started)]
        if log.isEnabledFor(logging.INFO):
            log.info(_log_line(scope, status, "", time.perf_counter() - started))
        return DirectAnswer(status, headers, bytes(response.body))
