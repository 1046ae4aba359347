"""Batches of small uploads (``Executor._run_uploads``): one lookup, one commit of intents
before any request, one commit of answers — and each upload's failure its own.

The executor runs at concurrency 1 here, so that a worker takes ``batch_size(n, 1)`` uploads
at a time and the batches are known: 40 files go as four batches of ten.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from syncd.api import (
    AuthenticationError,
    BadRequestError,
    FileObject,
    RateLimitError,
    TransportError,
    UploadOutcomeUnknown,
)
from syncd.engine.executor import BATCH, PassStopped, batch_size
from syncd.engine.manifest import ManifestDB, StateFull
from syncd.engine.model import State, Upload
from syncd.engine.report import ExitStatus

from .conftest import Workspace, sha, syncd_command
from .test_executor import executor

FILES = 40  # four batches of ten at concurrency 1


def make_files(docs: Path, n: int = FILES) -> list[Upload]:
    """``n`` small files in ``docs``, and the uploads a plan would make of them."""
    uploads = []
    for i in range(n):
        data = f"file {i}\n".encode()
        (docs / f"f{i:02}.md").write_bytes(data)
        uploads.append(Upload("docs", f"f{i:02}.md", sha(data), len(data)))
    return uploads


def test_batch_size_spreads_a_few_changes_and_batches_many() -> None:
    assert batch_size(5, 4) == 1  # a handful: one at a time, on every worker
    assert batch_size(40, 1) == 10
    assert batch_size(100_000, 8) == BATCH
    assert batch_size(0, 0) == 1


def test_a_batch_commits_its_intents_before_its_first_request_and_its_answers_once(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = ws.add_folder("docs")
    uploads = make_files(docs)
    commits: Counter[str] = Counter()
    for name in ("put_intents", "record_answers", "entries_at"):
        method = getattr(ws.manifest, name)

        def counted(*args: Any, _method: Any = method, _name: str = name) -> Any:
            commits[_name] += 1
            return _method(*args)

        monkeypatch.setattr(ws.manifest, name, counted)
    seen: list[set[str]] = []  # at each request: the paths whose intents are on file
    send = ws.client.create_file

    def watched(path: Path, *args: Any, **kwargs: Any) -> FileObject:
        with ManifestDB.open(ws.state_dir, readonly=True) as other:
            seen.append({e.path for e in other.unanswered()})
        return send(path, *args, **kwargs)

    monkeypatch.setattr(ws.client, "create_file", watched)
    done = executor(ws, concurrency=1).run(uploads)

    assert commits == {"put_intents": 4, "record_answers": 4, "entries_at": 4}
    # Another connection sees the whole batch's intents before its first request leaves.
    assert seen[0] == {f"f{i:02}.md" for i in range(10)}
    assert seen[10] == {f"f{i:02}.md" for i in range(10, 20)}
    assert [d.what for d in done] == ["uploaded"] * FILES
    assert ws.manifest.counts() == {"docs": {"synced": FILES}}
    assert len(ws.remote()) == FILES
    assert all(a.file_id is not None for a in ws.manifest.attempts())


def test_each_upload_of_a_batch_fails_on_its_own(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    uploads = make_files(docs)
    (docs / "f04.md").write_bytes(b"changed after the scan\n")
    send = ws.client.create_file

    def faulty(path: Path, purpose: str, *args: Any, **kwargs: Any) -> FileObject:
        match path.name:
            case "f01.md":  # stored, but the answer is lost
                send(path, purpose, *args, **kwargs)
                cause = TransportError("the connection dropped", method="POST", path="/files")
                raise UploadOutcomeUnknown(
                    filename="f01.md", size=8, purpose=purpose, sent_at=time.time(), cause=cause
                )
            case "f02.md":
                raise BadRequestError("this content is not accepted", status=400)
            case "f03.md":
                raise RateLimitError("too many requests", status=429)
        return send(path, purpose, *args, **kwargs)

    monkeypatch.setattr(ws.client, "create_file", faulty)
    done = {d.path: d for d in executor(ws, concurrency=1).run(uploads)}

    assert done["f01.md"].what == "unresolved"
    assert ws.entry("docs", "f01.md").state is State.UPLOADING
    assert done["f02.md"].what == "rejected"
    assert ws.entry("docs", "f02.md").state is State.REJECTED
    assert done["f03.md"].what == "failed"
    failed = ws.entry("docs", "f03.md")
    assert failed.state is State.FAILED and failed.attempts == 1
    assert failed.next_attempt_at is not None and failed.next_attempt_at > time.time()
    assert done["f04.md"].what == "skipped" and ws.manifest.entry("docs", "f04.md") is None
    others = {f"f{i:02}.md" for i in range(FILES)} - {"f01.md", "f02.md", "f03.md", "f04.md"}
    assert {p for p, d in done.items() if d.what == "uploaded"} == others
    assert all(ws.entry("docs", p).state is State.SYNCED for p in others)
    assert len(ws.remote()) == len(others) + 1  # and f01.md's copy, stored once

    # The next pass finds the lost answer's file and adopts it rather than send it again.
    monkeypatch.undo()
    ws.run()
    lost = ws.entry("docs", "f01.md")
    assert lost.state is State.SYNCED
    assert Counter(f.filename for f in ws.remote().values())["f01.md"] == 1


def test_a_refused_key_in_a_batch_records_what_was_answered_and_takes_back_the_rest(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = ws.add_folder("docs")
    uploads = make_files(docs)
    send = ws.client.create_file
    calls = 0

    def revoked(path: Path, *args: Any, **kwargs: Any) -> FileObject:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise AuthenticationError("invalid api key", status=401)
        return send(path, *args, **kwargs)

    monkeypatch.setattr(ws.client, "create_file", revoked)
    with pytest.raises(PassStopped):
        executor(ws, concurrency=1).run(uploads)

    assert calls == 4  # nothing was sent after the refusal
    assert ws.manifest.counts() == {"docs": {"synced": 3}}
    assert {e.path for e in ws.manifest.unanswered()} == set()
    assert [a.path for a in ws.manifest.attempts()] == ["f00.md", "f01.md", "f02.md"]
    assert len(ws.remote()) == 3


def next_pass_adopts(ws: Workspace, uploads: list[Upload], adopted: int) -> None:
    """The next pass finds the ``adopted`` files whose answers were lost and uploads the rest:
    every file once on the service, none lost, none twice."""
    report = ws.run()
    assert report.exit_code() is ExitStatus.OK
    assert report.counts["adopted"] == adopted
    assert report.counts["uploaded"] == FILES - adopted
    assert ws.manifest.counts() == {"docs": {"synced": FILES}}
    assert Counter(f.filename for f in ws.remote().values()) == Counter(u.path for u in uploads)


class _Crash(BaseException):
    """The process dies here: nothing after it runs."""


def test_dying_mid_batch_leaves_intents_that_the_next_pass_resolves(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    uploads = make_files(docs)
    send = ws.client.create_file
    calls = 0

    def dies_after_the_fourth(path: Path, *args: Any, **kwargs: Any) -> FileObject:
        nonlocal calls
        calls += 1
        sent = send(path, *args, **kwargs)
        if calls == 4:
            raise _Crash
        return sent

    monkeypatch.setattr(ws.client, "create_file", dies_after_the_fourth)
    with pytest.raises(_Crash):
        executor(ws, concurrency=1).run(uploads)
    # The first batch's ten intents are on file, four of its files on the service.
    assert len(ws.manifest.unanswered()) == 10
    assert len(ws.remote()) == 4

    monkeypatch.undo()
    next_pass_adopts(ws, uploads, 4)
    ids = {ws.entry("docs", u.path).file_id for u in uploads}
    assert ids == set(ws.remote())


def test_syncd_killed_mid_batch_loses_no_file_and_uploads_none_twice(ws: Workspace) -> None:
    ws.sync.update(unresolved_grace_seconds=0, concurrency=2)
    docs = ws.add_folder("docs")
    uploads = make_files(docs, 200)  # batches of 25
    # Slow uploads, so that the kill lands inside a batch.
    ws.emulator.set_faults(latency_ms=20, match="POST /v1/files")
    proc = subprocess.Popen(
        [*syncd_command(), "reconcile", "--config", str(ws.config_path)],
        env=ws.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(ws.remote()) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    stored = len(ws.remote())
    assert 60 <= stored < 200
    with ManifestDB.open(ws.state_dir, readonly=True) as seen:
        synced = seen.counts()["docs"].get("synced", 0)
        assert seen.unanswered()  # the batches in flight left their intents
    assert synced < stored  # some files were stored whose answers were never recorded

    ws.emulator.clear_faults()
    again = ws.command("reconcile")
    assert again.returncode == 0, again.stderr
    names = Counter(f.filename for f in ws.remote().values())
    assert names == Counter(u.path for u in uploads)  # every file once: none lost, none twice
    assert ws.manifest.counts() == {"docs": {"synced": 200}}


def test_a_full_disk_at_the_answers_leaves_the_intents_and_starts_nothing_more(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    uploads = make_files(docs)

    def full(*_: Any) -> None:
        raise StateFull(ws.state_dir)

    monkeypatch.setattr(ws.manifest, "record_answers", full)
    with pytest.raises(StateFull):
        executor(ws, concurrency=1).run(uploads)
    # The first batch went out; its answers could not be recorded, so its intents stay.
    assert len(ws.manifest.unanswered()) == 10
    assert len(ws.remote()) == 10

    monkeypatch.undo()
    next_pass_adopts(ws, uploads, 10)


def test_stopping_mid_batch_finishes_what_is_in_flight_and_takes_back_the_rest(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = ws.add_folder("docs")
    uploads = make_files(docs)
    stop = threading.Event()
    send = ws.client.create_file
    calls = 0

    def stopped_after_the_third(path: Path, *args: Any, **kwargs: Any) -> FileObject:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()  # SIGTERM while the third request is out
        return send(path, *args, **kwargs)

    monkeypatch.setattr(ws.client, "create_file", stopped_after_the_third)
    done = executor(ws, concurrency=1, stop=stop).run(uploads)

    assert [d.what for d in done] == ["uploaded"] * 3
    assert ws.manifest.counts() == {"docs": {"synced": 3}}
    assert ws.manifest.unanswered() == []
    assert [a.path for a in ws.manifest.attempts()] == ["f00.md", "f01.md", "f02.md"]
    assert len(ws.remote()) == 3


def test_batches_of_new_files_and_of_replacements_end_attached_in_a_store(ws: Workspace) -> None:
    ws.sync["concurrency"] = 1
    store = ws.client.create_vector_store("docs").id
    docs = ws.add_folder("docs", vector_stores=[store])
    make_files(docs)
    first = ws.run()
    assert first.exit_code() is ExitStatus.OK, first.errors
    assert first.counts["uploaded"] == first.counts["attached"] == FILES
    old = {ws.entry("docs", f"f{i:02}.md").file_id for i in range(FILES)}

    for i in range(FILES):
        (docs / f"f{i:02}.md").write_bytes(f"file {i}, second version\n".encode())
    second = ws.run()
    assert second.exit_code() is ExitStatus.OK, second.errors
    assert second.counts["replaced"] == FILES
    new = {ws.entry("docs", f"f{i:02}.md").file_id for i in range(FILES)}
    assert not new & old and None not in new
    files = {f.id: f.status for f in ws.client.iter_vector_store_files(store)}
    assert files == dict.fromkeys(new, "completed")
    assert set(ws.remote()) == new  # every old version deleted once its successor served
    assert ws.manifest.retired_count() == 0
