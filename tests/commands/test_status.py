"""``syncd status``: reads the manifest alone — offline, while a pass writes, and before any."""

from __future__ import annotations

import re
import sqlite3
import time

from syncd import __version__
from syncd.engine.manifest import FILENAME
from syncd.engine.model import Entry, Retired, State

from .conftest import Workspace


def entry(folder: str, path: str, state: State, **kw: object) -> Entry:
    values: dict = {"size": 5, "mtime_ns": 1, "inode": 1, "sha256": "0" * 64, "file_id": None}
    values.update(kw)
    return Entry(folder=folder, path=path, state=state, **values)


def record_a_pass(ws: Workspace) -> None:
    """Two folders' worth of entries in every state, a pass each, and one retired file."""
    with ws.manifest() as db:
        db.put_entries(
            [
                entry("docs", "a.md", State.SYNCED, file_id="file-a"),
                entry("docs", "b.md", State.SYNCED, file_id="file-b"),
                entry("docs", "big.pdf", State.REJECTED, last_error="larger than 512 MB"),
                entry("docs", "new.md", State.PENDING),
                entry("train", "t.jsonl", State.FAILED, attempts=3, last_error="503 overloaded"),
                entry("train", "u.jsonl", State.UPLOADING),
            ]
        )
        db.record_pass(
            "docs", started_at=1_700_000_000, finished_at=1_700_000_002.5, counts={"synced": 2}
        )
        db.record_pass(
            "train",
            started_at=1_700_000_000,
            finished_at=1_700_000_001,
            counts={},
            error="folder root /mnt/train is missing: skipped, nothing deleted",
        )
        db.put_retired(Retired("file-old", "docs", delete=True))


ZERO = {"pending": 0, "uploading": 0, "synced": 0, "failed": 0, "rejected": 0, "deleting": 0}


def test_before_any_pass_it_says_so_and_creates_nothing(workspace: Workspace) -> None:
    result = workspace.run("status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"syncd {__version__}"
    assert lines[1] == f"no pass has run yet (no manifest in {workspace.state_dir})"
    assert lines[2].split() == ["folder", "files", "last", "pass", "path"]
    assert lines[3].split() == ["docs", "no", "files", "never", str(workspace.docs)]
    assert not workspace.state_dir.exists()
    assert workspace.json("status") == {
        "version": __version__,
        "state_dir": str(workspace.state_dir),
        "manifest": False,
        "retired": 0,
        "daemon": None,
        "instance": "",
        "stores": [],
        "folders": [
            {
                "name": "docs",
                "path": str(workspace.docs),
                "counts": ZERO,
                "last_pass": None,
                "problems": [],
                "unattached": {},
            },
            {
                "name": "train",
                "path": str(workspace.train),
                "counts": ZERO,
                "last_pass": None,
                "problems": [],
                "unattached": {},
            },
        ],
    }


def test_json_shape_after_a_pass(workspace: Workspace) -> None:
    record_a_pass(workspace)
    assert workspace.json("status") == {
        "version": __version__,
        "state_dir": str(workspace.state_dir),
        "manifest": True,
        "retired": 1,
        "daemon": None,
        "instance": "",
        "stores": [],
        "folders": [
            {
                "name": "docs",
                "path": str(workspace.docs),
                "counts": ZERO | {"synced": 2, "rejected": 1, "pending": 1},
                "last_pass": {
                    "started_at": "2023-11-14T22:13:20Z",
                    "finished_at": "2023-11-14T22:13:22Z",
                    "error": None,
                },
                "problems": [
                    {
                        "path": "big.pdf",
                        "state": "rejected",
                        "reason": "larger than 512 MB",
                        "attempts": 0,
                    }
                ],
                "unattached": {},
            },
            {
                "name": "train",
                "path": str(workspace.train),
                "counts": ZERO | {"failed": 1, "uploading": 1},
                "last_pass": {
                    "started_at": "2023-11-14T22:13:20Z",
                    "finished_at": "2023-11-14T22:13:21Z",
                    "error": "folder root /mnt/train is missing: skipped, nothing deleted",
                },
                "problems": [
                    {
                        "path": "t.jsonl",
                        "state": "failed",
                        "reason": "503 overloaded",
                        "attempts": 3,
                    }
                ],
                "unattached": {},
            },
        ],
    }


def test_plain_text_lists_each_problem_with_its_reason(workspace: Workspace) -> None:
    record_a_pass(workspace)
    result = workspace.run("status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    columns = [re.split(r"\s{2,}", line) for line in lines[1:4]]
    assert columns[0] == ["folder", "files", "last pass", "path"]
    assert columns[1][:2] == ["docs", "2 synced, 1 pending, 1 rejected"]
    assert columns[2][:2] == ["train", "1 uploading, 1 failed"]
    assert columns[2][3] == str(workspace.train)
    assert "[train] last pass stopped: folder root /mnt/train is missing" in result.stdout
    assert "1 old remote file(s) still to be detached or deleted" in lines
    problems = lines[lines.index("Files that need attention") + 2 :]
    assert [p.split(None, 3) for p in problems] == [
        ["docs", "big.pdf", "rejected", "larger than 512 MB"],
        ["train", "t.jsonl", "failed", "503 overloaded"],
    ]


def test_works_offline(workspace: Workspace, closed_port_url: str) -> None:
    workspace.write_config(base_url=closed_port_url)
    record_a_pass(workspace)
    result = workspace.run("status", key=None)
    assert result.exit_code == 0
    assert "big.pdf" in result.stdout


def test_answers_while_a_pass_is_writing(workspace: Workspace) -> None:
    record_a_pass(workspace)
    with workspace.manifest() as writer, writer.transaction():
        # A pass in the middle of a write transaction: status neither waits for it nor sees it.
        writer.put_entry(entry("docs", "c.md", State.SYNCED, file_id="file-c"))
        started = time.monotonic()
        status = workspace.json("status")
        assert time.monotonic() - started < 5
    assert status["folders"][0]["counts"]["synced"] == 2
    assert workspace.json("status")["folders"][0]["counts"]["synced"] == 3


def test_a_folder_no_longer_configured_is_still_shown(workspace: Workspace) -> None:
    with workspace.manifest() as db:
        db.put_entry(entry("old", "x.md", State.SYNCED, file_id="file-x"))
    folders = workspace.json("status")["folders"]
    assert [(f["name"], f["path"]) for f in folders] == [
        ("docs", str(workspace.docs)),
        ("train", str(workspace.train)),
        ("old", None),
    ]
    assert "(no longer configured)" in workspace.run("status").stdout


def test_a_bad_configuration_exits_2(workspace: Workspace) -> None:
    workspace.config.write_text(
        '[[folders]]\nname = "docs"\npath = "./docs"\npurpose = "finetune"\n', encoding="utf-8"
    )
    result = workspace.run("status")
    assert result.exit_code == 2
    assert result.stderr == (
        f"syncd: {workspace.config}: folders[0].purpose: "
        'must be "assistants" or "fine-tune", got "finetune"\n'
    )


def test_a_missing_config_file_exits_2(workspace: Workspace) -> None:
    workspace.config.unlink()
    result = workspace.run("status")
    assert result.exit_code == 2
    assert result.stderr == f"syncd: {workspace.config}: no such file\n"


def test_a_manifest_from_a_newer_syncd_exits_2(workspace: Workspace) -> None:
    workspace.manifest().close()
    conn = sqlite3.connect(workspace.state_dir / FILENAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = workspace.run("status")
    assert result.exit_code == 2
    assert "schema version 99, newer than this syncd understands" in result.stderr
