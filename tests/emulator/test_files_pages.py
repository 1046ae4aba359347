"""``GET /files`` pages are cut and rendered in SQL (``Store.files_page``); they must be exactly
the pages ``paginate`` cuts from the whole list and renders with ``FileRecord.to_api`` — every
order, limit and cursor, expired files and other purposes left out, several files in one second,
statuses on both sides of the moment a file is processed, file names JSON must escape."""

from __future__ import annotations

import functools
import itertools
import json
from typing import Literal

from syncd.emulator.errors import ApiError
from syncd.emulator.pagination import PageRequest, list_response, paginate
from syncd.emulator.store import FileRecord, Store

NOW = 1_700_000_100.0
ORDERS: list[Literal["asc", "desc"]] = ["asc", "desc"]


#: File names whose JSON needs escapes, or none (the first is plain).
NAMES = ["f.txt", 'quote" back\\slash.txt', "tab\tnew\nline\x01.txt", "ünï 文件 \u2028.txt"]
PURPOSES = [None, "assistants", "batch", "fine-tune"]
#: By the second a fine-tune file is made: processed before ``NOW``, at it, after it.
FINE_TUNE_DELAYS = {1: 50, 3: 97, 4: 200}


def add_files(store: Store) -> list[FileRecord]:
    """Fifteen files over five seconds (several in one second), three purposes, two expired by
    ``NOW``, fine-tune files processed before, at and after ``NOW``, in the order they were
    made."""
    made = []
    for i, (second, purpose, expires_after) in enumerate(
        [
            (0, "assistants", None),
            (0, "batch", None),
            (1, "assistants", 10),  # expired by NOW
            (1, "assistants", None),
            (1, "fine-tune", None),  # processed before NOW
            (1, "assistants", None),
            (2, "batch", None),
            (2, "assistants", 1000),  # still live at NOW
            (3, "assistants", None),
            (3, "fine-tune", None),  # processed at NOW exactly
            (3, "assistants", 20),  # expired by NOW
            (3, "batch", None),
            (4, "assistants", None),
            (4, "fine-tune", None),  # processed after NOW
            (4, "assistants", None),
        ]
    ):
        store.clock = functools.partial(float, NOW - 100 + second)
        incoming = store.incoming_path()
        incoming.write_bytes(b"x")
        made.append(
            store.add_file(
                filename=f"{i}-{NAMES[i % len(NAMES)]}",
                purpose=purpose,
                size=1,
                incoming=incoming,
                processing_delay=FINE_TUNE_DELAYS[second] if purpose == "fine-tune" else 0,
                expires_after=expires_after,
            )
        )
    store.clock = functools.partial(float, NOW)
    return made


def expected_page(made: list[FileRecord], purpose: str | None, request: PageRequest) -> object:
    """What ``paginate`` makes of every live file of ``purpose``, oldest first (ties: the order
    they were made), each rendered by ``FileRecord.to_api`` as of ``NOW``; the error message if
    it refuses."""
    listed = sorted(
        (
            f
            for f in made
            if (f.expires_at is None or f.expires_at > NOW) and purpose in (None, f.purpose)
        ),
        key=lambda f: f.created_at,  # stable: ties stay in the order they were made
    )
    try:
        page = paginate(listed, request, item_id=lambda f: f.id, render=lambda f: f.to_api(NOW))
    except ApiError as e:
        return e.message
    return json.loads(bytes(page.body))


def actual_page(store: Store, purpose: str | None, request: PageRequest) -> object:
    """The list object of ``store.files_page``; the error message if it refuses."""
    try:
        page = store.files_page(purpose, request)
    except ApiError as e:
        return e.message
    return json.loads(
        bytes(
            list_response(
                page.items, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more
            ).body
        )
    )


def test_every_page_is_the_page_paginate_cuts(store: Store) -> None:
    made = add_files(store)
    cursors = [None, *(f.id for f in made), "file-unknown"]
    limits = [1, 2, 3, 20]
    checked = statuses = 0
    for purpose, order, limit, after, before in itertools.product(
        PURPOSES, ORDERS, limits, cursors, cursors
    ):
        request = PageRequest(limit=limit, order=order, after=after, before=before)
        expected = expected_page(made, purpose, request)
        assert actual_page(store, purpose, request) == expected, (
            purpose,
            order,
            limit,
            after,
            before,
        )
        checked += 1
        if isinstance(expected, dict) and purpose == "fine-tune" and limit == 20:
            statuses += len({f["status"] for f in expected["data"]}) == 2
    assert checked == len(PURPOSES) * len(ORDERS) * len(limits) * len(cursors) ** 2
    assert statuses  # pages that hold both a processed and an uploaded file were compared


def test_walking_the_pages_lists_every_live_file_once_in_order(store: Store) -> None:
    made = add_files(store)
    live = [f for f in made if f.expires_at is None or f.expires_at > NOW]
    oldest_first = [f.id for f in sorted(live, key=lambda f: f.created_at)]
    orders: list[tuple[Literal["asc", "desc"], list[str]]] = [
        ("asc", oldest_first),
        ("desc", oldest_first[::-1]),
    ]
    for order, expected in orders:
        seen: list[str] = []
        after = None
        while True:
            page = store.files_page(None, PageRequest(limit=4, order=order, after=after))
            seen += [json.loads(item)["id"] for item in page.items]
            if not page.has_more:
                break
            after = page.last_id
        assert seen == expected
