"""Vector stores, their files and file batches: the service's behaviour as service-facts.md
describes it (ingestion, failures, counts, validation, lists, cancel, cascade on file delete)."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from .conftest import Upload
from .support import error_of, refused


def _store(http: httpx2.Client, **body: Any) -> dict[str, Any]:
    response = http.post("vector_stores", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _attach(http: httpx2.Client, vs_id: str, file_id: str, **extra: Any) -> httpx2.Response:
    return http.post(f"vector_stores/{vs_id}/files", json={"file_id": file_id, **extra})


def _wait_done(http: httpx2.Client, path: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = http.get(path).json()
        if body["status"] != "in_progress" or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


@pytest.fixture
def fast(emulator):
    """Ingestion over at once."""
    emulator.set_knobs(ingestion_seconds=0)
    return emulator


# --- stores -----------------------------------------------------------------------------------


def test_a_new_store_is_empty_and_completed(http: httpx2.Client) -> None:
    store = _store(http, name="docs", metadata={"team": "a"})
    assert store["id"].startswith("vs_")
    assert store["object"] == "vector_store"
    assert store["status"] == "completed"
    assert store["usage_bytes"] == 0
    assert store["file_counts"] == {
        "in_progress": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 0,
    }
    assert store["metadata"] == {"team": "a"}
    assert store["last_active_at"] == store["created_at"]
    assert store["expires_at"] is None and "expires_after" not in store


def test_expires_after_and_modify(http: httpx2.Client) -> None:
    store = _store(http, expires_after={"anchor": "last_active_at", "days": 7})
    assert store["expires_at"] == store["last_active_at"] + 7 * 86400
    changed = http.post(
        f"vector_stores/{store['id']}", json={"name": "renamed", "metadata": {"k": "v"}}
    ).json()
    assert (changed["name"], changed["metadata"]) == ("renamed", {"k": "v"})
    assert changed["expires_after"] == {"anchor": "last_active_at", "days": 7}
    cleared = http.post(f"vector_stores/{store['id']}", json={"expires_after": None}).json()
    assert cleared["expires_at"] is None
    bad = http.post(
        "vector_stores", json={"expires_after": {"anchor": "last_active_at", "days": 0}}
    )
    assert (bad.status_code, error_of(bad)["param"]) == (400, "expires_after.days")


def test_an_expired_store_says_so(emulator, http: httpx2.Client) -> None:
    store = _store(http, expires_after={"anchor": "last_active_at", "days": 1})
    real_clock = emulator.store.clock
    emulator.store.clock = lambda: real_clock() + 2 * 86400
    try:
        assert http.get(f"vector_stores/{store['id']}").json()["status"] == "expired"
    finally:
        emulator.store.clock = real_clock


def test_unknown_store_is_a_404(http: httpx2.Client) -> None:
    response = http.get("vector_stores/vs_missing")
    assert response.status_code == 404
    assert error_of(response)["message"] == "No vector store found with id 'vs_missing'."


def test_delete_store_keeps_the_files(fast, http: httpx2.Client, upload: Upload) -> None:
    file = upload()
    store = _store(http, file_ids=[file["id"]])
    deleted = http.delete(f"vector_stores/{store['id']}").json()
    assert deleted == {"id": store["id"], "object": "vector_store.deleted", "deleted": True}
    assert http.get(f"vector_stores/{store['id']}").status_code == 404
    assert http.get(f"files/{file['id']}").status_code == 200


def test_store_list_pages(http: httpx2.Client) -> None:
    ids = [_store(http, name=str(i))["id"] for i in range(5)]
    first = http.get("vector_stores", params={"limit": 2}).json()
    assert [s["id"] for s in first["data"]] == ids[:-3:-1]
    assert first["has_more"] is True
    rest = http.get("vector_stores", params={"limit": 100, "after": first["last_id"]}).json()
    assert [s["id"] for s in rest["data"]] == ids[2::-1]
    before = http.get("vector_stores", params={"order": "asc", "before": ids[3], "limit": 2}).json()
    assert [s["id"] for s in before["data"]] == ids[1:3]
    too_many = http.get("vector_stores", params={"limit": 101})
    assert (too_many.status_code, error_of(too_many)["param"]) == (400, "limit")


# --- attaching and ingestion --------------------------------------------------------------------


def test_attach_answers_in_progress_then_completes(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    emulator.set_knobs(ingestion_seconds=0.3)
    file = upload(content=b"hello world\n", filename="a.md")
    store = _store(http)
    attached = _attach(http, store["id"], file["id"])
    assert attached.status_code == 200, attached.text
    body = attached.json()
    assert body["id"] == file["id"]
    assert (body["object"], body["status"], body["last_error"]) == (
        "vector_store.file",
        "in_progress",
        None,
    )
    assert body["chunking_strategy"] == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    during = http.get(f"vector_stores/{store['id']}").json()
    assert during["status"] == "in_progress"
    assert during["file_counts"]["in_progress"] == 1
    done = _wait_done(http, f"vector_stores/{store['id']}/files/{file['id']}")
    assert done["status"] == "completed"
    assert done["usage_bytes"] == 12
    after = http.get(f"vector_stores/{store['id']}").json()
    assert after["status"] == "completed"
    assert after["usage_bytes"] == 12
    assert after["file_counts"] == {
        "in_progress": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
        "total": 1,
    }


def test_polled_answers_carry_the_poll_hint(emulator, http: httpx2.Client, upload: Upload) -> None:
    emulator.set_knobs(poll_after_ms=250)
    store = _store(http)
    file = upload()
    _attach(http, store["id"], file["id"])
    response = http.get(f"vector_stores/{store['id']}/files/{file['id']}")
    assert response.headers["openai-poll-after-ms"] == "250"
    batch = http.post(
        f"vector_stores/{store['id']}/file_batches", json={"file_ids": [file["id"]]}
    ).json()
    polled = http.get(f"vector_stores/{store['id']}/file_batches/{batch['id']}")
    assert polled.headers["openai-poll-after-ms"] == "250"


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("report.pdf", b"not a pdf at all"),
        ("notes.txt", b"caf\xe9 latin-1, not UTF-8"),
        ("slides.pptx", b"plain text"),
    ],
)
def test_a_file_that_cannot_be_parsed_fails(
    fast, http: httpx2.Client, upload: Upload, filename: str, content: bytes
) -> None:
    file = upload(content=content, filename=filename)
    store = _store(http)
    assert _attach(http, store["id"], file["id"]).json()["status"] == "in_progress"
    done = _wait_done(http, f"vector_stores/{store['id']}/files/{file['id']}")
    assert done["status"] == "failed"
    assert done["last_error"] == {
        "code": "invalid_file",
        "message": "The file could not be parsed.",
    }
    assert http.get(f"vector_stores/{store['id']}").json()["file_counts"]["failed"] == 1


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("ok.pdf", b"%PDF-1.7\n..."),
        ("utf16.txt", "h\u00e9llo".encode("utf-16")),
        ("bom.md", b"\xef\xbb\xbf# title\n"),
    ],
)
def test_files_that_parse_complete(
    fast, http: httpx2.Client, upload: Upload, filename: str, content: bytes
) -> None:
    file = upload(content=content, filename=filename)
    store = _store(http)
    _attach(http, store["id"], file["id"])
    assert _wait_done(http, f"vector_stores/{store['id']}/files/{file['id']}")["status"] == (
        "completed"
    )


def test_an_unsupported_extension_is_refused_at_once(http: httpx2.Client, upload: Upload) -> None:
    file = upload(filename="table.csv")
    store = _store(http)
    response = _attach(http, store["id"], file["id"])
    error = refused(response)
    assert (error["code"], error["param"]) == ("unsupported_file", "file_ids")
    assert error["message"].startswith(
        "Files with extensions [.csv] are not supported for retrieval."
    )
    assert http.get(f"vector_stores/{store['id']}").json()["file_counts"]["total"] == 0


def test_stuck_rate_leaves_files_in_progress(fast, http: httpx2.Client, upload: Upload) -> None:
    fast.set_knobs(stuck_rate=1.0)
    file = upload()
    store = _store(http)
    _attach(http, store["id"], file["id"])
    time.sleep(0.05)
    assert http.get(f"vector_stores/{store['id']}/files/{file['id']}").json()["status"] == (
        "in_progress"
    )
    assert http.get(f"vector_stores/{store['id']}").json()["status"] == "in_progress"


def test_attaching_an_unknown_file_is_a_404(http: httpx2.Client) -> None:
    store = _store(http)
    response = _attach(http, store["id"], "file-missing")
    assert (response.status_code, error_of(response)["param"]) == (404, "file_id")


def test_attaching_twice_answers_the_same_file(fast, http: httpx2.Client, upload: Upload) -> None:
    file = upload()
    store = _store(http)
    first = _attach(http, store["id"], file["id"], attributes={"v": 1}).json()
    again = _attach(http, store["id"], file["id"], attributes={"v": 2}).json()
    assert again["attributes"] == first["attributes"] == {"v": 1}
    assert http.get(f"vector_stores/{store['id']}").json()["file_counts"]["total"] == 1


# --- attributes and chunking ------------------------------------------------------------------


def test_attributes_are_echoed_and_updated_without_reingesting(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    file = upload()
    store = _store(http)
    attrs = {"path": "docs/a.md", "size": 12.5, "draft": False}
    body = _attach(http, store["id"], file["id"], attributes=attrs).json()
    assert body["attributes"] == attrs
    emulator.set_knobs(ingestion_seconds=60)  # a re-ingestion would now last a minute
    time.sleep(0.25)  # the attach's own ingestion (0.2 s) is over
    path = f"vector_stores/{store['id']}/files/{file['id']}"
    updated = http.post(path, json={"attributes": {"path": "docs/b.md"}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["attributes"] == {"path": "docs/b.md"}
    assert updated.json()["status"] == "completed"
    assert http.get(path).json()["attributes"] == {"path": "docs/b.md"}


@pytest.mark.parametrize(
    ("attributes", "param", "code"),
    [
        ({f"k{i}": i for i in range(17)}, "attributes", "object_above_max_properties"),
        ({"k" * 65: "v"}, "attributes", "object_property_name_too_long"),
        ({"k": "v" * 513}, "attributes.k", "string_above_max_length"),
        ({"k": ["list"]}, "attributes.k", "invalid_type"),
        ("text", "attributes", "invalid_type"),
    ],
)
def test_attributes_are_checked(
    http: httpx2.Client, upload: Upload, attributes: Any, param: str, code: str
) -> None:
    file = upload()
    store = _store(http)
    response = _attach(http, store["id"], file["id"], attributes=attributes)
    error = refused(response)
    assert (error["param"], error["code"]) == (param, code)


def test_sixteen_attributes_of_full_length_are_fine(http: httpx2.Client, upload: Upload) -> None:
    attrs = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    store = _store(http)
    assert _attach(http, store["id"], upload()["id"], attributes=attrs).status_code == 200


def test_static_chunking_is_echoed(http: httpx2.Client, upload: Upload) -> None:
    store = _store(http)
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
    }
    body = _attach(http, store["id"], upload()["id"], chunking_strategy=strategy).json()
    assert body["chunking_strategy"] == strategy
    auto = _attach(http, store["id"], upload()["id"], chunking_strategy={"type": "auto"}).json()
    assert auto["chunking_strategy"]["static"] == {
        "max_chunk_size_tokens": 800,
        "chunk_overlap_tokens": 400,
    }


@pytest.mark.parametrize(
    ("static", "param"),
    [
        ({"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}, "max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}, "max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401}, "chunk_overlap_tokens"),
        ({"max_chunk_size_tokens": 800}, "chunk_overlap_tokens"),
    ],
)
def test_chunking_is_checked(
    http: httpx2.Client, upload: Upload, static: dict[str, int], param: str
) -> None:
    store = _store(http)
    response = _attach(
        http, store["id"], upload()["id"], chunking_strategy={"type": "static", "static": static}
    )
    assert refused(response)["param"] == f"chunking_strategy.static.{param}"


# --- removing files -----------------------------------------------------------------------------


def test_deleting_a_file_removes_it_from_every_store(
    fast, http: httpx2.Client, upload: Upload
) -> None:
    kept, gone = upload(content=b"keep\n"), upload(content=b"delete me\n")
    stores = [_store(http, file_ids=[kept["id"], gone["id"]]) for _ in range(2)]
    time.sleep(0.01)
    assert http.get(f"vector_stores/{stores[0]['id']}").json()["usage_bytes"] == 15
    assert http.delete(f"files/{gone['id']}").status_code == 200
    for store in stores:
        after = http.get(f"vector_stores/{store['id']}").json()
        assert after["file_counts"]["total"] == after["file_counts"]["completed"] == 1
        assert after["usage_bytes"] == 5
        listed = http.get(f"vector_stores/{store['id']}/files").json()["data"]
        assert [f["id"] for f in listed] == [kept["id"]]


def test_detaching_keeps_the_file(fast, http: httpx2.Client, upload: Upload) -> None:
    file = upload()
    store = _store(http, file_ids=[file["id"]])
    response = http.delete(f"vector_stores/{store['id']}/files/{file['id']}")
    assert response.json() == {
        "id": file["id"],
        "object": "vector_store.file.deleted",
        "deleted": True,
    }
    assert http.get(f"files/{file['id']}").status_code == 200
    assert http.get(f"vector_stores/{store['id']}/files/{file['id']}").status_code == 404
    again = http.delete(f"vector_stores/{store['id']}/files/{file['id']}")
    assert again.status_code == 404


def test_file_list_filters_by_status(fast, http: httpx2.Client, upload: Upload) -> None:
    good, bad = upload(filename="a.md"), upload(content=b"x", filename="b.pdf")
    store = _store(http, file_ids=[good["id"], bad["id"]])
    time.sleep(0.01)
    path = f"vector_stores/{store['id']}/files"
    assert [f["id"] for f in http.get(path, params={"filter": "failed"}).json()["data"]] == [
        bad["id"]
    ]
    assert [f["id"] for f in http.get(path, params={"filter": "completed"}).json()["data"]] == [
        good["id"]
    ]
    wrong = http.get(path, params={"filter": "done"})
    assert (wrong.status_code, error_of(wrong)["param"]) == (400, "filter")


# --- batches ------------------------------------------------------------------------------------


def test_a_batch_attaches_its_files_and_completes(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    files = [upload(content=f"doc {i}\n".encode())["id"] for i in range(3)]
    store = _store(http)
    response = http.post(
        f"vector_stores/{store['id']}/file_batches",
        json={"file_ids": files, "attributes": {"src": "batch"}},
    )
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["id"].startswith("vsfb_")
    assert (batch["object"], batch["status"]) == ("vector_store.files_batch", "in_progress")
    assert batch["file_counts"]["in_progress"] == batch["file_counts"]["total"] == 3
    done = _wait_done(http, f"vector_stores/{store['id']}/file_batches/{batch['id']}")
    assert done["status"] == "completed"
    assert done["file_counts"]["completed"] == 3
    listed = http.get(f"vector_stores/{store['id']}/file_batches/{batch['id']}/files").json()
    assert sorted(f["id"] for f in listed["data"]) == sorted(files)
    assert {f["attributes"]["src"] for f in listed["data"]} == {"batch"}


def test_a_batch_of_files_carries_per_file_settings(http: httpx2.Client, upload: Upload) -> None:
    a, b = upload()["id"], upload()["id"]
    store = _store(http)
    static = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 0}}
    batch = http.post(
        f"vector_stores/{store['id']}/file_batches",
        json={
            "files": [
                {"file_id": a, "attributes": {"n": 1}},
                {"file_id": b, "chunking_strategy": static},
            ]
        },
    ).json()
    listed = http.get(f"vector_stores/{store['id']}/file_batches/{batch['id']}/files").json()
    by_id = {f["id"]: f for f in listed["data"]}
    assert by_id[a]["attributes"] == {"n": 1}
    assert by_id[b]["chunking_strategy"] == static


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"file_ids": ["file-a"], "files": [{"file_id": "file-a"}]}, "files"),
        ({"file_ids": []}, "file_ids"),
        ({"files": []}, "files"),
        ({"file_ids": [f"file-{i}" for i in range(2001)]}, "file_ids"),
        ({}, "file_ids"),
        ({"files": [{"file_id": "file-a"}], "attributes": {"a": 1}}, "files"),
        (
            {"files": [{"file_id": "file-a", "attributes": {"k": "v" * 513}}]},
            "files[0].attributes.k",
        ),
    ],
)
def test_batch_requests_are_checked(http: httpx2.Client, body: dict[str, Any], param: str) -> None:
    store = _store(http)
    response = http.post(f"vector_stores/{store['id']}/file_batches", json=body)
    assert refused(response)["param"] == param


def test_cancel_moves_pending_files_to_cancelled(fast, http: httpx2.Client, upload: Upload) -> None:
    done_file = upload()["id"]
    store = _store(http, file_ids=[done_file])
    fast.set_knobs(stuck_rate=1.0)
    pending = [upload()["id"] for _ in range(2)]
    batch = http.post(
        f"vector_stores/{store['id']}/file_batches", json={"file_ids": [*pending, done_file]}
    ).json()
    cancelled = http.post(f"vector_stores/{store['id']}/file_batches/{batch['id']}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["file_counts"] == {
        "in_progress": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 2,
        "total": 3,
    }
    files = http.get(
        f"vector_stores/{store['id']}/file_batches/{batch['id']}/files",
        params={"filter": "cancelled"},
    ).json()
    assert sorted(f["id"] for f in files["data"]) == sorted(pending)
    assert http.get(f"vector_stores/{store['id']}").json()["file_counts"]["cancelled"] == 2


def test_unknown_batch_is_a_404(http: httpx2.Client) -> None:
    store = _store(http)
    assert http.get(f"vector_stores/{store['id']}/file_batches/vsfb_x").status_code == 404


# --- file content and search ------------------------------------------------------------------


def test_file_content_is_the_parsed_text(fast, http: httpx2.Client, upload: Upload) -> None:
    file = upload(content="Grüße\n".encode(), filename="g.md")
    store = _store(http, file_ids=[file["id"]])
    body = http.get(f"vector_stores/{store['id']}/files/{file['id']}/content").json()
    assert body == {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": "Grüße\n"}],
        "has_more": False,
        "next_page": None,
    }


def test_search_ranks_files_and_applies_filters(fast, http: httpx2.Client, upload: Upload) -> None:
    alpha = upload(content=b"The quick brown fox jumps over the lazy dog.\n", filename="a.txt")
    beta = upload(content=b"A fox is a small animal.\n", filename="b.md")
    gamma = upload(content=b"Nothing relevant here.\n", filename="c.md")
    store = _store(http)
    batch = http.post(
        f"vector_stores/{store['id']}/file_batches",
        json={
            "files": [
                {"file_id": alpha["id"], "attributes": {"year": 2024, "lang": "en"}},
                {"file_id": beta["id"], "attributes": {"year": 2020, "lang": "en"}},
                {"file_id": gamma["id"], "attributes": {"year": 2024, "lang": "de"}},
            ]
        },
    ).json()
    _wait_done(http, f"vector_stores/{store['id']}/file_batches/{batch['id']}")
    path = f"vector_stores/{store['id']}/search"

    result = http.post(path, json={"query": "quick fox"}).json()
    assert result["object"] == "vector_store.search_results.page"
    assert result["search_query"] == ["quick fox"]
    assert (result["has_more"], result["next_page"]) == (False, None)
    assert [r["file_id"] for r in result["data"]] == [alpha["id"], beta["id"]]
    top = result["data"][0]
    assert top["filename"] == "a.txt"
    assert top["attributes"] == {"year": 2024, "lang": "en"}
    assert top["content"] == [
        {"type": "text", "text": "The quick brown fox jumps over the lazy dog."}
    ]
    assert 0 < result["data"][1]["score"] < top["score"] <= 1

    recent = {"type": "gte", "key": "year", "value": 2021}
    assert [
        r["file_id"]
        for r in http.post(path, json={"query": "fox", "filters": recent}).json()["data"]
    ] == [alpha["id"]]
    either = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "lang", "value": "de"},
            {"type": "lt", "key": "year", "value": 2021},
        ],
    }
    hits = http.post(path, json={"query": ["fox", "relevant"], "filters": either}).json()
    assert sorted(r["file_id"] for r in hits["data"]) == sorted([beta["id"], gamma["id"]])
    limited = http.post(path, json={"query": "fox", "max_num_results": 1}).json()
    assert len(limited["data"]) == 1
    again = http.post(path, json={"query": "quick fox"}).json()
    assert again == result  # deterministic


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "query"),
        ({"query": "x", "max_num_results": 51}, "max_num_results"),
        ({"query": "x", "filters": {"type": "like", "key": "a", "value": 1}}, "filters.type"),
        (
            {"query": "x", "filters": {"type": "and", "filters": [{"type": "eq"}]}},
            "filters.filters[0].key",
        ),
    ],
)
def test_search_requests_are_checked(http: httpx2.Client, body: dict[str, Any], param: str) -> None:
    store = _store(http)
    response = http.post(f"vector_stores/{store['id']}/search", json=body)
    assert refused(response)["param"] == param


# --- settings at run time ---------------------------------------------------------------------


def test_settings_can_be_read_and_changed_over_http(emulator, http: httpx2.Client) -> None:
    admin = emulator.admin_url
    headers = {"Authorization": http.headers["Authorization"]}
    current = httpx2.get(f"{admin}/settings", headers=headers).json()["settings"]
    assert current["ingestion_seconds"] == 0.2
    changed = httpx2.put(
        f"{admin}/settings", headers=headers, json={"stuck_rate": 0.5, "assistants_api": "retired"}
    )
    assert changed.status_code == 200
    assert emulator.knobs.stuck_rate == 0.5
    bad = httpx2.put(f"{admin}/settings", headers=headers, json={"stuck_rate": 2})
    assert bad.status_code == 400 and emulator.knobs.stuck_rate == 0.5
    unknown = httpx2.put(f"{admin}/settings", headers=headers, json={"nope": 1})
    assert unknown.status_code == 400


def test_a_removed_file_leaves_its_batch(fast, http: httpx2.Client, upload: Upload) -> None:
    detached, deleted, kept = (upload()["id"] for _ in range(3))
    store = _store(http)
    path = f"vector_stores/{store['id']}"
    batch = http.post(f"{path}/file_batches", json={"file_ids": [detached, deleted, kept]}).json()
    http.delete(f"{path}/files/{detached}")
    http.delete(f"files/{deleted}")
    _attach(http, store["id"], detached)  # attached again, outside any batch
    counts = http.get(f"{path}/file_batches/{batch['id']}").json()["file_counts"]
    assert counts["total"] == 1
    listed = http.get(f"{path}/file_batches/{batch['id']}/files").json()["data"]
    assert [f["id"] for f in listed] == [kept]
