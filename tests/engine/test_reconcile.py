"""Whole passes, in-process, against the emulator over HTTP: what the folders look like, what the
service ends up holding, what the report says."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from syncd.engine.model import ASSISTANT_FILE_LIMIT, Attempt, State

from .conftest import Workspace, sha


def contents(ws: Workspace) -> dict[str, bytes]:
    """filename -> bytes of every file on the service (read from the emulator's store: the
    service does not let anyone download files of purpose assistants)."""
    store = ws.emulator.store
    assert store is not None  # the emulator is running
    return {f.filename: store.blob_path(f.id).read_bytes() for f in ws.remote().values()}


def writes(ws: Workspace) -> list[str]:
    """Start recording the write requests the client sends; returns the (live) list."""
    sent: list[str] = []
    ws.client.request_log = lambda r: (
        sent.append(f"{r.method} {r.path}") if r.method != "GET" else None
    )
    return sent


def test_new_changed_removed_and_renamed_files(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "guides").mkdir()
    (docs / "guides" / "setup.md").write_text("set it up")
    (docs / "faq.txt").write_text("questions")
    (docs / "old.md").write_text("to be removed")
    (docs / "name.md").write_text("to be renamed")
    (docs / "keep.md").write_text("untouched")

    first = ws.run()
    assert first.counts["uploaded"] == 5 and first.counts["attached"] == 5
    assert first.exit_code() == 0
    assert len(ws.attached(asst)) == 5

    (docs / "guides" / "setup.md").write_text("set it up, version 2")
    (docs / "old.md").unlink()
    (docs / "name.md").rename(docs / "renamed.md")
    (docs / "new.md").write_text("brand new")
    second = ws.run()
    c = second.counts
    assert (c["uploaded"], c["replaced"], c["deleted"], c["unchanged"]) == (2, 1, 2, 2)
    assert second.exit_code() == 0

    assert contents(ws) == {
        "setup.md": b"set it up, version 2",
        "faq.txt": b"questions",
        "renamed.md": b"to be renamed",
        "keep.md": b"untouched",
        "new.md": b"brand new",
    }
    assert ws.attached(asst) == set(ws.remote())
    entries = ws.manifest.entries("docs")
    assert sorted(entries) == ["faq.txt", "guides/setup.md", "keep.md", "new.md", "renamed.md"]
    assert all(e.state is State.SYNCED for e in entries.values())
    assert ws.manifest.retired_count() == 0


def test_a_second_pass_over_an_unchanged_tree_sends_no_write(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    train = ws.add_folder("train", purpose="fine-tune")
    for i in range(5):
        (docs / f"{i}.md").write_text(f"doc {i}")
    (train / "t.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    assert ws.run().exit_code() == 0

    sent = writes(ws)
    again = ws.run()
    assert sent == []
    assert again.counts["unchanged"] == 6
    assert again.actions == [] and again.errors == []
    assert again.rounds == 1


def test_on_delete_modes(ws: Workspace) -> None:
    asst = ws.assistant()
    folders = {}
    for mode in ("delete", "detach", "keep"):
        folders[mode] = ws.add_folder(mode, assistants=[asst], on_delete=mode)
        # Two files each, so that removing one is not a mass deletion.
        (folders[mode] / "gone.md").write_text(f"{mode} gone")
        (folders[mode] / "stays.md").write_text(f"{mode} stays")
    ws.run()
    ids = {m: ws.entry(m, "gone.md").file_id for m in folders}
    for folder in folders.values():
        (folder / "gone.md").unlink()

    report = ws.run()
    assert report.exit_code() == 0
    remote = ws.remote()
    attached = ws.attached(asst)
    assert ids["delete"] not in remote
    assert ids["detach"] in remote and ids["detach"] not in attached
    assert ids["keep"] in remote and ids["keep"] in attached
    snapshot = ws.manifest.snapshot()
    assert not snapshot.owned_ids() & set(ids.values())  # none of them is syncd's any more
    assert report.counts["deleted"] == 1 and report.counts["detached"] == 2


def test_fine_tune_folder_uploads_valid_files_and_rejects_bad_ones(ws: Workspace) -> None:
    train = ws.add_folder("train", purpose="fine-tune")
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
    (train / "good.jsonl").write_text(good)
    (train / "bad.jsonl").write_text(good + "[1, 2]\n")
    (train / "notes.md").write_text("not training data")

    report = ws.run()
    assert report.counts["uploaded"] == 1 and report.counts["rejected"] == 2
    assert report.exit_code() == 1
    [remote] = ws.remote().values()
    assert (remote.filename, remote.purpose) == ("good.jsonl", "fine-tune")
    problems = {e.path: e.last_error or "" for e in ws.manifest.problems()}
    assert set(problems) == {"bad.jsonl", "notes.md"}
    assert "line 2" in problems["bad.jsonl"]

    # Rejected once: the next pass says nothing new and uploads nothing.
    sent = writes(ws)
    again = ws.run()
    assert sent == [] and again.actions == []
    assert again.counts["rejected"] == 2

    # Fixed: uploaded.
    (train / "bad.jsonl").write_text(good + good)
    fixed = ws.run()
    assert fixed.counts["uploaded"] == 1 and fixed.counts["rejected"] == 1
    assert ws.entry("train", "bad.jsonl").state is State.SYNCED


def test_the_delete_guard_stops_a_mass_deletion_until_forced(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for i in range(4):
        (docs / f"{i}.md").write_text(str(i))
    ws.run()
    for i in range(3):
        (docs / f"{i}.md").unlink()
    (docs / "new.md").write_text("still uploaded")

    guarded = ws.run()
    assert guarded.stopped_reason == "delete_guard" and guarded.exit_code() == 3
    assert guarded.stopped_message is not None
    assert "--force" in guarded.stopped_message
    assert len(ws.remote()) == 5  # nothing deleted; the new file went up
    assert guarded.counts["deleted"] == 0 and guarded.counts["uploaded"] == 1

    forced = ws.run(force=True)
    assert forced.counts["deleted"] == 3 and forced.exit_code() == 0
    assert {f.filename for f in ws.remote().values()} == {"3.md", "new.md"}


def test_an_unmounted_root_skips_the_folder_and_deletes_nothing(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    other = ws.add_folder("other")
    (docs / "a.md").write_text("a")
    (other / "b.md").write_text("b")
    ws.run()
    docs.rename(docs.with_name("docs-unplugged"))
    (other / "c.md").write_text("c")

    report = ws.run()
    assert [(p.folder, p.kind) for p in report.problems] == [("docs", "unavailable")]
    assert report.exit_code() == 1
    assert report.counts["uploaded"] == 1  # the other folder went on
    assert {f.filename for f in ws.remote().values()} == {"a.md", "b.md", "c.md"}
    assert ws.entry("docs", "a.md").state is State.SYNCED
    assert ws.manifest.last_pass()["docs"].error


def test_a_root_on_another_device_is_skipped_until_forced(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    (docs / "b.md").write_text("b")
    ws.run()
    real_dev = ws.manifest.folder_dev("docs")
    assert real_dev == docs.stat().st_dev
    # As if another volume (or none) were mounted there now: what was recorded differs.
    ws.manifest.set_folder_dev("docs", real_dev + 1)
    (docs / "a.md").unlink()

    skipped = ws.run()
    assert [p.kind for p in skipped.problems] == ["unavailable"]
    assert "not on the same filesystem" in skipped.problems[0].message
    assert len(ws.remote()) == 2 and ws.manifest.folder_dev("docs") == real_dev + 1

    forced = ws.run(force=True)
    assert forced.counts["deleted"] == 1 and forced.exit_code() == 0
    assert ws.manifest.folder_dev("docs") == real_dev


def test_forcing_a_new_device_never_empties_a_folder_that_looks_unmounted(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    ws.run()
    ws.manifest.set_folder_dev("docs", docs.stat().st_dev + 1)
    (docs / "a.md").unlink()  # an empty mount point, say
    forced = ws.run(force=True)
    assert [p.kind for p in forced.problems] == ["unavailable"]
    assert "is empty" in forced.problems[0].message
    assert len(ws.remote()) == 1


def test_a_21st_file_is_uploaded_but_not_attached(ws: Workspace, tmp_path: Path) -> None:
    asst = ws.assistant()
    # Someone else filled 19 of the assistant's 20 places.
    for i in range(ASSISTANT_FILE_LIMIT - 1):
        src = tmp_path / f"theirs-{i}.md"
        src.write_text(str(i))
        ws.client.create_assistant_file(asst, ws.client.create_file(src, "assistants").id)
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "20th.md").write_text("fits")
    (docs / "21st.md").write_text("does not fit")

    report = ws.run()
    assert report.counts["uploaded"] == 2 and report.counts["attached"] == 1
    assert [p.kind for p in report.problems] == ["assistant_full"]
    assert "21st.md" in report.problems[0].message
    assert report.exit_code() == 1
    assert len(ws.attached(asst)) == ASSISTANT_FILE_LIMIT

    # At the limit, a changed file's old version makes room for its new one.
    (docs / "20th.md").write_text("fits, version 2")
    replaced = ws.run()
    assert replaced.counts["replaced"] == 1
    new_id = ws.entry("docs", "20th.md").file_id
    assert new_id in ws.attached(asst) and len(ws.attached(asst)) == ASSISTANT_FILE_LIMIT


def test_a_lost_upload_is_adopted_not_sent_twice(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_text("only once")
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match="POST /v1/files$", max_faults=1)
    report = ws.run()
    assert report.counts["adopted"] == 1 and report.counts["uploaded"] == 0
    assert report.exit_code() == 0
    [remote] = ws.remote()
    assert ws.entry("docs", "a.md").file_id == remote
    assert ws.attached(asst) == {remote}


def test_flaky_service_still_converges(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    for i in range(12):
        (docs / f"{i}.md").write_text(f"file {i}")
    ws.emulator.set_faults(fail_rate=0.2, drop_rate=0.1, seed=7)
    for _ in range(3):
        ws.run()
    ws.emulator.clear_faults()
    final = ws.run()
    assert final.exit_code() == 0
    names = sorted(f.filename for f in ws.remote().values())
    assert names == sorted(f"{i}.md" for i in range(12))  # no duplicates, nothing missing
    assert ws.attached(asst) == set(ws.remote())


def test_a_dry_run_changes_nothing(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    sent = writes(ws)
    report = ws.run(dry_run=True)
    assert sent == []
    assert report.counts["uploaded"] == 1 and report.actions[0]["action"] == "upload"
    assert ws.remote() == {}
    assert ws.manifest.snapshot().entries == {}
    assert ws.manifest.last_pass() == {}
    assert ws.manifest.folder_dev("docs") is None  # not even the root's device is recorded


def test_a_pass_over_dirty_paths_leaves_the_rest_alone(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for name in ("a.md", "b.md", "c.md"):
        (docs / name).write_text(name)
    ws.run()
    (docs / "a.md").write_text("a, changed")
    (docs / "b.md").unlink()
    (docs / "c.md").write_text("c, changed but not reported dirty")
    (docs / "d.md").write_text("d")

    report = ws.run(paths={"docs": ["a.md", "b.md", "d.md"]})
    c = report.counts
    assert (c["replaced"], c["deleted"], c["uploaded"]) == (1, 1, 1)
    assert contents(ws) == {"a.md": b"a, changed", "c.md": b"c.md", "d.md": b"d"}
    assert ws.entry("docs", "c.md").sha256 == sha(b"c.md")

    full = ws.run()
    assert full.counts["replaced"] == 1  # a full pass sees c.md
    assert contents(ws)["c.md"] == b"c, changed but not reported dirty"


def test_a_refused_key_stops_the_pass(ws: Workspace) -> None:
    from syncd.api import Client
    from syncd.engine.reconcile import Engine

    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    with Client(ws.emulator.base_url, "sk-not-the-key") as wrong:
        report = Engine(ws.config(), wrong, ws.manifest).run_pass()
    assert report.stopped_reason == "auth" and report.exit_code() == 3
    assert report.errors[0]["kind"] == "auth"
    assert ws.manifest.snapshot().entries == {}


def test_a_set_stop_event_takes_no_action(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    stop = threading.Event()
    stop.set()
    report = ws.run(stop=stop)
    assert report.actions == [] and ws.remote() == {}


def test_failed_uploads_wait_for_their_backoff_in_dirty_passes(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    (docs / "b.md").write_text("b")
    ws.emulator.set_faults(rate_limit_rate=1.0, retry_after_ms=1, match="POST /v1/files")
    failed = ws.run()
    assert failed.counts["failed"] == 2 and failed.exit_code() == 1
    assert {e["path"] for e in failed.errors} == {"a.md", "b.md"}
    ws.emulator.clear_faults()

    # Only a.md is dirty; b.md is still in its backoff, and is left alone.
    (docs / "a.md").write_text("a2")
    dirty = ws.run(paths={"docs": ["a.md"]})
    assert dirty.counts["uploaded"] == 1 and dirty.waiting == 1
    assert ws.entry("docs", "b.md").state is State.FAILED

    # A full pass tries every failed file at once.
    full = ws.run()
    assert full.counts["uploaded"] == 1 and full.exit_code() == 0


def test_an_unknown_folder_is_an_error(ws: Workspace) -> None:
    ws.add_folder("docs")
    with pytest.raises(ValueError, match="no folder named nope"):
        ws.run(folders=["nope"])


def unanswered(ws: Workspace) -> list[Attempt]:
    return [a for a in ws.manifest.attempts() if a.file_id is None]


def test_an_attempt_is_let_go_only_by_a_pass_that_lists_after_its_horizon(
    ws: Workspace, tmp_path: Path
) -> None:
    # docs/a.md is synced; an attempt of its content sent just now had no answer, and its
    # copy is on the service. The next pass runs an hour later (the daemon was stopped):
    # the copy is still known for syncd's own, and deleted.
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("twice")
    assert ws.run().exit_code() == 0
    row = ws.entry("docs", "a.md")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.md").write_text("twice")
    copy = ws.client.create_file(tmp_path / "copy" / "a.md", "assistants").id
    sent = time.time() - 5
    ws.manifest.put_intent(row, Attempt("docs", "a.md", "a.md", 5, "assistants", row.sha256, sent))
    an_hour_later = ws.engine(clock=lambda: time.time() + 3600)
    report = an_hour_later.run_pass()
    assert report.exit_code() == 0
    assert set(ws.remote()) == {row.file_id}, copy
    assert unanswered(ws) == []
    # One with no copy is let go by the first pass whose listing shows none can turn up.
    ws.manifest.put_intent(row, Attempt("docs", "a.md", "a.md", 5, "assistants", row.sha256, sent))
    ws.run(dry_run=True)
    ws.run()
    assert len(unanswered(ws)) == 1
    an_hour_later.run_pass(dry_run=True)
    assert len(unanswered(ws)) == 1
    an_hour_later.run_pass()
    assert unanswered(ws) == []
