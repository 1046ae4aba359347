"""Passes into vector stores, in-process against the emulator over HTTP: file batches, ingestion
followed to its end, rejection without re-upload, renames as attribute updates, replace
without a gap, ownership between instances, and the retired Assistants API."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from syncd.api import ComparisonFilter, VectorStoreFile
from syncd.engine import scan
from syncd.engine.model import State

from .conftest import Workspace


def store_files(ws: Workspace, store: str) -> dict[str, VectorStoreFile]:
    return {f.id: f for f in ws.client.iter_vector_store_files(store)}


def with_store(ws: Workspace, name: str = "docs", **options: Any) -> tuple[str, Path]:
    store = ws.client.create_vector_store(name).id
    drop = ws.add_folder(name, vector_stores=[store], **options)
    return store, drop


def requests(ws: Workspace) -> list[str]:
    """Start recording the requests the client sends (``METHOD /path``); the live list."""
    sent: list[str] = []
    ws.client.request_log = lambda r: sent.append(f"{r.method} {r.path}")
    return sent


def test_a_cold_sync_attaches_in_batches_and_ends_completed(ws: Workspace) -> None:
    store, drop = with_store(ws, attributes={"team": "docs"})
    for i in range(40):
        (drop / f"note{i}.md").write_text(f"note number {i}\n")
    sent = requests(ws)
    report = ws.run()
    assert report.exit_code() == 0, report.errors
    assert report.counts["uploaded"] == 40 and report.counts["attached"] == 40
    files = store_files(ws, store)
    assert len(files) == 40 and {f.status for f in files.values()} == {"completed"}
    row = ws.entry("docs", "note3.md")
    assert row.file_id is not None
    attributes = files[row.file_id].attributes or {}
    assert attributes["syncd_path"] == "note3.md"
    assert attributes["syncd_sha256"] == row.sha256
    assert attributes["syncd_folder"] == "docs"
    assert attributes["team"] == "docs"
    assert attributes["syncd_instance"] == (ws.state_dir / "instance-id").read_text().strip()
    # Batches, not one attach request per file.
    batches = [r for r in sent if r.endswith("/file_batches")]
    singles = [r for r in sent if r == f"POST /v1/vector_stores/{store}/files"]
    assert batches and len(batches) + len(singles) < 40
    assert len(ws.remote()) == 40
    again = ws.run()
    assert (again.counts["uploaded"], again.counts["attached"]) == (0, 0)


def test_a_file_whose_ingestion_fails_is_rejected_once_and_never_uploaded_again(
    ws: Workspace,
) -> None:
    store, drop = with_store(ws)
    (drop / "good.md").write_text("fine\n")
    (drop / "broken.pdf").write_bytes(b"this is not a PDF at all")
    report = ws.run()
    row = ws.entry("docs", "broken.pdf")
    assert row.state is State.REJECTED and row.file_id is None
    assert "could not be parsed" in (row.last_error or "")
    assert report.exit_code() == 1
    assert [f.filename for f in ws.remote().values()] == ["good.md"]  # the failed one deleted
    assert len(store_files(ws, store)) == 1
    sent = requests(ws)
    for _ in range(2):
        again = ws.run()
        assert again.counts["uploaded"] == 0
    (drop / "broken.pdf").touch()  # a new timestamp is not new content
    ws.run()
    assert not [r for r in sent if r == "POST /v1/files"]
    (drop / "broken.pdf").write_bytes(b"%PDF-1.4 now a real one")
    ws.run()
    assert ws.entry("docs", "broken.pdf").state is State.SYNCED
    assert len(store_files(ws, store)) == 2


def synced_draft(ws: Workspace) -> tuple[str, Path, str]:
    """A store folder with ``draft.md`` synced: the store, the folder and the file's id."""
    store, drop = with_store(ws)
    (drop / "draft.md").write_text("the plan\n")
    ws.run()
    file_id = ws.entry("docs", "draft.md").file_id
    assert file_id is not None
    return store, drop, file_id


def moved_to_final(ws: Workspace, store: str, file_id: str) -> VectorStoreFile:
    """``draft.md``'s file, which must now be ``final.md``'s and the store's only one."""
    assert ws.entry("docs", "final.md").file_id == file_id
    assert ws.manifest.entry("docs", "draft.md") is None
    found = store_files(ws, store)
    assert list(found) == [file_id]
    assert (found[file_id].attributes or {})["syncd_path"] == "final.md"
    return found[file_id]


def test_a_rename_updates_the_path_attribute_without_an_upload(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, drop, file_id = synced_draft(ws)
    sent = requests(ws)
    hashed: list[str] = []
    real_hash = scan.sha256_file

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        hashed.append(str(path))
        return real_hash(path, *args, **kwargs)

    monkeypatch.setattr(scan, "sha256_file", counted)
    (drop / "draft.md").rename(drop / "final.md")
    report = ws.run()
    assert report.exit_code() == 0, report.errors
    assert moved_to_final(ws, store, file_id).status == "completed"
    # Read once, to find its content is draft.md's: the row moved with the whole stat (its
    # ctime too), so the pass's next round does not read it again.
    assert hashed == [str(drop / "final.md")]
    assert not [r for r in sent if r == "POST /v1/files" or "file_batches" in r]


def test_a_file_renamed_while_the_scan_runs_is_not_taken_for_removed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, drop, file_id = synced_draft(ws)
    real_scandir = scan.os.scandir

    def renamed_after_the_listing(path: Any) -> Any:
        listing = list(real_scandir(path))
        if (drop / "draft.md").exists():
            (drop / "draft.md").rename(drop / "final.md")
        return contextlib.nullcontext(iter(listing))

    monkeypatch.setattr(scan.os, "scandir", renamed_after_the_listing)
    sent = requests(ws)
    report = ws.run()
    monkeypatch.undo()
    assert report.exit_code() == 0, report.errors
    # Listed, then gone: the pass cannot tell a removal from a rename it did not see whole,
    # so it keeps the file as it was; the next pass sees the rename.
    assert [r for r in sent if r.startswith(("POST", "DELETE"))] == []
    assert ws.entry("docs", "draft.md").file_id == file_id
    ws.run()
    moved_to_final(ws, store, file_id)


def test_attributes_changed_by_someone_else_are_put_back(ws: Workspace) -> None:
    store, drop = with_store(ws)
    (drop / "a.md").write_text("alpha\n")
    ws.run()
    file_id = ws.entry("docs", "a.md").file_id
    assert file_id is not None
    ws.client.update_vector_store_file(store, file_id, {"syncd_path": "elsewhere.md"})
    ws.run()
    assert (store_files(ws, store)[file_id].attributes or {})["syncd_path"] == "a.md"


def test_a_store_file_detached_by_someone_else_is_attached_again(ws: Workspace) -> None:
    store, drop = with_store(ws)
    (drop / "a.md").write_text("alpha\n")
    ws.run()
    file_id = ws.entry("docs", "a.md").file_id
    assert file_id is not None
    ws.client.delete_vector_store_file(store, file_id)
    report = ws.run()
    assert report.counts["uploaded"] == 0 and report.counts["attached"] == 1
    assert store_files(ws, store)[file_id].status == "completed"


def test_a_replacement_is_completed_before_the_old_version_leaves(ws: Workspace) -> None:
    ws.emulator.set_knobs(ingestion_seconds=0.5)
    store, drop = with_store(ws)
    (drop / "guide.md").write_text("zebra crossing, version one\n")
    ws.run()
    old = ws.entry("docs", "guide.md").file_id
    (drop / "guide.md").write_text("zebra crossing, version two\n")
    misses: list[int] = []
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            hits = ws.client.search_vector_store(store, "zebra").data
            if not hits:
                misses.append(1)

    searcher = threading.Thread(target=search)
    searcher.start()
    try:
        report = ws.run()
    finally:
        done.set()
        searcher.join()
    assert report.exit_code() == 0, report.errors
    new = ws.entry("docs", "guide.md").file_id
    assert new != old and list(store_files(ws, store)) == [new]
    assert old not in ws.remote()
    assert misses == []


def test_another_instances_store_files_are_never_touched(ws: Workspace, tmp_path: Path) -> None:
    store, drop = with_store(ws)
    (drop / "mine.md").write_text("mine\n")
    ws.run()
    # Another syncd (its own state directory) syncs its folder into the same store.
    other = Workspace(tmp_path / "other", ws.emulator, ws.api_key)
    (tmp_path / "other").mkdir()
    theirs = other.add_folder("theirs", vector_stores=[store])
    (theirs / "theirs.md").write_text("theirs\n")
    other.run()
    other.close()
    (drop / "mine.md").unlink()
    ws.run()
    left = store_files(ws, store)
    assert [(f.attributes or {})["syncd_path"] for f in left.values()] == ["theirs.md"]
    assert [f.filename for f in ws.remote().values()] == ["theirs.md"]


def test_a_store_that_was_deleted_skips_its_folder(ws: Workspace) -> None:
    store, drop = with_store(ws)
    (drop / "a.md").write_text("alpha\n")
    ws.run()
    ws.client.delete_vector_store(store)
    (drop / "a.md").unlink()
    report = ws.run()
    assert report.exit_code() == 1
    assert any(f"vector store {store} does not exist" in e["message"] for e in report.errors)
    assert len(ws.remote()) == 1  # nothing deleted while the folder is skipped


def test_retired_assistants_are_skipped_with_one_message_and_stores_go_on(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    assistant = ws.assistant()
    ws.emulator.set_knobs(assistants_api="retired")
    store = ws.client.create_vector_store("kb").id
    drop = ws.add_folder("docs", assistants=[assistant], vector_stores=[store])
    other = ws.add_folder("notes", vector_stores=[store])
    (drop / "a.md").write_text("alpha\n")
    (other / "b.md").write_text("beta\n")
    with caplog.at_level(logging.WARNING, logger="syncd"):
        report = ws.run()
    assert report.exit_code() == 3
    said = [r.getMessage() for r in caplog.records if "no longer offers" in r.getMessage()]
    assert len([m for m in said if "vector_stores" in m]) == 1
    assert {(f.attributes or {})["syncd_path"] for f in store_files(ws, store).values()} == {
        "a.md",
        "b.md",
    }


def test_a_file_stuck_in_progress_is_reported_and_not_uploaded_again(ws: Workspace) -> None:
    ws.emulator.set_knobs(stuck_rate=1.0)
    _, drop = with_store(ws, ingestion_timeout_seconds=0.5)
    (drop / "a.md").write_text("alpha\n")
    first = ws.run()
    assert any(a["what"] == "ingesting" for a in first.actions)
    sent = requests(ws)
    second = ws.run()
    assert [p.kind for p in second.problems] == ["ingestion_slow"]
    assert "does not upload it again" in second.problems[0].message
    assert not [r for r in sent if r.startswith("POST")]
    assert ws.entry("docs", "a.md").state is State.SYNCED


def test_search_filters_on_the_path_attribute(ws: Workspace) -> None:
    store, drop = with_store(ws)
    (drop / "a.md").write_text("shared words here\n")
    (drop / "b.md").write_text("shared words here\n")
    ws.run()
    hits = ws.client.search_vector_store(
        store, "shared", filters=ComparisonFilter(key="syncd_path", value="b.md")
    ).data
    assert [h.filename for h in hits] == ["b.md"]
