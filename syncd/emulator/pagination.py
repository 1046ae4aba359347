"""Cursor pagination of every list (files, vector stores and their files, assistant and message
files), as the service does it.

Items are ordered by ``created_at`` and, within one second, by insertion order, so that pages are
stable even when many attachments are made in the same second. Cursors are the items' ids.

A page is answered as bytes assembled around its items' JSON (``list_response``), so that a list
whose items SQLite renders (``GET /files``: 10,000 files a page) never becomes Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.responses import Response

from syncd.emulator import errors
from syncd.emulator.errors import ApiError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PageRequest",
    "dumps",
    "list_response",
    "paginate",
    "parse_page_request",
    "unknown_cursor",
]

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The pagination parameters of one list request."""

    limit: int = DEFAULT_LIMIT
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def parse_page_request(
    query: Mapping[str, str], *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT
) -> PageRequest:
    """Read ``limit``, ``order``, ``after`` and ``before`` from a query string, or raise a 400.

    ``default_limit`` and ``max_limit`` differ by list: 20 and 100 for most, 10,000 for files.
    """
    raw_limit = query.get("limit")
    limit = default_limit
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(
                400,
                f"Invalid 'limit': expected an integer, but got '{raw_limit}' instead.",
                param="limit",
                code="invalid_type",
            ) from None
        if limit < 1:
            raise errors.integer_below_min("limit", 1, limit)
        if limit > max_limit:
            raise errors.integer_above_max("limit", max_limit, limit)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(
            400,
            f"Invalid value for 'order': expected one of 'asc' or 'desc', but got '{order}'.",
            param="order",
            code="invalid_value",
        )
    return PageRequest(
        limit=limit,
        order=order,  # type: ignore[arg-type]  # narrowed by the check above
        after=query.get("after") or None,
        before=query.get("before") or None,
    )


def paginate(
    items: Sequence[T],
    request: PageRequest,
    *,
    item_id: Callable[[T], str],
    render: Callable[[T], Any],
) -> Response:
    """One page of ``items`` (given oldest first) as the service's list object.

    ``after`` keeps the items that follow the cursor in the requested order, ``before`` those that
    precede it (the ``limit`` nearest to it); ``has_more`` says whether more items lie beyond the
    page in the direction of travel. A cursor that names no item of the list is a 400: silently
    returning an empty page would let a client believe it had seen the whole list.
    """
    ordered = list(items) if request.order == "asc" else list(reversed(items))
    ids = [item_id(item) for item in ordered]
    start, stop = 0, len(ordered)
    if request.after is not None:
        start = _cursor_index(ids, request.after, "after") + 1
    if request.before is not None:
        stop = _cursor_index(ids, request.before, "before")
    window = ordered[start:stop] if start < stop else []
    if request.before is not None and request.after is None:
        page = window[-request.limit :]
    else:
        page = window[: request.limit]
    return list_response(
        [dumps(render(item)) for item in page],
        first_id=item_id(page[0]) if page else None,
        last_id=item_id(page[-1]) if page else None,
        has_more=len(window) > len(page),
    )


def dumps(value: Any) -> str:
    """``value`` as JSON, written the way Starlette's ``JSONResponse`` writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def list_response(
    items: Sequence[str], *, first_id: str | None, last_id: str | None, has_more: bool
) -> Response:
    """The service's list object around ``items`` (each already JSON, in page order)."""
    body = (
        f'{{"object":"list","data":[{",".join(items)}],"first_id":{dumps(first_id)},'
        f'"last_id":{dumps(last_id)},"has_more":{dumps(has_more)}}}'
    )
    return Response(body.encode(), media_type="application/json")


def unknown_cursor(name: str, cursor: str) -> ApiError:
    """The 400 for an ``after`` or ``before`` naming no item of the list."""
    return ApiError(
        400,
        f"Invalid '{name}': no object with id '{cursor}' in this list.",
        param=name,
        code="invalid_value",
    )


def _cursor_index(ids: list[str], cursor: str, name: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise unknown_cursor(name, cursor) from None
