"""The executor, action by action, against the emulator over HTTP.

Each test states the manifest and the service before, runs hand-made actions, and checks both
after — the semantics of ``tests/plan/sim.py``, on the real thing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.api import Client
from syncd.engine.executor import BACKOFF, Executor, PassStopped
from syncd.engine.model import (
    Adopt,
    Attach,
    Attempt,
    Cleanup,
    Detach,
    Entry,
    Forget,
    LocalFile,
    Reject,
    Restat,
    Retire,
    Retired,
    State,
    Upload,
)
from syncd.engine.planner import chains
from syncd.engine.report import Done

from .conftest import FAST_RETRY, Workspace, sha


def local_file(root: Path, path: str) -> LocalFile:
    st = (root / path).stat()
    return LocalFile(path, st.st_size, st.st_mtime_ns, st.st_ino, sha((root / path).read_bytes()))


def executor(ws: Workspace, client: Client | None = None, **kwargs: object) -> Executor:
    config = ws.config()
    local = {}
    for folder in config.folders:
        for p in folder.path.rglob("*"):
            if p.is_file():
                rel = p.relative_to(folder.path).as_posix()
                local[(folder.name, rel)] = local_file(folder.path, rel)
    options: dict = {"local": local, "max_attempts": config.api.max_attempts}
    options.update(kwargs)
    return Executor(
        client or ws.client, ws.manifest, {f.name: f for f in config.folders}, **options
    )


def synced(ws: Workspace, folder: str, path: str, file_id: str, data: bytes) -> Entry:
    """Record ``path`` as synced to ``file_id`` the way an upload would have."""
    root = Path(ws.folders[folder]["path"])
    f = local_file(root, path)
    entry = Entry(folder, path, f.size, f.mtime_ns, f.inode, sha(data), State.SYNCED, file_id)
    ws.manifest.put_entry(entry)
    return entry


def upload_remote(ws: Workspace, tmp_path: Path, name: str, data: bytes) -> str:
    """A file put on the service directly (by syncd earlier, or by someone else)."""
    src = tmp_path / "elsewhere" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(data)
    return ws.client.create_file(src, "assistants").id


def test_upload_records_the_new_file_and_attaches_it(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "guide.md").write_bytes(b"# guide\n")
    done = executor(ws).run([Upload("docs", "guide.md", sha(b"# guide\n"), 8, (asst,))])

    entry = ws.entry("docs", "guide.md")
    assert entry is not None and entry.state is State.SYNCED
    assert entry.sha256 == sha(b"# guide\n") and entry.intent_sha256 is None
    assert entry.inode == (docs / "guide.md").stat().st_ino
    assert entry.file_id is not None
    remote = ws.remote()[entry.file_id]
    assert (remote.filename, remote.bytes, remote.purpose) == ("guide.md", 8, "assistants")
    assert ws.attached(asst) == {entry.file_id}
    assert ws.manifest.snapshot().attachments == {(entry.file_id, asst)}
    assert [d.what for d in done] == ["uploaded", "attached"]
    assert done[0].message().startswith(f"uploaded [docs] guide.md → {entry.file_id} (8 B, ")


def test_a_replacement_is_attached_before_the_old_version_goes(
    ws: Workspace, tmp_path: Path
) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_bytes(b"old")
    old = upload_remote(ws, tmp_path, "a.md", b"old")
    ws.client.create_assistant_file(asst, old)
    synced(ws, "docs", "a.md", old, b"old")
    ws.manifest.add_attachment(old, asst)
    (docs / "a.md").write_bytes(b"new!")

    order: list[str] = []
    ws.client.request_log = lambda r: order.append(f"{r.method} {r.path}")
    done = executor(ws).run([Upload("docs", "a.md", sha(b"new!"), 4, (asst,), replaces=old)])

    new = ws.entry("docs", "a.md").file_id
    assert new != old
    assert set(ws.remote()) == {new}
    assert ws.attached(asst) == {new}
    assert ws.manifest.snapshot().attachments == {(new, asst)}
    assert ws.manifest.retired_count() == 0
    writes = [o for o in order if not o.startswith("GET")]
    assert writes == [
        "POST /files",
        f"POST /assistants/{asst}/files",
        f"DELETE /assistants/{asst}/files/{old}",
        f"DELETE /files/{old}",
    ]
    assert [d.what for d in done] == ["replaced", "attached", "detached", "deleted"]
    assert done[-1].message() == f"deleted remote {old} (replaced by {new})"


def test_an_unanswered_upload_leaves_its_intent(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"hello")
    # The service stores the upload, then the connection drops before the answer.
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match="POST /v1/files")
    before = time.time()
    done = executor(ws).run([Upload("docs", "a.md", sha(b"hello"), 5)])

    entry = ws.entry("docs", "a.md")
    assert entry is not None and entry.state is State.UPLOADING
    assert (entry.intent_sha256, entry.intent_size) == (sha(b"hello"), 5)
    assert entry.intent_at is not None
    assert before <= entry.intent_at <= time.time()
    assert entry.file_id is None
    assert len(ws.remote()) == 1  # stored once, never sent again
    assert [d.what for d in done] == ["unresolved"]


def test_a_refused_upload_backs_off_and_gives_up_after_max_attempts(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"hello")
    # 429: refused before anything was stored (a 5xx would leave the outcome unknown).
    ws.emulator.set_faults(rate_limit_rate=1.0, retry_after_ms=1, match="POST /v1/files")
    upload = Upload("docs", "a.md", sha(b"hello"), 5)

    now = time.time()
    executor(ws).run([upload])
    entry = ws.entry("docs", "a.md")
    assert entry.state is State.FAILED and entry.attempts == 1
    assert entry.next_attempt_at == pytest.approx(now + BACKOFF, abs=5)
    assert entry.intent_sha256 is None and entry.file_id is None
    assert entry.last_error is not None
    assert entry.last_error.startswith("429 ")  # the service's answer is quoted

    executor(ws).run([upload])
    done = executor(ws).run([upload])  # max_attempts = 3 in the workspace's configuration
    entry = ws.entry("docs", "a.md")
    assert entry.attempts == 3 and entry.next_attempt_at is None
    assert "gave up after 3 attempts" in done[0].message()
    assert ws.remote() == {}


def test_an_upload_whose_file_changed_since_the_scan_is_skipped(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"changed after the scan")
    done = executor(ws).run([Upload("docs", "a.md", sha(b"what the scan saw"), 17)])
    assert ws.manifest.entry("docs", "a.md") is None
    assert ws.remote() == {}
    assert [d.what for d in done] == ["skipped"]
    assert "changed since the scan" in done[0].message()


def test_a_small_file_goes_out_as_the_bytes_that_were_hashed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"what the scan saw")
    send = ws.client.create_file

    def rewritten_first(path: Path, *args: object, **kwargs: object) -> object:
        # The file changes after the executor checked it, before the request goes out.
        path.write_bytes(b"rewritten at the last moment")
        return send(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ws.client, "create_file", rewritten_first)
    done = executor(ws).run([Upload("docs", "a.md", sha(b"what the scan saw"), 17)])

    entry = ws.entry("docs", "a.md")
    assert entry is not None and entry.state is State.SYNCED and entry.file_id is not None
    store = ws.emulator.store
    assert store is not None
    assert store.blob_path(entry.file_id).read_bytes() == b"what the scan saw"
    # The row holds the version that was sent, so the next scan sees the change.
    assert (entry.sha256, entry.size) == (sha(b"what the scan saw"), 17)
    assert [d.what for d in done] == ["uploaded"]


def test_an_upload_is_skipped_when_the_row_moved_on(ws: Workspace, tmp_path: Path) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"v2")
    synced(ws, "docs", "a.md", "file-someone-else-wrote-this-row", b"v1")
    done = executor(ws).run([Upload("docs", "a.md", sha(b"v2"), 2, replaces="file-planned")])
    assert ws.entry("docs", "a.md").file_id == "file-someone-else-wrote-this-row"
    assert ws.remote() == {}
    assert done[0].what == "skipped"


def test_content_the_service_refuses_is_rejected_with_its_words(
    tmp_path: Path, emulator_factory, api_key: str
) -> None:
    small = emulator_factory(api_key=api_key, max_file_bytes=10)
    ws = Workspace(tmp_path, small, api_key)
    try:
        docs = ws.add_folder("docs")
        (docs / "big.md").write_bytes(b"x" * 50)
        done = executor(ws).run([Upload("docs", "big.md", sha(b"x" * 50), 50)])
        entry = ws.entry("docs", "big.md")
        assert entry.state is State.REJECTED and entry.file_id is None
        assert entry.last_error and entry.attempts == 0
        assert entry.mtime_ns == (docs / "big.md").stat().st_mtime_ns  # not re-hashed each pass
        assert [d.what for d in done] == ["rejected"]
    finally:
        ws.close()


def test_a_refused_key_stops_at_once_and_counts_no_attempt(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for name in "abcdef":
        (docs / f"{name}.md").write_bytes(name.encode())
    actions = [Upload("docs", f"{n}.md", sha(n.encode()), 1) for n in "abcdef"]
    wrong = Client(ws.emulator.base_url, "sk-wrong-key", retry=FAST_RETRY)
    with wrong, pytest.raises(PassStopped) as stopped:
        executor(ws, wrong, concurrency=1).run(actions)
    assert stopped.value.reason == "auth"
    assert "refused the API key" in str(stopped.value)
    assert "sk-wrong-key" not in str(stopped.value)
    assert ws.manifest.snapshot().entries == {}  # the intent was taken back


def test_adopting_a_lost_upload_attaches_it_and_retires_the_old_one(
    ws: Workspace, tmp_path: Path
) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_bytes(b"v2")
    old = upload_remote(ws, tmp_path, "a.md", b"v1")
    lost = upload_remote(ws, tmp_path, "a.md", b"v2")
    row = synced(ws, "docs", "a.md", old, b"v1")
    ws.manifest.put_entry(
        replace(
            row,
            state=State.UPLOADING,
            intent_sha256=sha(b"v2"),
            intent_size=2,
            intent_at=time.time() - 5,
        )
    )
    done = executor(ws).run([Adopt("docs", "a.md", lost, sha(b"v2"), (asst,), replaces=old)])
    entry = ws.entry("docs", "a.md")
    assert (entry.state, entry.file_id, entry.sha256) == (State.SYNCED, lost, sha(b"v2"))
    assert (entry.mtime_ns, entry.inode) == (0, 0)  # hashed again by the next scan
    assert entry.intent_at is None
    assert ws.attached(asst) == {lost}
    assert set(ws.remote()) == {lost}  # old had no attachment of ours: cleaned up at once
    assert done[0].message() == f"adopted {lost} for [docs] a.md (its upload's response was lost)"


def test_adopting_answers_the_attempt_with_the_file(ws: Workspace, tmp_path: Path) -> None:
    # The attempt stays, answered: the file it names is never taken for another attempt's
    # late copy, even once syncd lets go of it (the adopted copy may be a re-sent one).
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"v1")
    lost = upload_remote(ws, tmp_path, "a.md", b"v1")
    sent_at = time.time() - 5
    intent = Entry(
        "docs", "a.md", 2, 0, 0, sha(b"v1"), State.UPLOADING,
        intent_sha256=sha(b"v1"), intent_size=2, intent_at=sent_at,
    )  # fmt: skip
    attempt = Attempt("docs", "a.md", "a.md", 2, "assistants", sha(b"v1"), sent_at)
    ws.manifest.put_intent(intent, attempt)
    executor(ws).run([Adopt("docs", "a.md", lost, sha(b"v1"), (), sent_at=sent_at)])
    assert ws.entry("docs", "a.md").file_id == lost
    assert ws.manifest.attempts() == [replace(attempt, file_id=lost)]


def test_stale_actions_are_skipped_and_foreign_files_never_touched(
    ws: Workspace, tmp_path: Path
) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_bytes(b"a")
    foreign = upload_remote(ws, tmp_path, "theirs.md", b"not syncd's")
    ws.client.create_assistant_file(asst, foreign)
    ours = upload_remote(ws, tmp_path, "a.md", b"a")
    synced(ws, "docs", "a.md", ours, b"a")

    done = executor(ws).run(
        [
            Detach(foreign, asst, "not configured"),  # not syncd's
            Cleanup(foreign, (asst,), delete=True),  # not retired
            Attach("docs", "a.md", "file-not-the-rows", asst),
            Retire("docs", "a.md", "file-not-the-rows", "delete"),
            Forget("docs", file_id=foreign),
            Forget("docs", path="a.md"),  # the row still holds a file id
        ]
    )
    assert [d.what for d in done] == ["skipped"] * 4
    assert ws.attached(asst) == {foreign}
    assert set(ws.remote()) == {foreign, ours}
    assert ws.entry("docs", "a.md").file_id == ours


def test_retire_and_cleanup_per_on_delete(ws: Workspace, tmp_path: Path) -> None:
    asst = ws.assistant()
    ws.add_folder("docs", assistants=[asst])
    ids = {}
    for name in ("gone.md", "detach.md", "keep.md"):
        ids[name] = upload_remote(ws, tmp_path, name, name.encode())
        ws.client.create_assistant_file(asst, ids[name])
        ws.manifest.put_entry(
            Entry("docs", name, 1, 1, 1, sha(name.encode()), State.SYNCED, ids[name])
        )
        ws.manifest.add_attachment(ids[name], asst)

    done = executor(ws).run(
        [
            Retire("docs", "gone.md", ids["gone.md"], "delete"),
            Cleanup(ids["gone.md"], (asst,), delete=True),
            Retire("docs", "detach.md", ids["detach.md"], "detach"),
            Cleanup(ids["detach.md"], (asst,), delete=False),
            Retire("docs", "keep.md", ids["keep.md"], "keep"),
        ]
    )
    assert set(ws.remote()) == {ids["detach.md"], ids["keep.md"]}
    assert ws.attached(asst) == {ids["keep.md"]}
    snapshot = ws.manifest.snapshot()
    assert snapshot.entries == {} and snapshot.retired == {}
    assert snapshot.attachments == frozenset()
    messages = {d.message() for d in done}
    assert f"deleted remote {ids['gone.md']} ([docs] gone.md was removed)" in messages
    assert (
        f"left remote {ids['keep.md']} in place ([docs] keep.md was removed; on_delete = keep)"
        in messages
    )


def test_a_delete_that_finds_nothing_is_done(ws: Workspace) -> None:
    ws.add_folder("docs")
    ws.manifest.put_retired(Retired("file-already-gone", "docs", delete=True))
    done = executor(ws).run([Cleanup("file-already-gone", (), delete=True)])
    assert ws.manifest.retired_count() == 0
    assert done[0].what == "deleted"


def test_reject_and_restat_record_the_local_file(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "x.exe").write_bytes(b"MZ")
    (docs / "a.md").write_bytes(b"a")
    synced(ws, "docs", "a.md", "file-a", b"a")
    st = (docs / "a.md").stat()
    done = executor(ws).run(
        [
            Reject("docs", "x.exe", sha(b"MZ"), "extension .exe is not accepted"),
            Restat("docs", "a.md", st.st_size, st.st_mtime_ns + 5, st.st_ino),
        ]
    )
    rejected = ws.entry("docs", "x.exe")
    assert rejected.state is State.REJECTED
    assert rejected.last_error == "extension .exe is not accepted"
    assert rejected.inode == (docs / "x.exe").stat().st_ino
    assert ws.entry("docs", "a.md").mtime_ns == st.st_mtime_ns + 5
    assert "rejected [docs] x.exe: extension .exe is not accepted" in {d.message() for d in done}


def test_a_stop_request_takes_no_new_action(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"a")
    stop = threading.Event()
    stop.set()
    assert executor(ws, stop=stop).run([Upload("docs", "a.md", sha(b"a"), 1)]) == []
    assert ws.remote() == {}


def test_chains_keep_related_actions_in_order() -> None:
    purposes = {"docs": "assistants", "other": "assistants"}
    a1 = Upload("docs", "a.md", "s1", 3)
    a2 = Attach("docs", "a.md", "file-1", "asst_1")
    same_name = Upload("other", "x/a.md", "s2", 3)  # same filename, size and purpose as a1
    b = Upload("docs", "b.md", "s3", 3)
    detach = Detach("file-9", "asst_1", "r")
    cleanup = Cleanup("file-9", ("asst_1",), True)
    groups = chains([a1, a2, same_name, b, detach, cleanup], purposes)
    assert sorted(groups, key=len, reverse=True) == [[a1, a2, same_name], [detach, cleanup], [b]]


def test_done_never_prints_none() -> None:
    assert "None" not in Done("detached", file_id="file-1", target="asst_1").message()


def test_a_debug_line_is_worded_only_when_debug_is_on(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_bytes(b"now")
    stale = Upload("docs", "a.md", sha(b"what the scan saw"), 3)  # skipped: a DEBUG line
    worded: list[str] = []
    message = Done.message

    def counted(self: Done) -> str:
        worded.append(self.what)
        return message(self)

    monkeypatch.setattr(Done, "message", counted)
    caplog.set_level(logging.INFO, logger="syncd.executor")
    assert [d.what for d in executor(ws).run([stale])] == ["skipped"]
    assert worded == []
    caplog.set_level(logging.DEBUG, logger="syncd.executor")
    executor(ws).run([stale])
    assert worded == ["skipped"]
    assert "upload skipped: the file changed since the scan" in caplog.text
