"""Pages of a vector store's files are cut and rendered in SQL (``VectorStores.files_page``),
the status filter too; they must be exactly the pages ``paginate`` cuts from the whole list,
filtered by ``VectorStoreFileRecord.status`` and rendered by its ``to_api`` — every order,
limit, cursor and status, several files attached in one second, a file exactly at the moment
its ingestion ends, attributes and a chunking strategy of its own."""

from __future__ import annotations

import functools
import itertools
import json
from typing import Literal

import pytest

from syncd.emulator.errors import ApiError
from syncd.emulator.knobs import KnobHolder
from syncd.emulator.pagination import PageRequest, list_response, paginate
from syncd.emulator.store import Store
from syncd.emulator.vector_stores import (
    STATUSES,
    NewAttachment,
    VectorStoreFileRecord,
    VectorStores,
)

NOW = 1_700_000_100.0
ORDERS: list[Literal["asc", "desc"]] = ["asc", "desc"]


def _file(store: Store, name: str, content: bytes) -> str:
    incoming = store.incoming_path()
    incoming.write_bytes(content)
    record = store.add_file(
        filename=name,
        purpose="assistants",
        size=len(content),
        incoming=incoming,
        processing_delay=0,
    )
    return record.id


def fill(store: Store, stores: VectorStores, knobs: KnobHolder) -> tuple[str, list[str]]:
    """A store of ten files in every status as of ``NOW``, attached over four seconds, and
    their ids in the order they were attached."""
    vs_id = stores.create(name="s", metadata=None, expires_days=None, attachments=[]).id
    plan = [
        # (second attached, ingestion seconds, stuck, parses)
        (0, 10, False, True),  # completed before NOW
        (0, 10, False, False),  # failed
        (1, 99, False, True),  # completed at NOW exactly
        (1, 500, False, True),  # in progress at NOW
        (1, 10, True, True),  # stuck
        (2, 10, False, True),
        (2, 500, False, True),  # cancelled below
        (3, 10, False, False),
        (3, 10, False, True),
        (3, 500, False, True),
    ]
    file_ids = []
    for i, (second, ingestion, stuck, parses) in enumerate(plan):
        store.clock = functools.partial(float, NOW - 100 + second)
        file_id = _file(store, f"f{i}.txt", b"text" if parses else b"\xff\xfe\xfa")
        file_ids.append(file_id)
        knobs.update(ingestion_seconds=ingestion, stuck_rate=1.0 if stuck else 0.0)
        if i == 6:
            batch = stores.create_batch(vs_id, [NewAttachment(file_id)])
            stores.cancel_batch(vs_id, batch.id)
        elif i == 8:
            chunking = {
                "type": "static",
                "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 10},
            }
            attributes = {"team": 'a "quoted" ü', "year": 2024, "draft": True}
            stores.attach(vs_id, NewAttachment(file_id, attributes, chunking))
        else:
            stores.attach(vs_id, NewAttachment(file_id))
    store.clock = functools.partial(float, NOW)
    return vs_id, file_ids


def expected_page(
    every: list[VectorStoreFileRecord], status: str | None, request: PageRequest
) -> object:
    """The list object ``paginate`` answers from the files in ``status`` (all of them when
    None), rendered as of ``NOW``; the error message if it refuses."""
    listed = [f for f in every if status in (None, f.status(NOW))]
    try:
        page = paginate(
            listed, request, item_id=lambda f: f.file_id, render=lambda f: f.to_api(NOW)
        )
    except ApiError as e:
        return e.message
    return json.loads(bytes(page.body))


def actual_page(
    stores: VectorStores, vs_id: str, status: str | None, request: PageRequest
) -> object:
    """The list object of ``stores.files_page``; the error message if it refuses."""
    try:
        page = stores.files_page(vs_id, request, NOW, status)
    except ApiError as e:
        return e.message
    response = list_response(
        page.items, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more
    )
    return json.loads(bytes(response.body))


def test_every_page_is_the_page_paginate_cuts(store: Store) -> None:
    knobs = KnobHolder()
    stores = VectorStores(store, knobs)
    vs_id, file_ids = fill(store, stores, knobs)
    every = [stores.get_file(vs_id, file_id) for file_id in file_ids]
    assert {f.status(NOW) for f in every} == set(STATUSES)
    cursors = [None, *(f.file_id for f in every), "file-unknown"]
    statuses = [None, *STATUSES]
    limits = [1, 2, 3, 20]
    checked = 0
    for status, order, limit, after, before in itertools.product(
        statuses, ORDERS, limits, cursors, cursors
    ):
        request = PageRequest(limit=limit, order=order, after=after, before=before)
        assert actual_page(stores, vs_id, status, request) == expected_page(
            every, status, request
        ), (
            status,
            order,
            limit,
            after,
            before,
        )
        checked += 1
    assert checked == len(statuses) * len(ORDERS) * len(limits) * len(cursors) ** 2


def test_no_store_is_a_404(store: Store) -> None:
    stores = VectorStores(store, KnobHolder())
    with pytest.raises(ApiError) as raised:
        stores.files_page("vs_missing", PageRequest(), NOW)
    assert raised.value.status == 404


def test_a_stores_counts_and_usage_are_those_of_its_files(store: Store) -> None:
    """The store object counts its files grouped by how their ingestion goes (``Ingestion``);
    it must say what its files, one by one, say — also of files attached together."""
    knobs = KnobHolder()
    stores = VectorStores(store, knobs)
    vs_id, file_ids = fill(store, stores, knobs)
    store.clock = functools.partial(float, NOW - 1)
    knobs.update(ingestion_seconds=0, stuck_rate=0)
    together = [_file(store, f"b{i}.txt", b"batch" * (i + 1)) for i in range(3)]
    stores.create_batch(vs_id, [NewAttachment(file_id) for file_id in together])
    store.clock = functools.partial(float, NOW)
    files = [stores.get_file(vs_id, file_id) for file_id in file_ids + together]
    statuses = [f.status(NOW) for f in files]
    answer = stores.get(vs_id).to_api(NOW)
    assert answer["file_counts"] == {
        **{status: statuses.count(status) for status in STATUSES},
        "total": len(files),
    }
    assert answer["usage_bytes"] == sum(f.bytes for f in files if f.status(NOW) == "completed")
    assert answer["status"] == "in_progress"
    searched = [f.file_id for f, _ in stores.searchable(vs_id)]
    assert searched == [f.file_id for f in files if f.status(NOW) == "completed"]
