"""What an operator reads after ``syncd reconcile`` and ``syncd status``, run as subprocesses: file
names shown as ``[folder] path``, control characters escaped, blanks visible, sizes in one unit
system, true words for what happened (issue #11)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import Workspace

pytestmark = pytest.mark.timeout(60)


def syncd(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return ws.command(*args, timeout=50)


def test_names_are_shown_with_their_folder_escaped_and_quoted(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "guides").mkdir()
    (docs / "guides" / "setup.md").write_text("set up")
    forged = "x.md\n2026-01-01 00:00:00  deleted remote file-everything\x1b[2J"
    (docs / forged).write_text("forged")
    (docs / "notes.md ").write_text("a trailing blank")

    result = syncd(ws, "reconcile")

    assert result.returncode == 1, result.stderr  # two rejected files
    assert "uploaded [docs] guides/setup.md → file-" in result.stderr
    lines = result.stderr.splitlines()
    # The forged name stays on its own line, escaped; no escape sequence reaches the terminal.
    assert not any(line.startswith("2026-01-01 00:00:00  deleted") for line in lines)
    assert "\x1b" not in result.stderr
    assert (
        "rejected [docs] x.md\\n2026-01-01 00:00:00  deleted remote file-everything\\x1b[2J"
        in result.stderr
    )
    assert 'rejected [docs] "notes.md ": extension ".md " is not accepted' in result.stderr

    status = syncd(ws, "status")
    assert status.returncode == 0, status.stderr
    assert "\x1b" not in status.stdout
    assert "x.md\\n2026-01-01" in status.stdout
    assert '"notes.md "' in status.stdout


def test_sizes_and_the_limit_are_in_one_unit_system(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    with (docs / "big.pdf").open("wb") as f:
        f.truncate(600 * 1024**2)  # sparse: 600 MB as the service counts, 629 million bytes

    result = syncd(ws, "reconcile")

    assert result.returncode == 1
    assert (
        "rejected [docs] big.pdf: file is 600 MB (629,145,600 bytes); the service accepts at "
        "most 512 MB (536,870,912 bytes)"
    ) in result.stderr


def test_an_emptied_file_is_said_to_be_emptied_not_removed(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("content")
    (docs / "b.md").write_text("more")
    assert syncd(ws, "reconcile").returncode == 0
    file_id = ws.entry("docs", "a.md").file_id
    (docs / "a.md").write_bytes(b"")

    result = syncd(ws, "reconcile")

    assert result.returncode == 1  # the empty file is rejected
    assert (
        f"deleted remote {file_id} ([docs] a.md was emptied; the service refuses empty files)"
    ) in result.stderr
    assert "was removed" not in result.stderr


def test_a_file_someone_else_deleted_is_said_to_be_already_gone(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("content")
    (docs / "b.md").write_text("more")
    assert syncd(ws, "reconcile").returncode == 0
    file_id = ws.entry("docs", "a.md").file_id
    assert file_id is not None
    (docs / "a.md").unlink()
    ws.client.delete_file(file_id)

    result = syncd(ws, "reconcile")

    assert result.returncode == 0, result.stderr
    assert f"remote {file_id} was already gone ([docs] a.md was removed)" in result.stderr
    assert f"deleted remote {file_id}" not in result.stderr


def test_a_dry_run_that_would_trip_the_delete_guard_says_so_on_stdout(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for i in range(4):
        (docs / f"{i}.md").write_text(f"file {i}")
    assert syncd(ws, "reconcile").returncode == 0
    for i in range(4):
        (docs / f"{i}.md").unlink()

    result = syncd(ws, "reconcile", "--dry-run")

    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert "nothing to do" not in lines
    assert lines[0] == (
        "would stop at the delete guard: would remove 4 of 4 files from docs (limit 50%); "
        "run with --force if that is intended"
    )
    assert lines[-1].startswith("dry run, would have: uploaded 0")


def test_unreadable_files_need_attention_listed_and_exit_1(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "fine.md").write_text("fine")
    # A path longer than PATH_MAX (4096 bytes), made step by step from directory descriptors.
    fd = os.open(docs, os.O_RDONLY)
    try:
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("lost.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)

    result = syncd(ws, "reconcile")

    assert result.returncode == 1, result.stderr
    assert "File name too long" in result.stderr
    report = json.loads(syncd(ws, "reconcile", "--json").stdout)
    [error] = [e for e in report["errors"] if e["kind"] == "unreadable"]
    assert error["folder"] == "docs" and error["message"].startswith("cannot read [docs] ")
    assert error["message"].endswith(": File name too long")

    status = syncd(ws, "status")
    assert "unreadable" in status.stdout and "File name too long" in status.stdout
    folder = json.loads(syncd(ws, "status", "--json").stdout)["folders"][0]
    assert [p["state"] for p in folder["problems"]] == ["unreadable"]


def test_a_dry_run_says_emptied_too(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("content")
    (docs / "b.md").write_text("more")
    assert syncd(ws, "reconcile").returncode == 0
    file_id = ws.entry("docs", "a.md").file_id
    (docs / "a.md").write_bytes(b"")

    result = syncd(ws, "reconcile", "--dry-run")

    assert (
        f"would delete remote {file_id} ([docs] a.md was emptied; the service refuses empty files)"
    ) in result.stdout.splitlines()
