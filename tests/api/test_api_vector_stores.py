"""Today's service end to end over HTTP against the emulator: Files as served (pages, expiry),
vector stores, their files, file batches, search, Uploads in parts, polling and pacing."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

from syncd.api import (
    FILE_ROWS,
    APIError,
    BadRequestError,
    BatchFile,
    ChunkingStrategy,
    Client,
    ComparisonFilter,
    CompoundFilter,
    NotFoundError,
    PartSettings,
    RequestRecord,
    RetryPolicy,
    ServerError,
)

from .conftest import FAST_RETRY

# --- files as served today --------------------------------------------------------------------


def test_files_are_listed_across_pages_in_both_orders(client, make_file):
    files = [client.create_file(make_file(f"f{i}.md", b"x\n"), "assistants") for i in range(5)]
    log: list[RequestRecord] = []
    client.request_log = log.append

    ascending = [f.id for f in client.iter_files(order="asc", page_size=2)]
    assert ascending == [f.id for f in files]
    assert [r.path for r in log] == ["/files"] * 3
    descending = [f.id for f in client.iter_files(order="desc", page_size=3)]
    assert descending == [f.id for f in reversed(files)]
    # With no parameter the service sends up to 10,000 at once, newest first.
    assert [f.id for f in client.list_files()] == descending


def test_file_pages_list_what_iter_files_lists(client, make_file, jsonl):
    for i in range(5):
        client.create_file(make_file(f"f{i}.md", b"x" * (i + 1)), "assistants")
    client.create_file(make_file("t.jsonl", jsonl(2)), "fine-tune")
    pages = list(client.iter_file_pages(page_size=2))
    assert len(pages) == 3
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        rows = [row for page in pages for row in db.execute(FILE_ROWS, [page.text])]
    assert rows == [
        (f.id, f.filename, f.bytes, f.purpose, f.created_at) for f in client.iter_files()
    ]


def test_file_pages_stop_where_a_page_is_broken_off(client, make_file):
    for i in range(5):
        client.create_file(make_file(f"f{i}.md", b"x"), "assistants")
    log: list[RequestRecord] = []
    client.request_log = log.append
    pages = client.iter_file_pages(page_size=2)
    next(pages)
    pages.close()  # the page asked for ahead is sent or cancelled, and nothing after it
    sent = len(log)
    time.sleep(0.2)
    assert sent in (1, 2)
    assert len(log) == sent


def test_a_file_page_without_last_id_is_followed_from_its_last_item(recording_server, api_key):
    item = {"id": "file-b", "filename": "b.md", "bytes": 1, "purpose": "assistants"}
    recording_server.reply = (200, {"data": [item | {"id": "file-a"}, item], "has_more": True})
    with Client(recording_server.base_url, api_key) as client, pytest.raises(APIError) as caught:
        list(client.iter_file_pages())
    # (This server answers the same page whatever the cursor, which is said, not followed.)
    assert "repeated the page after file-b" in str(caught.value)
    assert [path for _, path, _ in recording_server.requests] == [
        "/v1/files?limit=10000",
        "/v1/files?limit=10000&after=file-b",
    ]


def test_what_looks_like_a_page_end_inside_a_file_name_is_not_taken_for_it(
    recording_server, api_key
):
    # The page's end is read without parsing the whole page: a name that holds one must not
    # end the listing early (every file past it would look deleted).
    trap = '],"has_more":false,"last_id":"file-z"}'
    item = {"id": "file-b", "filename": trap, "bytes": 1, "purpose": "assistants"}
    recording_server.reply = (200, {"data": [item], "last_id": "file-b", "has_more": True})
    with Client(recording_server.base_url, api_key) as client, pytest.raises(APIError) as caught:
        list(client.iter_file_pages())
    assert "repeated the page after file-b" in str(caught.value)
    assert [path for _, path, _ in recording_server.requests][-1] == (
        "/v1/files?limit=10000&after=file-b"
    )


@pytest.mark.parametrize(
    "reply",
    [
        {"unexpected": 1},
        {"data": {"id": "file-1"}},
        {"data": [], "has_more": "yes"},
        {"data": [], "has_more": True, "last_id": 7},
        [1, 2],
        "<html>",
    ],
)
def test_a_file_page_that_is_not_one_is_an_api_error(recording_server, api_key, reply):
    recording_server.reply = (200, reply)
    with Client(recording_server.base_url, api_key) as client, pytest.raises(APIError) as caught:
        list(client.iter_file_pages())
    assert "unexpected response: not a page of files" in str(caught.value)


def test_files_list_by_purpose_across_pages(client, make_file, jsonl):
    docs = [client.create_file(make_file(f"d{i}.md", b"d\n"), "assistants") for i in range(3)]
    client.create_file(make_file("t.jsonl", jsonl(2)), "fine-tune")
    listed = client.iter_files("assistants", order="asc", page_size=1)
    assert [f.id for f in listed] == [d.id for d in docs]


def test_a_file_uploaded_with_an_expiry_says_when_it_expires(client, make_file):
    file = client.create_file(make_file("a.md", b"a\n"), "assistants", expires_after=3600)
    assert file.expires_at == file.created_at + 3600
    assert client.retrieve_file(file.id).expires_at == file.expires_at
    forever = client.create_file(make_file("b.md", b"b\n"), "assistants")
    assert forever.expires_at is None


def test_files_page_size_is_checked_before_any_request(client):
    with pytest.raises(ValueError, match="page_size"):
        client.iter_files(page_size=10_001)
    with pytest.raises(ValueError, match="order"):
        client.iter_files(order="newest")


# --- vector stores ----------------------------------------------------------------------------


def test_vector_store_create_retrieve_update_list_and_delete(client):
    store = client.create_vector_store("docs", metadata={"owner": "syncd"}, expires_after_days=7)
    assert (store.name, store.metadata, store.status) == ("docs", {"owner": "syncd"}, "completed")
    assert store.expires_after is not None and store.expires_after.days == 7
    assert store.file_counts.total == 0
    assert client.retrieve_vector_store(store.id) == store

    renamed = client.update_vector_store(store.id, name="handbook")
    assert (renamed.id, renamed.name, renamed.metadata) == (
        store.id,
        "handbook",
        {"owner": "syncd"},
    )

    others = [client.create_vector_store(f"s{i}") for i in range(4)]
    listed = [s.id for s in client.iter_vector_stores(order="asc", page_size=2)]
    assert listed == [store.id, *(s.id for s in others)]

    assert client.delete_vector_store(store.id) is True
    with pytest.raises(NotFoundError):
        client.retrieve_vector_store(store.id)
    assert client.delete_vector_store(store.id, missing_ok=True) is False


@pytest.fixture
def store(client):
    return client.create_vector_store("docs")


@pytest.fixture
def uploaded(client, make_file):
    """Upload ``n`` small text files (``text`` formatted with their number), oldest first."""

    def upload(n: int, text: str = "file {i}\n", suffix: str = "md"):
        return [
            client.create_file(make_file(f"f{i}.{suffix}", text.format(i=i).encode()), "assistants")
            for i in range(n)
        ]

    return upload


def test_attach_with_attributes_and_chunking_then_wait_update_list_and_detach(
    client, store, uploaded
):
    (file,) = uploaded(1, "the quick brown fox\n")
    attached = client.create_vector_store_file(
        store.id,
        file.id,
        attributes={"path": "notes/f0.md", "size": 20, "draft": False},
        chunking_strategy=ChunkingStrategy.fixed(200, 50),
    )
    assert (attached.id, attached.vector_store_id, attached.status) == (
        file.id,
        store.id,
        "in_progress",
    )
    assert attached.attributes == {"path": "notes/f0.md", "size": 20, "draft": False}
    assert attached.chunking_strategy == ChunkingStrategy.fixed(200, 50)

    done = client.wait_vector_store_file(store.id, file.id, timeout=30)
    assert done.status == "completed"
    assert done.last_error is None
    assert client.retrieve_vector_store(store.id).file_counts.completed == 1

    updated = client.update_vector_store_file(store.id, file.id, {"path": "notes/renamed.md"})
    assert updated.attributes == {"path": "notes/renamed.md"}
    assert updated.status == "completed"  # attributes change without ingesting again

    assert [f.id for f in client.iter_vector_store_files(store.id, status="completed")] == [file.id]
    assert list(client.iter_vector_store_files(store.id, status="failed")) == []
    content = client.retrieve_vector_store_file_content(store.id, file.id)
    assert "quick brown fox" in "".join(part.text for part in content.data)

    assert client.delete_vector_store_file(store.id, file.id) is True
    with pytest.raises(NotFoundError):
        client.retrieve_vector_store_file(store.id, file.id)
    assert client.delete_vector_store_file(store.id, file.id, missing_ok=True) is False
    assert client.retrieve_file(file.id).id == file.id  # the File itself stays


def test_a_file_that_cannot_be_parsed_ends_failed_with_the_reason(client, store, make_file):
    fake_pdf = client.create_file(make_file("report.pdf", b"not a pdf at all"), "assistants")
    client.create_vector_store_file(store.id, fake_pdf.id)
    failed = client.wait_vector_store_file(store.id, fake_pdf.id, timeout=30)
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert (failed.last_error.code, failed.last_error.message) == (
        "invalid_file",
        "The file could not be parsed.",
    )


def test_an_extension_the_store_cannot_read_is_refused_at_once(client, store, make_file):
    table = client.create_file(make_file("table.csv", b"a,b\n1,2\n"), "assistants")
    with pytest.raises(BadRequestError) as caught:
        client.create_vector_store_file(store.id, table.id)
    assert (caught.value.code, caught.value.param) == ("unsupported_file", "file_ids")


def test_a_file_stuck_in_progress_is_returned_as_it_is_at_the_deadline(
    client, emulator, store, uploaded
):
    emulator.set_knobs(stuck_rate=1.0, poll_after_ms=50)
    (file,) = uploaded(1)
    client.create_vector_store_file(store.id, file.id)
    started = time.monotonic()
    last = client.wait_vector_store_file(store.id, file.id, timeout=0.3)
    assert last.status == "in_progress"
    assert 0.3 <= time.monotonic() - started < 3


def test_deleting_a_file_removes_it_from_every_store(client, uploaded):
    (file,) = uploaded(1)
    stores = [client.create_vector_store(f"s{i}") for i in range(2)]
    for s in stores:
        client.create_vector_store_file(s.id, file.id)
        client.wait_vector_store_file(s.id, file.id, timeout=30)
    assert client.delete_file(file.id) is True
    for s in stores:
        assert list(client.iter_vector_store_files(s.id)) == []
        assert client.retrieve_vector_store(s.id).file_counts.total == 0


# --- file batches -----------------------------------------------------------------------------


def test_a_batch_of_file_ids_is_attached_waited_for_and_listed_across_pages(
    client, store, uploaded
):
    files = uploaded(7)
    batch = client.create_file_batch(store.id, [f.id for f in files], attributes={"source": "drop"})
    assert batch.vector_store_id == store.id
    assert batch.file_counts.total == 7
    done = client.wait_file_batch(store.id, batch.id, timeout=30)
    assert done.status == "completed"
    assert done.file_counts.completed == 7

    listed = list(client.iter_file_batch_files(store.id, batch.id, order="asc", page_size=3))
    assert {f.id for f in listed} == {f.id for f in files}
    assert len(listed) == 7
    assert {(f.attributes or {}).get("source") for f in listed} == {"drop"}
    assert client.retrieve_file_batch(store.id, batch.id) == done


def test_a_batch_of_files_carries_each_ones_attributes(client, store, uploaded):
    files = uploaded(3)
    batch = client.create_file_batch(
        store.id,
        files=[BatchFile(file_id=f.id, attributes={"n": i}) for i, f in enumerate(files)],
    )
    client.wait_file_batch(store.id, batch.id, timeout=30)
    got = {f.id: f.attributes for f in client.iter_vector_store_files(store.id)}
    assert got == {f.id: {"n": i} for i, f in enumerate(files)}


def test_a_cancelled_batch_leaves_its_pending_files_cancelled(client, emulator, store, uploaded):
    emulator.set_knobs(ingestion_seconds=3600)
    files = uploaded(3)
    batch = client.create_file_batch(store.id, [f.id for f in files])
    cancelled = client.cancel_file_batch(store.id, batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    final = client.wait_file_batch(store.id, batch.id, timeout=10)
    assert final.status == "cancelled"
    assert final.file_counts.cancelled == 3
    assert len(list(client.iter_file_batch_files(store.id, batch.id, status="cancelled"))) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "not both and not neither"),
        ({"file_ids": ["a"], "files": [BatchFile(file_id="a")]}, "not both"),
        ({"file_ids": []}, "1 to 2000"),
        ({"file_ids": ["f"] * 2001}, "1 to 2000"),
        ({"files": [BatchFile(file_id="a")], "attributes": {"a": 1}}, "per file"),
    ],
)
def test_batch_arguments_are_checked_before_any_request(client, args, message):
    with pytest.raises(ValueError, match=message):
        client.create_file_batch("vs_x", **args)


# --- search -----------------------------------------------------------------------------------


def test_search_finds_files_by_text_and_attributes(client, store, make_file):
    texts = {
        "cats.md": "cats purr and sleep in the sun",
        "dogs.md": "dogs bark at the mail carrier",
        "birds.md": "birds sing at dawn; cats watch them",
    }
    ids = {}
    for i, (name, text) in enumerate(texts.items()):
        file = client.create_file(make_file(name, text.encode()), "assistants")
        client.create_vector_store_file(store.id, file.id, attributes={"rank": i, "kind": "pet"})
        ids[name] = file.id
    for file_id in ids.values():
        client.wait_vector_store_file(store.id, file_id, timeout=30)

    results = client.search_vector_store(store.id, "cats")
    found = {r.file_id for r in results.data}
    assert found == {ids["cats.md"], ids["birds.md"]}
    assert all(0 <= r.score <= 1 for r in results.data)
    assert results.data[0].filename in ("cats.md", "birds.md")
    assert all(r.content and r.attributes for r in results.data)

    only_first = client.search_vector_store(
        store.id, "cats", filters=ComparisonFilter(type="lt", key="rank", value=1)
    )
    assert [r.file_id for r in only_first.data] == [ids["cats.md"]]
    compound = CompoundFilter(
        type="and",
        filters=[
            ComparisonFilter(key="kind", value="pet"),
            ComparisonFilter(type="in", key="rank", value=[1, 2]),
        ],
    )
    assert {
        r.file_id for r in client.search_vector_store(store.id, "cats", filters=compound).data
    } == {ids["birds.md"]}
    assert len(client.search_vector_store(store.id, "cats", max_num_results=1).data) == 1
    with pytest.raises(ValueError, match="max_num_results"):
        client.search_vector_store(store.id, "cats", max_num_results=51)


# --- uploads in parts -------------------------------------------------------------------------


@pytest.fixture
def parted(emulator, api_key):
    """A client that sends anything above 10 KB through Uploads, in 4 KB parts."""
    with Client(
        emulator.base_url,
        api_key,
        retry=FAST_RETRY,
        upload_threshold=10_000,
        upload_parts=PartSettings(part_size=4096, workers=4),
    ) as client:
        yield client


def test_a_large_file_goes_through_uploads_in_parts(parted, make_file, jsonl, tmp_path):
    content = jsonl(600)
    path = make_file("train.jsonl", content)
    log: list[RequestRecord] = []
    parted.request_log = log.append
    file = parted.create_file(path, "fine-tune")
    assert (file.filename, file.bytes, file.purpose) == ("train.jsonl", len(content), "fine-tune")
    parts = -(-len(content) // 4096)
    assert [r.path.rsplit("/", 1)[-1] for r in log].count("parts") == parts
    assert log[0].path == "/uploads" and log[-1].path.endswith("/complete")
    dest = tmp_path / "back.jsonl"
    parted.download_file(file.id, dest)
    assert dest.read_bytes() == content
    assert [f.id for f in parted.list_files()] == [file.id]


def test_parts_whose_connection_dropped_are_sent_again_and_only_they(
    parted, emulator, make_file, jsonl, tmp_path
):
    content = jsonl(600)
    path = make_file("train.jsonl", content)
    emulator.set_faults(drop_rate=0.4, seed=4, match=r"^POST /v1/uploads/[^/]+/parts$")
    log: list[RequestRecord] = []
    parted.request_log = log.append
    file = parted.create_file(path, "fine-tune")
    injected = emulator.fault_counts()
    emulator.clear_faults()
    drops = injected["drop_before"] + injected["drop_after"]
    assert drops > 0
    parts = -(-len(content) // 4096)
    assert sum(r.path.endswith("/parts") for r in log) == parts + drops
    dest = tmp_path / "back.jsonl"
    parted.download_file(file.id, dest)
    assert dest.read_bytes() == content
    assert [f.id for f in parted.list_files()] == [file.id]


def test_an_upload_that_expired_midway_starts_again(parted, emulator, make_file, jsonl, tmp_path):
    content = jsonl(600)
    path = make_file("train.jsonl", content)
    # Two seconds, not one: an Upload's expires_at is answered in whole seconds (rounded down),
    # so the client may take it for expired up to a second early; with one, a first part sent a
    # moment late (a busy machine) found it expired already, and it was opened a third time.
    emulator.set_knobs(upload_lifetime_s=2)
    log: list[RequestRecord] = []

    def first_part_outlives_the_upload(record: RequestRecord) -> None:
        log.append(record)
        if record.path.endswith("/parts") and emulator.knobs.upload_lifetime_s == 2:
            time.sleep(2.5)  # the first Upload expires while this part is "on the wire"
            emulator.set_knobs(upload_lifetime_s=3600)

    parted.upload_parts = PartSettings(part_size=4096, workers=1)
    parted.request_log = first_part_outlives_the_upload
    file = parted.create_file(path, "fine-tune")
    assert [r.path for r in log].count("/uploads") == 2
    dest = tmp_path / "back.jsonl"
    parted.download_file(file.id, dest)
    assert dest.read_bytes() == content


def test_an_upload_given_up_is_cancelled(parted, emulator, make_file, jsonl):
    path = make_file("train.jsonl", jsonl(600))
    emulator.set_faults(fail_rate=1.0, match=r"^POST /v1/uploads/[^/]+/parts$")
    log: list[RequestRecord] = []
    parted.request_log = log.append
    parted.retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    with pytest.raises(ServerError):
        parted.create_file(path, "fine-tune")
    emulator.clear_faults()
    assert log[-1].path.endswith("/cancel") and log[-1].status == 200
    assert parted.list_files() == []


# --- pacing against the emulator's budgets ------------------------------------------------------


def test_the_budget_the_emulator_reports_is_what_the_pacer_holds(client, emulator, store, uploaded):
    files = uploaded(2)
    emulator.set_knobs(rate_limits=True, attach_rpm=5)
    for f in files:
        client.create_vector_store_file(store.id, f.id)
    budget = client.pacer.budget(f"attach:{store.id}")
    assert budget is not None
    remaining, limit, reset = budget
    assert (remaining, limit) == (3, 5)
    assert 0 < reset <= 60 + client.pacer.reset_slack  # a one-minute window


# --- under faults -----------------------------------------------------------------------------


def test_attach_and_detach_whose_answers_were_lost_still_succeed(client, emulator, store, uploaded):
    """The first attempt is applied and its answer dropped: the retried attach finds the file
    attached, the retried detach finds it gone — both report success, and the store holds the
    file once."""
    (file,) = uploaded(1)
    emulator.set_faults(
        drop_rate=1.0,
        drop_phase="after",
        match=r"^POST /v1/vector_stores/[^/]+/files$",
        max_faults=1,
    )
    attached = client.create_vector_store_file(store.id, file.id, attributes={"a": 1})
    assert emulator.fault_counts()["drop_after"] == 1
    assert (attached.id, attached.attributes) == (file.id, {"a": 1})
    assert [f.id for f in client.iter_vector_store_files(store.id)] == [file.id]

    emulator.set_faults(
        drop_rate=1.0, drop_phase="after", match=r"^DELETE /v1/vector_stores/", max_faults=1
    )
    assert client.delete_vector_store_file(store.id, file.id) is True
    assert emulator.fault_counts()["drop_after"] == 1
    assert list(client.iter_vector_store_files(store.id)) == []


def test_lists_and_polls_survive_failures_and_429s(client, emulator, store, uploaded):
    files = uploaded(5)
    batch = client.create_file_batch(store.id, [f.id for f in files])
    emulator.set_faults(fail_rate=0.3, rate_limit_rate=0.2, seed=2, match="^GET ")
    done = client.wait_file_batch(store.id, batch.id, timeout=30)
    assert done.file_counts.completed == 5
    listed = client.iter_vector_store_files(store.id, order="asc", page_size=2)
    assert sorted(f.id for f in listed) == sorted(f.id for f in files)
    assert [f.id for f in client.iter_files(order="asc", page_size=2)] == [f.id for f in files]
    injected = emulator.fault_counts()
    assert injected["fail"] + injected["rate_limit"] > 0
