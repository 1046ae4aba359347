"""The official SDK drives the emulator through today's API: files, vector stores, batches,
search, deletes and the cascade, and chunked Uploads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openai
import pytest
from openai import OpenAI


def test_files_create_and_auto_pagination(client: OpenAI) -> None:
    created = [
        client.files.create(file=(f"f{i}.txt", f"text {i}".encode()), purpose="assistants")
        for i in range(5)
    ]
    # limit=2 forces three pages; the SDK follows the cursor by itself.
    listed = [f.id for f in client.files.list(limit=2)]
    assert listed == [f.id for f in reversed(created)]
    first = client.files.list(limit=2)
    assert first.has_more is True and len(first.data) == 2


def test_files_expire_as_asked(client: OpenAI) -> None:
    kept = client.files.create(
        file=("a.txt", b"x"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert kept.expires_at == kept.created_at + 3600
    batch = client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
    assert batch.expires_at == batch.created_at + 30 * 24 * 3600
    with pytest.raises(openai.BadRequestError) as raised:
        client.files.create(file=("c.txt", b"x"), purpose="search")  # type: ignore[arg-type]
    assert raised.value.param == "purpose"


def test_vector_store_attach_poll_update_search_and_delete(client: OpenAI, tmp_path: Path) -> None:
    store = client.vector_stores.create(name="docs", metadata={"team": "a"})
    assert store.status == "completed" and store.file_counts.total == 0
    fox = client.files.create(
        file=("fox.md", b"The quick brown fox jumps over the lazy dog."), purpose="assistants"
    )
    attached = client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=fox.id, attributes={"lang": "en", "year": 2024}
    )
    assert attached.id == fox.id
    assert attached.status == "completed"
    assert attached.attributes == {"lang": "en", "year": 2024}

    updated = client.vector_stores.files.update(
        file_id=fox.id, vector_store_id=store.id, attributes={"lang": "de"}
    )
    assert updated.attributes == {"lang": "de"}
    assert updated.status == "completed"

    results = client.vector_stores.search(
        vector_store_id=store.id,
        query="quick fox",
        filters={"type": "eq", "key": "lang", "value": "de"},
    )
    hits = list(results)
    assert [h.file_id for h in hits] == [fox.id]
    assert hits[0].filename == "fox.md"
    assert hits[0].content[0].text.startswith("The quick brown fox")
    assert 0 < hits[0].score <= 1
    assert (
        list(
            client.vector_stores.search(
                vector_store_id=store.id,
                query="fox",
                filters={"type": "eq", "key": "lang", "value": "en"},
            )
        )
        == []
    )

    # Removing the file from the store keeps the File; deleting the File empties the store.
    client.vector_stores.files.delete(file_id=fox.id, vector_store_id=store.id)
    assert client.files.retrieve(fox.id).id == fox.id
    client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=fox.id)
    assert client.vector_stores.retrieve(store.id).file_counts.completed == 1
    assert client.files.delete(fox.id).deleted is True
    after = client.vector_stores.retrieve(store.id)
    assert after.file_counts.total == 0 and after.usage_bytes == 0
    assert client.vector_stores.delete(store.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_file_batches_upload_and_poll(client: OpenAI, tmp_path: Path) -> None:
    store = client.vector_stores.create(name="batch")
    paths = []
    for i in range(4):
        path = tmp_path / f"doc{i}.txt"
        path.write_text(f"document number {i}\n", encoding="utf-8")
        paths.append(path)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not really a pdf")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=[p.open("rb") for p in [*paths, bad]]
    )
    assert batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.failed) == (4, 1)
    failed = list(
        client.vector_stores.file_batches.list_files(
            batch_id=batch.id, vector_store_id=store.id, filter="failed"
        )
    )
    assert failed[0].last_error is not None
    assert failed[0].last_error.code == "invalid_file"
    files = list(client.vector_stores.files.list(vector_store_id=store.id, limit=2))
    assert len(files) == 5


def test_unsupported_extension_is_a_bad_request(client: OpenAI) -> None:
    store = client.vector_stores.create(name="csv")
    table = client.files.create(file=("t.csv", b"a,b\n"), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as raised:
        client.vector_stores.files.create(vector_store_id=store.id, file_id=table.id)
    assert raised.value.code == "unsupported_file"


def test_uploads_upload_file_chunked(client: OpenAI, tmp_path: Path) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "big.jsonl"
    path.write_bytes(content)
    upload = client.uploads.upload_file_chunked(
        file=path,
        mime_type="application/jsonl",
        purpose="batch",
        part_size=300_000,  # four parts, the last one short
        md5=hashlib.md5(content, usedforsecurity=False).hexdigest(),
    )
    assert upload.status == "completed"
    assert upload.file is not None and upload.file.bytes == len(content)
    assert client.files.content(upload.file.id).read() == content
