"""Files at rest stay out of the plan: a pass hands the planner only what can need an action.

(That leaving them out never changes a plan is checked against the planner's own model in
``tests/plan/test_machine.py``; here, what a real pass over real folders and the emulator
hands it.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from syncd.api import APIError, FilePage
from syncd.config import FolderConfig
from syncd.engine import reconcile
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry, FolderSpec, LocalFolder, Manifest, State
from syncd.engine.rest import RoundTables
from syncd.engine.scan import scan_folder, scan_paths

from .conftest import Workspace


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[Manifest]:
    """The manifest the planner is handed, round by round."""
    seen: list[Manifest] = []
    real = reconcile.plan

    def spy(folders: Any, manifest: Manifest, *args: Any, **kwargs: Any) -> Any:
        seen.append(manifest)
        return real(folders, manifest, *args, **kwargs)

    monkeypatch.setattr(reconcile, "plan", spy)
    return seen


def test_an_unchanged_folder_hands_the_planner_no_entry(
    ws: Workspace, planned: list[Manifest]
) -> None:
    store = ws.client.create_vector_store("kb").id
    docs = ws.add_folder("docs", vector_stores=[store])
    for i in range(6):
        (docs / f"{i}.md").write_text(f"doc {i}")
    (docs / "empty.md").write_text("")  # rejected: its verdict is at rest too
    ws.run()
    ws.run()  # the store finished ingesting: nothing left to look at

    planned.clear()
    report = ws.run()
    assert report.counts["unchanged"] == 6 and report.counts["rejected"] == 1
    assert [dict(m.entries) for m in planned] == [{}]
    assert planned[0].resting == {"docs": 6}


def test_only_the_files_that_may_need_an_action_are_planned(
    ws: Workspace, planned: list[Manifest]
) -> None:
    store = ws.client.create_vector_store("kb").id
    docs = ws.add_folder("docs", vector_stores=[store])
    for name in ("edited", "touched", "detached", "retagged", "gone", "same", "copy"):
        (docs / f"{name}.md").write_text(f"{name} content")
    (docs / "copy.md").write_text("gone content")  # shares its content with gone.md
    ws.run()
    ws.run()
    ids = {e.path: e.file_id for e in ws.manifest.entries("docs").values() if e.file_id}

    (docs / "edited.md").write_text("edited content, version 2")
    os.utime(docs / "touched.md", ns=(1, 1))
    ws.client.delete_vector_store_file(store, ids["detached.md"])
    ws.client.update_vector_store_file(store, ids["retagged.md"], {"x": "y"})
    (docs / "gone.md").unlink()
    planned.clear()
    report = ws.run()

    first = planned[0]
    # copy.md is at rest, but a removed file had its content: the planner must see it to
    # know the removal loses nothing.
    assert sorted(path for _, path in first.entries) == [
        "copy.md",
        "detached.md",
        "edited.md",
        "gone.md",
        "retagged.md",
        "touched.md",
    ]
    assert first.resting == {"docs": 1}  # same.md
    assert report.counts["replaced"] == 1 and report.counts["deleted"] >= 1
    assert report.exit_code() == 0


def test_a_round_reads_the_folder_once_however_many_files_are_busy(tmp_path: Path) -> None:
    """Files with the content of a busy one are looked up by content, not found by reading the
    whole folder once per busy file (which took 4 s at 100 busy files in 100,000)."""
    size, busy = 4000, 200
    entries = [
        Entry("docs", f"{i}.md", 5, 1, i, f"{i:064x}", State.SYNCED, file_id=f"file-{i}")
        for i in range(size)
    ]
    spec = FolderSpec("docs", "assistants")
    with ManifestDB.open(tmp_path) as db, RoundTables(db) as tables:
        db.put_entries(entries)
        # The listing has none of the first ``busy`` files: they are not at rest.
        listed = [
            {
                "id": e.file_id,
                "filename": e.path,
                "bytes": 5,
                "purpose": "assistants",
                "created_at": 1,
            }
            for e in entries[busy:]
        ]
        tables.add_file_page(FilePage(json.dumps({"object": "list", "data": listed})))
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        with db.connection() as conn:
            conn.set_progress_handler(count, 100)
        try:
            selection = tables.select([LocalFolder(spec, {})], unavailable={}, instance="test")
        finally:
            with db.connection() as conn:
                conn.set_progress_handler(None, 100)
    assert len(selection.manifest.entries) == busy
    # About 70 of SQLite's virtual-machine steps an entry (counted a hundred at a time): reading
    # the folder once per busy file took 1,300 (``busy`` passes over ``size`` entries).
    assert steps * 100 < 200 * size


def test_a_folder_found_unplannable_after_the_listing_leaves_nothing_behind(
    ws: Workspace, planned: list[Manifest]
) -> None:
    """The listing's thread finds the entries it shows not at rest for every folder; one whose
    store turns out gone is skipped, and the other folder is planned as if it were alone."""
    kept, doomed = (ws.client.create_vector_store(name).id for name in ("kept", "doomed"))
    docs = ws.add_folder("docs", vector_stores=[kept])
    notes = ws.add_folder("notes", vector_stores=[doomed])
    for folder in (docs, notes):
        for i in range(3):
            (folder / f"{i}.md").write_text(f"{folder.name} {i}")
    ws.run()
    ws.run()
    (docs / "0.md").write_text("docs 0, version 2")
    ws.client.delete_vector_store(doomed)

    planned.clear()
    report = ws.run()
    assert sorted(path for _, path in planned[0].entries) == ["0.md"]
    assert planned[0].resting == {"docs": 2}
    assert report.counts["replaced"] == 1
    assert len(ws.manifest.entries("notes")) == 3  # skipped, not forgotten


def test_a_scan_of_some_paths_finds_gone_only_what_it_looked_at(tmp_path: Path) -> None:
    """A known path at or below a path the daemon looked at, and not there, is gone; every other
    known path stands as the manifest has it (``dirt.md`` is not under ``dir``)."""
    root = tmp_path / "docs"
    for rel in ("a.md", "b.md", "dir/c.md", "dir/sub/d.md", "dirt.md", "other.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    config = FolderConfig(name="docs", path=root, purpose="assistants")
    db = ManifestDB.memory()
    scanned = scan_folder(config, {})
    db.put_entries(
        [
            Entry(
                "docs",
                f.path,
                f.size,
                f.mtime_ns,
                f.inode,
                f.sha256,
                State.SYNCED,
                "file-1",
                ctime_ns=f.ctime_ns,
            )
            for f in scanned.local.files.values()
        ]
    )
    for rel in ("b.md", "dir/sub/d.md", "dirt.md", "other.md"):
        (root / rel).unlink()
    (root / "a.md").write_text("a, version 2")

    with RoundTables(db) as tables:
        sink = tables.folder("docs", whole=False)
        result = scan_paths(config, ["a.md", "b.md", "dir"], sink.known(), sink=sink)
        with db.connection() as conn:
            changed = dict(conn.execute("SELECT path, present FROM round_changed"))
    assert set(result.local.files) == {"a.md"}  # dir/c.md is unchanged: never an object
    assert changed == {"a.md": 1, "b.md": 0, "dir/sub/d.md": 0}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"object":"list","data":[],"last_id":null,"has_more":false}', None),
        ('{"files":[],"last_id":"file-1","has_more":false}', "not a page of files"),
        ('{"data":{},"last_id":"file-1","has_more":false}', "not a page of files"),
    ],
)
def test_a_page_that_gives_no_rows_must_be_an_empty_list(
    tmp_path: Path, text: str, error: str | None
) -> None:
    # The client reads a page's end alone when it can, so an answer without a list of files
    # reaches the tables: there it must not pass for a service without files.
    with ManifestDB.open(tmp_path) as db, RoundTables(db) as tables:
        if error is None:
            tables.add_file_page(FilePage(text))
        else:
            with pytest.raises(APIError, match=error):
                tables.add_file_page(FilePage(text))


@pytest.mark.parametrize(
    "item",
    [
        {"id": "file-1", "filename": "a.md", "purpose": "assistants", "created_at": 1},
        {
            "id": "file-1",
            "filename": "a.md",
            "bytes": "three",
            "purpose": "assistants",
            "created_at": 1,
        },
        "file-1",
    ],
)
def test_a_listed_item_that_is_not_a_file_is_an_api_error(tmp_path: Path, item: object) -> None:
    good = {"id": "file-0", "filename": "b.md", "bytes": 2, "purpose": "assistants"}
    page = FilePage(json.dumps({"data": [good | {"created_at": 1}, item], "has_more": False}))
    error = "an item of the file list is not a file"
    with (
        ManifestDB.open(tmp_path) as db,
        RoundTables(db) as tables,
        pytest.raises(APIError, match=error),
    ):
        tables.add_file_page(page)
