"""The manifest: schema and migrations, file modes, WAL, and what goes in comes out."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlite_utils

from syncd.engine.manifest import (
    FILENAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    Answer,
    ManifestDamaged,
    ManifestDB,
    ManifestError,
)
from syncd.engine.model import Attempt, Entry, Retired, State
from syncd.engine.rest import RoundTables


def entry(folder: str, path: str, state: State = State.SYNCED, **kw: object) -> Entry:
    values: dict = {
        "size": 3,
        "mtime_ns": 1_700_000_000_000_000_000,
        "inode": 42,
        "sha256": "a" * 64,
        "file_id": f"file-{folder}-{path}",
    }
    values.update(kw)
    return Entry(folder=folder, path=path, state=state, **values)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fresh_manifest_is_private_wal_and_at_the_latest_version(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "syncd"
    with ManifestDB.open(state_dir) as db:
        db.put_entry(entry("docs", "a.md"))
        assert db.schema_version() == SCHEMA_VERSION
        files = [state_dir / FILENAME, state_dir / f"{FILENAME}-wal", state_dir / f"{FILENAME}-shm"]
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
        assert mode(state_dir) == 0o700
    conn = sqlite3.connect(state_dir / FILENAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_loose_modes_are_tightened(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    (state_dir / FILENAME).touch(mode=0o644)
    ManifestDB.open(state_dir).close()
    assert mode(state_dir) == 0o700
    assert mode(state_dir / FILENAME) == 0o600


def test_a_v1_file_migrates_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    v1 = sqlite_utils.Database(path)
    MIGRATIONS[0](v1)
    v1.execute("PRAGMA user_version = 1")
    v1.table("entries").insert(
        {
            "folder": "docs",
            "path": "a.md",
            "size": 3,
            "mtime_ns": 5,
            "inode": 7,
            "sha256": "b" * 64,
            "state": "synced",
            "file_id": "file-1",
            "attempts": 0,
        }
    )
    v1.table("attachments").insert({"file_id": "file-1", "assistant_id": "asst_1"})
    v1.table("retired").insert(
        {"file_id": "file-0", "folder": "docs", "delete": 1, "replaced_by": None}
    )
    v1.table("folders").insert({"name": "docs", "root_dev": 2049})
    v1.conn.commit()
    v1.close()

    with ManifestDB.open(tmp_path) as db:
        assert db.schema_version() == SCHEMA_VERSION == 8
        snap = db.snapshot()
        assert snap.entries[("docs", "a.md")].file_id == "file-1"
        assert snap.entries[("docs", "a.md")].state is State.SYNCED
        assert snap.attachments == {("file-1", "asst_1")}
        assert snap.retired == {"file-0": Retired("file-0", "docs", True)}
        assert db.folder_dev("docs") == 2049
        # v2's additions work on the migrated file.
        db.record_pass("docs", started_at=1.0, finished_at=2.0, counts={"unchanged": 1})
        assert db.last_pass()["docs"].counts == {"unchanged": 1}
        # The stores' migration: the old attachment has no ingestion; a store's is recorded.
        db.add_attachment("file-1", "vs_1", status="in_progress")
        db.set_ingestion("file-1", "vs_1", "failed", "The file could not be parsed.")
        assert [row[:5] for row in db.ingestion()] == [
            ("docs", "vs_1", "a.md", "failed", "The file could not be parsed.")
        ]


def test_a_v2_file_migrates_to_v3_turning_intents_into_attempts(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    v2 = sqlite_utils.Database(path)
    for migration in MIGRATIONS[:2]:
        migration(v2)
    v2.execute("PRAGMA user_version = 2")
    row = {"size": 3, "mtime_ns": 5, "inode": 7, "sha256": "b" * 64, "attempts": 0}
    v2.table("entries").insert_all(
        [
            {"folder": "docs", "path": "a.md", "state": "synced", "file_id": "file-1", **row},
            {
                "folder": "docs",
                "path": "sub/dir/b.md",
                "state": "uploading",
                "intent_sha256": "c" * 64,
                "intent_size": 9,
                "intent_at": 1000.5,
                **row,
            },
        ]
    )
    v2.conn.commit()
    v2.close()

    with ManifestDB.open(tmp_path) as db:
        assert db.schema_version() == SCHEMA_VERSION  # v3, then the later ones
        assert db.attempts() == [Attempt("docs", "sub/dir/b.md", "b.md", 9, None, "c" * 64, 1000.5)]
        assert db.snapshot().attempts == tuple(db.attempts())
        assert db.entry("docs", "a.md") is not None


@pytest.mark.parametrize("version", [5, 6])
def test_an_older_file_migrates_and_its_files_are_not_read_again(
    tmp_path: Path, version: int
) -> None:
    """v5 kept no stat beside the hash; v6 kept it written out as text: both come to the
    packed key, and an unchanged file is still not read."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.md").write_bytes(b"a\n")
    (tree / "b.md").write_bytes(b"b\n")
    st = {name: os.stat(tree / name) for name in ("a.md", "b.md")}
    old = sqlite_utils.Database(tmp_path / FILENAME)
    for migration in MIGRATIONS[:version]:
        migration(old)
    old.execute(f"PRAGMA user_version = {version}")
    old.table("entries").insert_all(
        {
            "folder": "docs",
            "path": name,
            "size": st[name].st_size,
            "mtime_ns": st[name].st_mtime_ns,
            "inode": st[name].st_ino,
            "ctime_ns": st[name].st_ctime_ns,
            # b.md's upload was cut short before it was hashed: its file must be read.
            "sha256": "b" * 64 if name == "a.md" else "",
            "state": "synced" if name == "a.md" else "pending",
            "attempts": 0,
        }
        | (
            {}
            if version < 6
            else {
                "hashed_stat": f"{st[name].st_size}:{st[name].st_mtime_ns}:{st[name].st_ino}:"
                f"{st[name].st_ctime_ns}"
                if name == "a.md"
                else ""
            }
        )
        for name in ("a.md", "b.md")
    )
    old.conn.commit()
    old.close()

    with ManifestDB.open(tmp_path) as db:
        assert db.schema_version() == SCHEMA_VERSION
        with RoundTables(db) as tables:
            sink = tables.folder("docs", whole=True)
            assert sink.unchanged("a.md", st["a.md"])
            assert not sink.unchanged("b.md", st["b.md"])


def test_an_intent_and_its_attempt_are_written_together_and_closed(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        intent = entry("docs", "a.md", State.UPLOADING, intent_sha256="c" * 64, intent_at=5.0)
        attempt = Attempt("docs", "a.md", "a.md", 3, "assistants", "c" * 64, 5.0)
        db.put_intent(intent, attempt)
        assert db.entry("docs", "a.md") == intent
        assert db.attempts() == [attempt]
        db.close_attempt("docs", "a.md", 5.0)
        assert db.attempts() == []


def test_attempts_no_plan_reads_again_are_pruned(tmp_path: Path) -> None:
    # kb/a.md was sent at 10 (answered, or adopted, with file-1) and again at 20 (no answer);
    # the entry no longer waits for either. docs/b.md was answered at 10, with another size;
    # gone/c.md, of a folder no longer configured, was sent at 10 without an answer.
    with ManifestDB.open(tmp_path) as db:
        first = Attempt("kb", "a.md", "a.md", 3, "assistants", "c" * 64, 10.0)
        again = Attempt("kb", "a.md", "a.md", 3, "assistants", "c" * 64, 20.0)
        other = Attempt("docs", "b.md", "a.md", 4, "assistants", "d" * 64, 10.0)
        gone = Attempt("gone", "c.md", "c.md", 3, "assistants", "e" * 64, 10.0)
        for attempt in (first, again, other, gone):
            db.put_intent(entry(attempt.folder, attempt.path, State.UPLOADING), attempt)
        db.answer_attempt("kb", "a.md", 10.0, "file-1")
        db.answer_attempt("docs", "b.md", 10.0, "file-2")
        answered = replace(first, file_id="file-1")

        db.prune_attempts(5.0, ["kb", "docs"])
        assert len(db.attempts()) == 4
        # Past the horizon: the unanswered kb attempt stays until a plan lets it go, and
        # the answered one with its filename and size stays with it.
        db.prune_attempts(100.0, ["kb", "docs"])
        assert db.attempts() == [answered, again]
        db.close_attempts({("kb", "a.md", 20.0)})  # a plan found no copy can turn up
        assert db.attempts() == [answered]
        db.prune_attempts(100.0, ["kb", "docs"])
        assert db.attempts() == []


def test_a_file_from_a_newer_syncd_is_refused(tmp_path: Path) -> None:
    ManifestDB.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / FILENAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ManifestError, match="newer than this syncd"):
        ManifestDB.open(tmp_path)
    with pytest.raises(ManifestError, match="newer than this syncd"):
        ManifestDB.open(tmp_path, readonly=True)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite, it is a note" * 100)
    with pytest.raises(ManifestError, match="cannot use the manifest"):
        ManifestDB.open(tmp_path)


def test_a_check_left_running_gives_its_verdict_when_asked(
    tmp_path: Path,
) -> None:
    with ManifestDB.open(tmp_path) as db:
        db.put_entries([entry("docs", f"{i:04}.md") for i in range(2000)])
    with ManifestDB.open(tmp_path, check_later=True) as db:
        db.ensure_sound()  # sound: nothing to say, however often asked
        db.ensure_sound()
        assert len(db.snapshot().entries) == 2000
    size = (tmp_path / FILENAME).stat().st_size
    with open(tmp_path / FILENAME, "r+b") as f:  # a run of pages overwritten, as a bad disk would
        f.seek(size // 2)
        f.write(b"\xa5" * 3 * 4096)
    with ManifestDB.open(tmp_path, check_later=True) as db:
        for _ in range(2):  # and again, for whoever asks next
            with pytest.raises(ManifestDamaged, match=r"(?s)is damaged.*syncd repair"):
                db.ensure_sound()
    with pytest.raises(ManifestDamaged):
        ManifestDB.open(tmp_path)  # without check_later, at once


def test_readonly_needs_an_existing_current_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="run `syncd reconcile` first"):
        ManifestDB.open(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()

    v1 = sqlite_utils.Database(tmp_path / FILENAME)
    MIGRATIONS[0](v1)
    v1.execute("PRAGMA user_version = 1")
    v1.close()
    with pytest.raises(ManifestError, match="upgrade it"):
        ManifestDB.open(tmp_path, readonly=True)


def test_readonly_reader_sees_commits_while_the_writer_is_open(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as writer, ManifestDB.open(tmp_path, readonly=True) as reader:
        writer.put_entry(entry("docs", "a.md"))
        assert list(reader.entries("docs")) == ["a.md"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.put_entry(entry("docs", "b.md"))


def test_a_long_read_has_a_connection_of_its_own(tmp_path: Path) -> None:
    paths = "SELECT path FROM entries ORDER BY path"
    with ManifestDB.open(tmp_path) as db:
        db.put_entry(entry("docs", "a.md"))
        lent = threading.Event()
        done = threading.Event()

        def hold_the_connection() -> None:
            with db.connection():
                lent.set()
                done.wait(10)

        holder = threading.Thread(target=hold_the_connection)
        holder.start()
        lent.wait(10)
        read: list[object] = []

        def read_meanwhile() -> None:
            with db.reader() as conn:
                read.extend(conn.execute(paths).fetchall())

        reading = threading.Thread(target=read_meanwhile)
        reading.start()
        # Another thread holds the shared connection: the reader does not wait for it.
        reading.join(5)
        finished = not reading.is_alive()
        done.set()
        holder.join()
        reading.join()
        assert finished
        assert read == [("a.md",)]
        # Inside its own transaction a thread reads what it has not committed yet.
        with db.transaction():
            db.put_entry(entry("docs", "b.md"))
            with db.reader() as conn:
                assert conn.execute(paths).fetchall() == [("a.md",), ("b.md",)]
    with ManifestDB.memory() as db:
        db.put_entry(entry("docs", "c.md"))
        with db.reader() as conn:
            assert conn.execute(paths).fetchall() == [("c.md",)]


def test_a_whole_folder_is_not_read_in_the_order_of_its_hashes(tmp_path: Path) -> None:
    # The index by content (v8) serves lookups by content only: read through it, a folder's
    # rows came in random order and a no-change pass over 100,000 files missed SQLite's page
    # cache six times as often (213,000 page reads instead of 32,000).
    with ManifestDB.open(tmp_path) as db, db.connection() as conn:
        for query in (
            "SELECT path, hashed_stat FROM entries WHERE folder = ?",
            "SELECT path FROM entries WHERE folder = ? AND state NOT IN ('synced', 'rejected')",
        ):
            plan = str(conn.execute(f"EXPLAIN QUERY PLAN {query}", ["docs"]).fetchall())
            assert "sha256" not in plan, (query, plan)
        found = "SELECT path FROM entries WHERE sha256 = ?"
        assert "idx_entries_sha256" in str(
            conn.execute(f"EXPLAIN QUERY PLAN {found}", ["a"]).fetchall()
        )


def test_snapshot_is_limited_to_the_folders_asked_for(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        db.put_entries([entry("docs", "a.md"), entry("data", "t.jsonl")])
        db.add_attachment("file-docs-a.md", "asst_1")
        db.add_attachment("file-data-t.jsonl", "asst_2")
        db.add_attachment("file-someone-else", "asst_1")  # not owned by any row
        db.put_retired(Retired("file-old", "docs", delete=False, replaced_by="file-docs-a.md"))
        db.add_attachment("file-old", "asst_1")

        docs = db.snapshot(["docs"])
        assert set(docs.entries) == {("docs", "a.md")}
        assert docs.attachments == {("file-docs-a.md", "asst_1"), ("file-old", "asst_1")}
        assert docs.retired["file-old"].replaced_by == "file-docs-a.md"
        assert docs.retired["file-old"].delete is False

        everything = db.snapshot()
        assert set(everything.entries) == {("docs", "a.md"), ("data", "t.jsonl")}
        assert ("file-someone-else", "asst_1") not in everything.attachments
        assert db.snapshot(["nope"]).entries == {}


def test_entry_round_trip_including_the_intent(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        e = entry(
            "docs",
            "dir/ü n.md",
            State.UPLOADING,
            file_id=None,
            attempts=2,
            next_attempt_at=123.5,
            last_error="503 busy",
            intent_sha256="c" * 64,
            intent_size=10,
            intent_at=99.25,
        )
        db.put_entry(e)
        assert db.entry("docs", "dir/ü n.md") == e
        assert db.entries("docs") == {"dir/ü n.md": e}
        db.delete_entry("docs", "dir/ü n.md")
        assert db.entry("docs", "dir/ü n.md") is None


def test_counts_and_problems(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        db.put_entries(
            [
                entry("docs", "a.md"),
                entry("docs", "b.md"),
                entry("docs", "c.md", State.FAILED, last_error="500 boom"),
                entry("data", "x.jsonl", State.REJECTED, last_error="line 1 is not JSON"),
            ]
        )
        assert db.counts() == {"docs": {"synced": 2, "failed": 1}, "data": {"rejected": 1}}
        assert [(p.folder, p.path, p.last_error) for p in db.problems()] == [
            ("data", "x.jsonl", "line 1 is not JSON"),
            ("docs", "c.md", "500 boom"),
        ]


def test_forget_file_drops_the_retired_id_and_its_attachments(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        db.put_retired(Retired("file-old", "docs", delete=True))
        db.add_attachment("file-old", "asst_1")
        db.add_attachment("file-old", "asst_2")
        assert db.retired_count() == 1
        db.remove_attachment("file-old", "asst_1")
        assert db.snapshot().attachments == {("file-old", "asst_2")}
        db.forget_file("file-old")
        assert db.retired_count() == 0
        assert db.snapshot().attachments == frozenset()


def test_folder_devices_and_pass_history(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        assert db.folder_dev("docs") is None
        db.set_folder_dev("docs", 64769)
        db.set_folder_dev("docs", 64770)
        assert db.folder_dev("docs") == 64770
        for i in range(60):
            db.record_pass("docs", started_at=i, finished_at=i + 0.5, counts={"uploaded": i})
        db.record_pass("data", started_at=1, finished_at=2, counts={}, error="root is missing")
        last = db.last_pass()
        assert last["docs"].counts == {"uploaded": 59}
        assert last["data"].error == "root is missing"
        kept = db._db.execute("SELECT count(*) FROM passes WHERE folder = 'docs'").fetchone()[0]
        assert kept == 50


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:
        with pytest.raises(RuntimeError), db.transaction():
            db.put_entry(entry("docs", "a.md"))
            db.add_attachment("file-docs-a.md", "asst_1")
            raise RuntimeError("crash between two writes")
        assert db.snapshot().entries == {}
        assert db.attachments_of(["file-docs-a.md"]) == frozenset()


def test_writers_on_many_threads_share_one_connection(tmp_path: Path) -> None:
    with ManifestDB.open(tmp_path) as db:

        def write(n: int) -> None:
            for i in range(25):
                db.put_entry(entry("docs", f"{n}/{i}.md"))
                db.add_attachment(f"file-docs-{n}/{i}.md", "asst_1")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert db.counts() == {"docs": {"synced": 200}}
        assert len(db.snapshot().attachments) == 200


def test_durable_commits_sync_to_disk_and_the_rest_do_not_wait(tmp_path: Path) -> None:
    def synchronous(db: ManifestDB) -> int:
        return db._db.execute("PRAGMA synchronous").fetchone()[0]

    with ManifestDB.open(tmp_path) as db:
        assert synchronous(db) == 1  # NORMAL: safe against the process dying
        with db.transaction(durable=True):
            assert synchronous(db) == 2  # FULL: this commit is synced before it returns
            with db.transaction(durable=True):  # nested: the outer commit decides
                db.put_entry(entry("docs", "a.md"))
        assert synchronous(db) == 1
        db.put_entry(entry("docs", "b.md", State.UPLOADING), durable=True)
        assert synchronous(db) == 1
        assert sorted(db.entries("docs")) == ["a.md", "b.md"]


def test_a_durable_write_syncs_the_log_outside_the_lock_and_returns_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncing, done_waiting = threading.Event(), threading.Event()
    synced: list[str] = []
    fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        syncing.set()
        done_waiting.wait(10)
        fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    with ManifestDB.open(tmp_path) as db:
        monkeypatch.setattr(os, "fsync", slow_fsync)
        writer = threading.Thread(
            target=db.put_entry,
            args=(entry("docs", "a.md", State.UPLOADING),),
            kwargs={"durable": True},
        )
        writer.start()
        assert syncing.wait(10), "the durable write never synced the log itself"
        # While its log is being synced, the other threads read and write as usual…
        db.put_entry(entry("docs", "b.md"))
        assert db.entry("docs", "a.md") is not None
        # …and the durable write has not returned: its rows are not on disk yet.
        assert writer.is_alive()
        done_waiting.set()
        writer.join()
        assert synced == [str(tmp_path / (FILENAME + "-wal"))]


def test_concurrent_durable_writes_all_land(tmp_path: Path) -> None:
    missing: list[str] = []
    with ManifestDB.open(tmp_path) as db:

        def write(n: int) -> None:
            for i in range(25):
                db.put_entry(entry("docs", f"{n}/{i}.md", State.UPLOADING), durable=True)
                # Once the call returns the row is committed: visible to a fresh connection.
                with ManifestDB.open(tmp_path, readonly=True) as reader:
                    if reader.entry("docs", f"{n}/{i}.md") is None:
                        missing.append(f"{n}/{i}.md")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert missing == []
        assert db.counts() == {"docs": {"uploading": 200}}
        assert db._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL


def _intent(path: str, sent_at: float) -> tuple[Entry, Attempt]:
    row = entry("docs", path, State.UPLOADING, file_id=None, intent_sha256="a" * 64)
    return row, Attempt("docs", path, path, 3, "assistants", "a" * 64, sent_at)


def test_uploads_on_many_threads_share_commits_and_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one intent is being synced, the intents and answers of the other threads gather
    in one batch: one more commit and one more sync for all of them, not one each."""
    syncing, release = threading.Event(), threading.Event()
    syncs: list[int] = []
    fsync = os.fsync

    def held_fsync(fd: int) -> None:
        syncing.set()
        release.wait(10)
        syncs.append(fd)
        fsync(fd)

    old = Retired("file-old", "docs", True, replaced_by="file-new")
    with ManifestDB.open(tmp_path) as db:
        db.put_intent(*_intent("answered/0.md", 1.0))  # its answer comes in the batch below
        monkeypatch.setattr(os, "fsync", held_fsync)
        first = threading.Thread(target=db.put_intent, args=_intent("0.md", 2.0))
        first.start()
        assert syncing.wait(10)
        others = [
            threading.Thread(target=db.put_intent, args=_intent(f"{n}.md", 2.0 + n))
            for n in range(1, 8)
        ]
        answer = threading.Thread(
            target=db.record_answers,
            args=([Answer(entry("docs", "answered/0.md"), 1.0, "file-new", old)],),
        )
        for thread in [*others, answer]:
            thread.start()
        while len(db._open_batch.writes) < 7 * 2 + 3:  # each intent: a row and its attempt
            threading.Event().wait(0.01)
        release.set()
        for thread in [first, *others, answer]:
            thread.join(10)
        assert len(syncs) == 2
        assert db.counts() == {"docs": {"uploading": 8, "synced": 1}}
        assert db.entry("docs", "answered/0.md") == entry("docs", "answered/0.md")
        answered = [a for a in db.attempts() if a.path == "answered/0.md"]
        assert [a.file_id for a in answered] == ["file-new"]
        assert db.retired("file-old") == old


def test_a_failed_shared_commit_fails_each_of_its_writers_and_not_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ManifestDB.open(tmp_path) as db:
        monkeypatch.setattr(db, "_sync_log", lambda: (_ for _ in ()).throw(OSError(5, "I/O")))
        with pytest.raises(OSError):
            db.put_intent(*_intent("a.md", 1.0))
        monkeypatch.undo()
        db.put_intent(*_intent("b.md", 2.0))
        db.record_answers([Answer(entry("docs", "b.md"), 2.0, "file-docs-b.md")])
        assert db.entry("docs", "b.md") == entry("docs", "b.md")
