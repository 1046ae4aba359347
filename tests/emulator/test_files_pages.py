"""``GET /files`` pages are cut in SQL (``Store.files_page``); they must be exactly the pages
``paginate`` cuts from the whole list — every order, limit and cursor, expired files and other
purposes left out, several files in one second."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from syncd.emulator.errors import ApiError
from syncd.emulator.pagination import PageRequest, paginate
from syncd.emulator.store import FileRecord, Store

NOW = 1_700_000_100.0
ORDERS: list[Literal["asc", "desc"]] = ["asc", "desc"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "data")
    yield store
    store.close()


def add_files(store: Store) -> list[FileRecord]:
    """Twelve files over five seconds (several in one second), two purposes, two expired by
    ``NOW``, in the order they were made."""
    made = []
    for i, (second, purpose, expires_after) in enumerate(
        [
            (0, "assistants", None),
            (0, "batch", None),
            (1, "assistants", 10),  # expired by NOW
            (1, "assistants", None),
            (1, "assistants", None),
            (2, "batch", None),
            (2, "assistants", 1000),  # still live at NOW
            (3, "assistants", None),
            (3, "assistants", 20),  # expired by NOW
            (3, "batch", None),
            (4, "assistants", None),
            (4, "assistants", None),
        ]
    ):
        store.clock = functools.partial(float, NOW - 100 + second)
        incoming = store.incoming_path()
        incoming.write_bytes(b"x")
        made.append(
            store.add_file(
                filename=f"f{i}.txt",
                purpose=purpose,
                size=1,
                incoming=incoming,
                processing_delay=0,
                expires_after=expires_after,
            )
        )
    store.clock = functools.partial(float, NOW)
    return made


def expected_page(
    made: list[FileRecord], purpose: str | None, request: PageRequest
) -> tuple[list[FileRecord], bool] | str:
    """What ``paginate`` makes of every live file of ``purpose``, oldest first (ties: the order
    they were made); the error message if it refuses."""
    listed = sorted(
        (
            f
            for f in made
            if (f.expires_at is None or f.expires_at > NOW) and purpose in (None, f.purpose)
        ),
        key=lambda f: f.created_at,  # stable: ties stay in the order they were made
    )
    try:
        page = paginate(listed, request, item_id=lambda f: f.id, render=lambda f: f)
    except ApiError as e:
        return e.message
    return page["data"], page["has_more"]


def test_every_page_is_the_page_paginate_cuts(store: Store) -> None:
    made = add_files(store)
    cursors = [None, *(f.id for f in made), "file-unknown"]
    checked = 0
    for purpose, order, limit, after, before in itertools.product(
        [None, "assistants", "batch"], ORDERS, [1, 2, 3, 20], cursors, cursors
    ):
        request = PageRequest(limit=limit, order=order, after=after, before=before)
        expected = expected_page(made, purpose, request)
        try:
            actual: tuple[list[FileRecord], bool] | str = store.files_page(purpose, request)
        except ApiError as e:
            actual = e.message
        assert actual == expected, (purpose, order, limit, after, before)
        checked += 1
    assert checked == 3 * 2 * 4 * 14 * 14


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
            page, has_more = store.files_page(None, PageRequest(limit=4, order=order, after=after))
            seen += [f.id for f in page]
            if not has_more:
                break
            after = page[-1].id
        assert seen == expected
