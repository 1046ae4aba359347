"""Issue #10, "keep the promises": each defect found by trying to break syncd, shown through
``syncd reconcile`` (a subprocess, a real configuration, the emulator over HTTP)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Workspace, sha

pytestmark = pytest.mark.timeout(120)


def syncd(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return ws.command(*args, timeout=100)


def reconcile(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return syncd(ws, "reconcile", *args)


def example(text: str) -> str:
    """One fine-tune example line."""
    return json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n"


def content(ws: Workspace, file_id: str) -> bytes:
    out = io.BytesIO()
    ws.client.download_file(file_id, out)
    return out.getvalue()


# --- 1: lost answers must not pair paths with the wrong uploads ----------------------------------


def test_lost_answers_of_same_named_uploads_never_pair_paths_with_the_wrong_files(
    ws: Workspace,
) -> None:
    # Six folders, an x.jsonl of one size but different content in each; the service stores
    # every upload and every answer is lost.
    texts = {f"f{n}": example(f"example number {n}") for n in range(6)}
    for name, text in texts.items():
        (ws.add_folder(name, "fine-tune") / "x.jsonl").write_text(text)
    assert len({len(t) for t in texts.values()}) == 1
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match=r"^POST /v1/files$")
    reconcile(ws)

    ws.emulator.clear_faults()
    for _ in range(8):
        result = reconcile(ws)
        if result.returncode == 0:
            break
    assert result.returncode == 0, result.stderr
    for name, text in texts.items():
        entry = ws.entry(name, "x.jsonl")
        assert entry.sha256 == sha(text.encode())
        assert content(ws, entry.file_id or "") == text.encode(), name
    assert len(ws.remote()) == 6  # each stored once: nothing sent twice
    assert syncd(ws, "verify").returncode == 0


# --- 2: a slow service must not make duplicates ----------------------------------------------


def test_an_upload_stored_after_the_client_gave_up_is_kept_once(ws: Workspace) -> None:
    # The service takes 2.5 s to store an upload, and stores it even though syncd gave up
    # waiting after 1 s: syncd gives it a grace period and looks again instead of sending
    # the file again, and ends with one copy, its own.
    ws.api["timeout_seconds"] = 1
    ws.sync["unresolved_grace_seconds"] = 4
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_text("slowly stored")
    ws.emulator.set_faults(slow_commit_ms=2500, match=r"^POST /v1/files$")
    result = reconcile(ws)
    assert result.returncode == 0, result.stderr
    assert "syncd looks for it before uploading again" in result.stderr
    assert "adopted" in result.stderr
    ws.emulator.clear_faults()
    [only] = ws.remote().values()
    assert ws.entry("docs", "a.md").file_id == only.id
    assert ws.attached(asst) == {only.id}
    verify = syncd(ws, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "not syncd's" not in verify.stdout


def test_late_copies_of_syncds_own_uploads_are_deleted_and_said_so(ws: Workspace) -> None:
    # No grace: the upload is sent again while the first request is still being stored,
    # and both land. The second copy matches one of syncd's recorded attempts: it is
    # syncd's own, so one is kept and the other deleted, with a line saying why.
    ws.api["timeout_seconds"] = 1
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("slowly stored")
    ws.emulator.set_faults(slow_commit_ms=1500, match=r"^POST /v1/files$", max_faults=None)
    first = reconcile(ws)
    ws.emulator.clear_faults()
    assert "syncd looks for it before uploading again" in first.stderr
    time.sleep(2)  # every request sent has been stored by now
    second = reconcile(ws, "--json")
    assert second.returncode == 0, second.stderr
    assert "was stored after syncd had given up on its answer; one copy is kept" in second.stderr
    [only] = ws.remote().values()
    assert ws.entry("docs", "a.md").file_id == only.id


# --- 10: an unresolved upload is not "in sync" ----------------------------------------------------


def test_uploads_with_unknown_outcomes_are_counted_listed_and_exit_1(ws: Workspace) -> None:
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("never answered")
    # Every upload's connection drops before the service takes it: the outcome is unknown.
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="before", match=r"^POST /v1/files$")
    result = reconcile(ws, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 0 and report["unresolved"] == 1
    assert report["exit_status"] == 1
    [error] = report["errors"]
    assert error["kind"] == "unresolved" and (error["folder"], error["path"]) == ("docs", "a.md")
    assert "unresolved 1" in reconcile(ws).stdout

    ws.emulator.clear_faults()
    settled = reconcile(ws, "--json")
    assert settled.returncode == 0, settled.stderr
    assert json.loads(settled.stdout)["unresolved"] == 0


# --- 6: a file name that is not UTF-8 ------------------------------------------------------


def test_a_name_that_is_not_utf8_is_rejected_and_the_pass_goes_on(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    (docs / "b.md").write_text("b")
    assert reconcile(ws).returncode == 0
    (docs / "b.md").unlink()
    with open(os.fsencode(docs) + b"/bad\xff.md", "wb") as f:
        f.write(b"bad name")

    result = reconcile(ws, "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["rejected"] == 1 and report["deleted"] == 1
    [rejected] = [a for a in report["actions"] if a["what"] == "rejected"]
    assert rejected["path"] == "bad\\xff.md"
    assert "not valid UTF-8" in rejected["detail"]
    assert "rejected [docs] bad\\xff.md: its name is not valid UTF-8" in result.stderr
    assert len(ws.remote()) == 1  # b.md's remote copy is gone
    assert reconcile(ws).returncode == 1  # still rejected, still no crash


# --- 3: names with ", CR, LF or TAB ------------------------------------------------------------


def test_names_the_client_encodes_are_compared_as_sent(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    names = ['say "hi".md', "tab\there.md", "line\nbreak.md", "cr\r.md"]
    for name in names:
        (docs / name).write_text(f"content of {name!r}")
    # Every answer is lost after the upload was stored: each must be found and adopted, not
    # sent again.
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match=r"^POST /v1/files$")
    ws.sync["unresolved_grace_seconds"] = 0
    ws.write_config()
    reconcile(ws)
    ws.emulator.clear_faults()
    result = reconcile(ws)
    assert result.returncode == 0, result.stderr
    assert len(ws.remote()) == len(names)  # none sent twice
    verify = syncd(ws, "verify")
    assert verify.returncode == 0, verify.stdout


# --- 4: an edit that keeps size and mtime -------------------------------------------------


def keep_size_and_mtime(path: Path, text: str) -> None:
    """Write ``text`` (the same size) over ``path`` and set its mtime back, as ``cp -p``,
    ``rsync -t`` and ``touch -r`` do."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_an_edit_keeping_size_and_mtime_is_synced(ws: Workspace) -> None:
    train = ws.add_folder("train", "fine-tune")
    path = train / "t.jsonl"
    path.write_text(example("version one"))
    assert reconcile(ws).returncode == 0
    keep_size_and_mtime(path, example("version two"))

    result = reconcile(ws)
    assert result.returncode == 0, result.stderr
    assert "replaced 1" in result.stdout
    assert content(ws, ws.entry("train", "t.jsonl").file_id or "") == path.read_bytes()
    again = reconcile(ws)
    assert "unchanged 1" in again.stdout and again.stderr == ""


# --- 9: a configured assistant that no longer exists -------------------------------------


def test_a_missing_assistant_is_an_error_naming_it_once_per_pass(ws: Workspace) -> None:
    docs = ws.add_folder("docs", assistants=["asst_gone0000000000000000"])
    (docs / "a.md").write_text("a")
    result = reconcile(ws)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "asst_gone0000000000000000" in line]
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0] and "does not exist" in lines[0]


# --- 8: the state directory's disk is full ---------------------------------------------------


@pytest.fixture
def small_state_disk(ws: Workspace) -> Iterator[Path]:
    """The workspace's state directory on its own tiny tmpfs (a real full disk)."""
    ws.state_dir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(ws.state_dir)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield ws.state_dir
    finally:
        ws.close()
        subprocess.run(["umount", "-l", str(ws.state_dir)], check=True)


def fill(directory: Path) -> Path:
    """Fill the disk under ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    return filler


def test_a_full_state_disk_is_a_named_error_and_nothing_is_lost(
    ws: Workspace, small_state_disk: Path
) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    assert reconcile(ws).returncode == 0
    filler = fill(small_state_disk)
    # One page back: room for the lock file, none for the manifest's changes.
    os.truncate(filler, filler.stat().st_size - 4096)
    for name in ("b.md", "c.md", "d.md"):
        (docs / name).write_text(name)

    full = reconcile(ws)
    assert full.returncode == 3, full.stderr
    assert "Traceback" not in full.stderr
    assert f"the state directory {ws.state_dir} is full" in full.stderr
    assert "free some space there" in full.stderr

    filler.unlink()
    again = reconcile(ws)
    assert again.returncode == 0, again.stderr
    assert sorted(f.filename for f in ws.remote().values()) == ["a.md", "b.md", "c.md", "d.md"]


# --- 7: a damaged manifest ----------------------------------------------------------------


def damage(path: Path) -> None:
    """Overwrite a run of pages in the middle of a database file, as a bad disk would."""
    size = path.stat().st_size
    assert size >= 3 * 4096
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"\xa5" * min(size - 4096, 3 * 4096))


def test_a_damaged_manifest_is_named_and_repair_neither_duplicates_nor_orphans(
    ws: Workspace,
) -> None:
    docs = ws.add_folder("docs")
    for i in range(40):
        (docs / f"f{i:02}.md").write_text(f"file {i} " + "x" * 200)
    assert reconcile(ws).returncode == 0
    backup = ws.state_dir / "manifest.backup.sqlite"
    assert backup.stat().st_mode & 0o777 == 0o600
    older = backup.read_bytes()
    # More uploads after that copy was made; then the disk damages the manifest (and the
    # copy is the older one: as if the damage came before the next copy was kept).
    time.sleep(2.1)
    for i in range(3):
        (docs / f"new{i}.md").write_text(f"new {i}")
    (docs / "f00.md").write_text("changed since the copy")
    assert reconcile(ws).returncode == 0
    ws.close()
    backup.write_bytes(older)
    damage(ws.state_dir / "manifest.sqlite")
    damaged = (ws.state_dir / "manifest.sqlite").read_bytes()

    for command in ("status", "reconcile"):
        result = syncd(ws, command)
        assert result.returncode == 2, (command, result.stderr)
        assert "is damaged" in result.stderr and "syncd repair" in result.stderr
        assert "Traceback" not in result.stderr
    # reconcile read while the integrity check ran, and wrote nothing before its verdict.
    assert (ws.state_dir / "manifest.sqlite").read_bytes() == damaged

    repaired = syncd(ws, "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "run `syncd reconcile`" in repaired.stdout
    result = reconcile(ws, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["uploaded"] == 0 and report["adopted"] == 4
    names = sorted(f.filename for f in ws.remote().values())
    assert names == sorted([f"f{i:02}.md" for i in range(40)] + [f"new{i}.md" for i in range(3)])
    verify = syncd(ws, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "not syncd's" not in verify.stdout


def test_a_daemons_copy_of_the_manifest_is_kept_at_most_every_interval(ws: Workspace) -> None:
    """A daemon passes once a drop: the copy follows at most every ``copy_interval``, and
    what is owed is kept when asked (at stop, at a heartbeat once due)."""
    docs = ws.add_folder("docs")
    engine = ws.engine(copy_interval=300.0)
    backup = ws.state_dir / "manifest.backup.sqlite"

    (docs / "a.md").write_text("a")
    engine.run_pass()  # the first change of the process: a copy at once
    first = backup.stat().st_ino  # each copy is a new file moved into place
    (docs / "b.md").write_text("b")
    engine.run_pass()
    assert backup.stat().st_ino == first  # owed, not due yet
    engine.keep_copy(due_only=True)
    assert backup.stat().st_ino == first

    engine.keep_copy()  # at stop
    assert backup.stat().st_ino != first
    restored = sqlite3.connect(backup)
    paths = {p for (p,) in restored.execute("SELECT path FROM entries")}
    restored.close()
    assert paths == {"a.md", "b.md"}
