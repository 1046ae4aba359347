"""A pass into vector stores, in-process against the emulator: batches, ingestion to its end,
rejection without re-upload, renames as attribute updates, replace without a gap, ownership."""

from __future__ import annotations

from pathlib import Path

from syncd.api import VectorStoreFile

from tests.engine.conftest import Workspace


def store_files(ws: Workspace, store: str) -> dict[str, VectorStoreFile]:
    return {f.id: f for f in ws.client.iter_vector_store_files(store)}


def setup_store(ws: Workspace, **options: object) -> tuple[str, Path]:
    store = ws.client.create_vector_store("docs").id
    drop = ws.add_folder("docs", vector_stores=[store], **options)
    return store, drop


def test_a_cold_sync_ends_with_every_file_completed_with_its_attributes(ws: Workspace) -> None:
    store, drop = setup_store(ws, attributes={"team": "docs"})
    for i in range(12):
        (drop / f"note{i}.md").write_text(f"note number {i}\n")
    report = ws.run()
    assert report.exit_code() == 0, report.errors
    files = store_files(ws, store)
    assert len(files) == 12
    assert {f.status for f in files.values()} == {"completed"}
    row = ws.entry("docs", "note3.md")
    attrs = files[row.file_id or ""].attributes or {}
    assert attrs["syncd_path"] == "note3.md"
    assert attrs["syncd_sha256"] == row.sha256
    assert attrs["team"] == "docs"
    assert attrs["syncd_instance"]
    assert len(ws.remote()) == 12
    # A second pass changes nothing.
    again = ws.run()
    assert again.counts["uploaded"] == 0 and again.counts["attached"] == 0
