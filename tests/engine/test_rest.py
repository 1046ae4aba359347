"""Files at rest stay out of the plan: a pass hands the planner only what can need an action.

(That leaving them out never changes a plan is checked against the planner's own model in
``tests/plan/test_machine.py``; here, what a real pass over real folders and the emulator
hands it.)"""

from __future__ import annotations

import os
from typing import Any

import pytest

from syncd.engine import reconcile
from syncd.engine.model import Manifest

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
