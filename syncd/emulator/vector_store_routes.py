"""The vector-store endpoints: stores, their files, file batches, file content and search.

Each endpoint translates between HTTP and ``VectorStores``; the operations that read blobs
(attaching checks each file parses; search and content read text) run in a worker thread so the
event loop keeps serving other requests.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.emulator import errors, search
from syncd.emulator.bodies import json_object, optional_str
from syncd.emulator.errors import ApiError
from syncd.emulator.ingest import read_text
from syncd.emulator.knobs import KnobHolder
from syncd.emulator.pagination import list_response, paginate, parse_page_request
from syncd.emulator.vector_stores import (
    ATTACHING,
    MAX_BATCH_FILES,
    MAX_CREATE_FILES,
    STATUSES,
    NewAttachment,
    VectorStores,
    parse_attributes,
    parse_chunking,
    parse_metadata,
    parse_store_expiry,
)

__all__ = ["POLL_AFTER_HEADER", "vector_store_routes"]

#: The header the official SDK's polling helpers wait by.
POLL_AFTER_HEADER = "openai-poll-after-ms"
MAX_SEARCH_RESULTS = 50


def _status_filter(request: Request) -> str | None:
    """The ``filter`` of a list of vector-store files (a status), or a 400 for another value."""
    wanted = request.query_params.get("filter")
    if wanted is not None and wanted not in STATUSES:
        raise errors.invalid_value(
            "filter",
            f"expected one of {', '.join(repr(s) for s in STATUSES)}, but got '{wanted}'.",
        )
    return wanted


def vector_store_routes(prefix: str, stores: VectorStores, knobs: KnobHolder) -> list[Route]:
    """The routes, under ``prefix`` (``/v1``)."""
    r = _Routes(stores, knobs)
    vs = f"{prefix}/vector_stores"
    one = f"{vs}/{{vector_store_id}}"
    batch = f"{one}/file_batches/{{batch_id}}"
    return [
        Route(vs, r.list_stores, methods=["GET"]),
        Route(vs, r.create_store, methods=["POST"]),
        Route(one, r.get_store, methods=["GET"]),
        Route(one, r.modify_store, methods=["POST"]),
        Route(one, r.delete_store, methods=["DELETE"]),
        Route(f"{one}/files", r.list_files, methods=["GET"]),
        Route(f"{one}/files", r.create_file, methods=["POST"]),
        Route(f"{one}/files/{{file_id}}", r.get_file, methods=["GET"]),
        Route(f"{one}/files/{{file_id}}", r.update_file, methods=["POST"]),
        Route(f"{one}/files/{{file_id}}", r.delete_file, methods=["DELETE"]),
        Route(f"{one}/files/{{file_id}}/content", r.file_content, methods=["GET"]),
        Route(f"{one}/file_batches", r.create_batch, methods=["POST"]),
        Route(batch, r.get_batch, methods=["GET"]),
        Route(f"{batch}/cancel", r.cancel_batch, methods=["POST"]),
        Route(f"{batch}/files", r.list_batch_files, methods=["GET"]),
        Route(f"{one}/search", r.search_store, methods=["POST"]),
    ]


class _Routes:
    def __init__(self, stores: VectorStores, knobs: KnobHolder) -> None:
        self.stores = stores
        self.knobs = knobs

    def _now(self) -> float:
        return self.stores.store.clock()

    def _polled(self, body: dict[str, Any]) -> Response:
        """An answer clients poll, with the hint of how long to wait before the next look."""
        return JSONResponse(body, headers={POLL_AFTER_HEADER: str(self.knobs.knobs.poll_after_ms)})

    # --- stores -----------------------------------------------------------------------------

    async def list_stores(self, request: Request) -> Response:
        page = parse_page_request(request.query_params)
        now = self._now()
        return paginate(
            self.stores.list_stores(),
            page,
            item_id=lambda s: s.id,
            render=lambda s: s.to_api(now),
        )

    async def create_store(self, request: Request) -> Response:
        body = await json_object(
            request,
            {"file_ids", "name", "description", "expires_after", "chunking_strategy", "metadata"},
            allow_empty_body=True,
        )
        file_ids = _file_ids(body, "file_ids", maximum=MAX_CREATE_FILES, minimum=0)
        chunking = parse_chunking(body.get("chunking_strategy"))
        optional_str(body, "description")
        record = await run_in_threadpool(
            self.stores.create,
            name=optional_str(body, "name") or "",
            metadata=parse_metadata(body.get("metadata")),
            expires_days=parse_store_expiry(body.get("expires_after")),
            attachments=[NewAttachment(file_id, None, chunking) for file_id in file_ids],
        )
        return JSONResponse(record.to_api(ATTACHING))

    async def get_store(self, request: Request) -> Response:
        record = self.stores.get(request.path_params["vector_store_id"])
        return self._polled(record.to_api(self._now()))

    async def modify_store(self, request: Request) -> Response:
        body = await json_object(request, {"name", "expires_after", "metadata"})
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = optional_str(body, "name")
        if "expires_after" in body:
            changes["expires_days"] = parse_store_expiry(body["expires_after"])
        if "metadata" in body:
            changes["metadata"] = parse_metadata(body["metadata"])
        record = self.stores.modify(request.path_params["vector_store_id"], **changes)
        return JSONResponse(record.to_api(self._now()))

    async def delete_store(self, request: Request) -> Response:
        vs_id = request.path_params["vector_store_id"]
        self.stores.delete(vs_id)
        return JSONResponse({"id": vs_id, "object": "vector_store.deleted", "deleted": True})

    # --- files ------------------------------------------------------------------------------

    async def list_files(self, request: Request) -> Response:
        page = parse_page_request(request.query_params)
        files = self.stores.files_page(
            request.path_params["vector_store_id"], page, self._now(), _status_filter(request)
        )
        return list_response(
            files.items, first_id=files.first_id, last_id=files.last_id, has_more=files.has_more
        )

    async def create_file(self, request: Request) -> Response:
        body = await json_object(request, {"file_id", "attributes", "chunking_strategy"})
        attachment = _attachment(body, "")
        record, added = await run_in_threadpool(
            self.stores.attach, request.path_params["vector_store_id"], attachment
        )
        return JSONResponse(record.to_api(ATTACHING if added else self._now()))

    async def get_file(self, request: Request) -> Response:
        record = self.stores.get_file(
            request.path_params["vector_store_id"], request.path_params["file_id"]
        )
        return self._polled(record.to_api(self._now()))

    async def update_file(self, request: Request) -> Response:
        body = await json_object(request, {"attributes"})
        if "attributes" not in body:
            raise errors.missing_parameter("attributes")
        record = self.stores.update_attributes(
            request.path_params["vector_store_id"],
            request.path_params["file_id"],
            parse_attributes(body["attributes"]),
        )
        return JSONResponse(record.to_api(self._now()))

    async def delete_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        self.stores.detach(request.path_params["vector_store_id"], file_id)
        return JSONResponse({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})

    async def file_content(self, request: Request) -> Response:
        vs_file, source = self.stores.file_with_source(
            request.path_params["vector_store_id"], request.path_params["file_id"]
        )
        data = []
        if vs_file.status(self._now()) == "completed":
            text = await run_in_threadpool(
                read_text, self.stores.store.blob_path(source.id), source.filename
            )
            data.append({"type": "text", "text": text})
        return JSONResponse(
            {
                "object": "vector_store.file_content.page",
                "data": data,
                "has_more": False,
                "next_page": None,
            }
        )

    # --- batches ----------------------------------------------------------------------------

    async def create_batch(self, request: Request) -> Response:
        body = await json_object(request, {"file_ids", "files", "attributes", "chunking_strategy"})
        if "file_ids" in body and "files" in body:
            raise ApiError(
                400,
                "Only one of 'file_ids' or 'files' may be provided, not both.",
                param="files",
                code="invalid_value",
            )
        if "files" in body:
            if "attributes" in body or "chunking_strategy" in body:
                raise ApiError(
                    400,
                    "With 'files', give 'attributes' and 'chunking_strategy' for each file, "
                    "not for the whole batch.",
                    param="files",
                    code="invalid_value",
                )
            items = body["files"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise errors.invalid_type("files", "an array of objects", items)
            _check_length("files", len(items), MAX_BATCH_FILES, 1)
            attachments = [_attachment(item, f"files[{i}]") for i, item in enumerate(items)]
        elif "file_ids" in body:
            file_ids = _file_ids(body, "file_ids", maximum=MAX_BATCH_FILES, minimum=1)
            attributes = parse_attributes(body.get("attributes"))
            chunking = parse_chunking(body.get("chunking_strategy"))
            attachments = [NewAttachment(f, attributes, chunking) for f in file_ids]
        else:
            raise errors.missing_parameter("file_ids")
        record = await run_in_threadpool(
            self.stores.create_batch, request.path_params["vector_store_id"], attachments
        )
        return JSONResponse(record.to_api(ATTACHING))

    async def get_batch(self, request: Request) -> Response:
        record = self.stores.get_batch(
            request.path_params["vector_store_id"], request.path_params["batch_id"]
        )
        return self._polled(record.to_api(self._now()))

    async def cancel_batch(self, request: Request) -> Response:
        record = self.stores.cancel_batch(
            request.path_params["vector_store_id"], request.path_params["batch_id"]
        )
        return JSONResponse(record.to_api(self._now()))

    async def list_batch_files(self, request: Request) -> Response:
        record = self.stores.get_batch(
            request.path_params["vector_store_id"], request.path_params["batch_id"]
        )
        page = parse_page_request(request.query_params)
        now = self._now()
        wanted = _status_filter(request)
        files = [f for f in record.files if wanted in (None, f.status(now))]
        return paginate(files, page, item_id=lambda f: f.file_id, render=lambda f: f.to_api(now))

    # --- search -----------------------------------------------------------------------------

    async def search_store(self, request: Request) -> Response:
        body = await json_object(
            request, {"query", "rewrite_query", "max_num_results", "filters", "ranking_options"}
        )
        raw_query = body.get("query")
        if raw_query is None:
            raise errors.missing_parameter("query")
        if isinstance(raw_query, str):
            queries = [raw_query]
        elif (
            isinstance(raw_query, list) and raw_query and all(isinstance(q, str) for q in raw_query)
        ):
            queries = list(raw_query)
        else:
            raise errors.invalid_type("query", "a string or an array of strings", raw_query)
        limit = body.get("max_num_results", 10)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise errors.invalid_type("max_num_results", "an integer", limit)
        if limit < 1:
            raise errors.integer_below_min("max_num_results", 1, limit)
        if limit > MAX_SEARCH_RESULTS:
            raise errors.integer_above_max("max_num_results", MAX_SEARCH_RESULTS, limit)
        rewrite = body.get("rewrite_query", False)
        if not isinstance(rewrite, bool):
            raise errors.invalid_type("rewrite_query", "a boolean", rewrite)
        filters = body.get("filters")
        if filters is not None:
            search.parse_filter(filters)
        threshold = _score_threshold(body.get("ranking_options"))
        vs_id = request.path_params["vector_store_id"]
        results = await run_in_threadpool(self._search, vs_id, queries, filters, limit, threshold)
        self.stores.touch(vs_id)
        return JSONResponse(
            {
                "object": "vector_store.search_results.page",
                "search_query": queries,
                "data": [chunk.to_api() for chunk in results],
                "has_more": False,
                "next_page": None,
            }
        )

    def _search(
        self,
        vs_id: str,
        queries: list[str],
        filters: dict[str, Any] | None,
        limit: int,
        threshold: float,
    ) -> list[search.Chunk]:
        words = search.query_words(queries)
        candidates = []
        for vs_file, source in self.stores.searchable(vs_id):
            if filters is not None and not search.matches(filters, vs_file.attributes):
                continue
            try:
                text = read_text(self.stores.store.blob_path(source.id), source.filename)
            except FileNotFoundError:  # deleted meantime
                continue
            static = vs_file.chunking["static"]
            for piece in search.chunks(
                text, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
            ):
                candidates.append(
                    search.Chunk(
                        file_id=source.id,
                        filename=source.filename,
                        attributes=vs_file.attributes,
                        text=piece,
                        score=search.score(words, piece),
                    )
                )
        return search.rank(candidates, limit=limit, threshold=threshold)


def _attachment(body: dict[str, Any], where: str) -> NewAttachment:
    prefix = f"{where}." if where else ""
    for key in body:
        if key not in ("file_id", "attributes", "chunking_strategy"):
            raise errors.unrecognized_argument(prefix + key)
    value = body.get("file_id")
    if value is None:
        raise errors.missing_parameter(prefix + "file_id")
    if not isinstance(value, str):
        raise errors.invalid_type(prefix + "file_id", "a string", value)
    return NewAttachment(
        file_id=value,
        attributes=parse_attributes(body.get("attributes"), prefix + "attributes"),
        chunking=parse_chunking(body.get("chunking_strategy"), prefix + "chunking_strategy"),
    )


def _file_ids(body: dict[str, Any], name: str, *, maximum: int, minimum: int) -> list[str]:
    value = body.get(name)
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_type(name, "an array of strings", value)
    _check_length(name, len(value), maximum, minimum)
    return list(dict.fromkeys(value))  # a file named twice is attached once


def _check_length(name: str, length: int, maximum: int, minimum: int) -> None:
    if length > maximum:
        raise errors.array_too_long(name, maximum, length)
    if length < minimum:
        raise ApiError(
            400,
            f"Invalid '{name}': empty array. Expected an array with minimum length {minimum}, "
            f"but got an empty array instead.",
            param=name,
            code="empty_array",
        )


def _score_threshold(options: object) -> float:
    if options is None:
        return 0.0
    if not isinstance(options, dict):
        raise errors.invalid_type("ranking_options", "an object", options)
    for key in options:
        if key not in ("ranker", "score_threshold"):
            raise errors.unrecognized_argument(f"ranking_options.{key}")
    ranker = options.get("ranker", "auto")
    if ranker not in ("none", "auto", "default-2024-11-15"):
        raise errors.invalid_value(
            "ranking_options.ranker",
            f"expected one of 'none', 'auto' or 'default-2024-11-15', but got {ranker!r}.",
        )
    threshold = options.get("score_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise errors.invalid_type("ranking_options.score_threshold", "a number", threshold)
    if not 0 <= threshold <= 1:
        raise errors.invalid_value(
            "ranking_options.score_threshold",
            f"expected a number between 0 and 1, got {threshold}.",
        )
    return float(threshold)
