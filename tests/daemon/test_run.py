"""``syncd run`` as a subprocess against the emulator: the changes people make to drop folders."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.api import Client

from .harness import (
    DaemonProcess,
    FolderDef,
    assert_exactly,
    attached_names,
    eventually,
    holds,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def assistant(client: Client) -> str:
    return client.create_assistant(name="daemon tests").id


def test_drop_edit_rename_move_delete(
    tmp_path: Path, emulator, api_key: str, client: Client, assistant: str, daemons
) -> None:
    docs, team = tmp_path / "docs", tmp_path / "team"
    docs.mkdir()
    team.mkdir()
    (docs / "before.md").write_text("was here before the daemon started")
    config = write_config(
        tmp_path / "syncd.toml",
        emulator.base_url,
        tmp_path / "state",
        [FolderDef("docs", docs, [assistant]), FolderDef("team", team)],
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line(r"ready: watching 2 folders · 1 synced")
    assert attached_names(client, assistant) == {"before.md"}

    # Dropped.
    (docs / "guide.md").write_text("first version")
    eventually(lambda: assert_exactly(client, ["before.md", "guide.md"]))
    eventually(lambda: holds(attached_names(client, assistant) == {"before.md", "guide.md"}))

    # Edited: the new version replaces the old one (uploaded, attached, old one deleted).
    old_id = _file_id(client, "guide.md")
    (docs / "guide.md").write_text("second version, longer than the first")
    eventually(lambda: holds(_file_id(client, "guide.md") not in (None, old_id)))
    eventually(lambda: assert_exactly(client, ["before.md", "guide.md"]))
    new = next(f for f in client.list_files() if f.filename == "guide.md")
    assert new.bytes == len("second version, longer than the first")

    # Renamed, then moved to the other folder (which has no assistant).
    (docs / "guide.md").rename(docs / "manual.md")
    eventually(lambda: assert_exactly(client, ["before.md", "manual.md"]))
    eventually(lambda: holds(attached_names(client, assistant) == {"before.md", "manual.md"}))
    (docs / "manual.md").rename(team / "manual.md")
    eventually(lambda: holds(attached_names(client, assistant) == {"before.md"}))
    eventually(lambda: assert_exactly(client, ["before.md", "manual.md"]))

    # Deleted.
    (docs / "before.md").unlink()
    eventually(lambda: assert_exactly(client, ["manual.md"]))
    assert attached_names(client, assistant) == set()

    # `syncd status` shows what the daemon is doing, read from its state directory.
    shown = _status_json(config)["daemon"]
    assert shown["pid"] == daemon.proc.pid
    assert shown["folders"]["docs"] == {"watch": "inotify", "problem": None}
    assert "watching 2 folders" in shown["status"]
    assert f"daemon: PID {daemon.proc.pid}, running since" in _status(config)
    assert daemon.stop() == 0
    assert _status_json(config)["daemon"] is None
    assert "stopped" in daemon.log


def test_a_slow_writer_is_uploaded_once_and_complete(client: Client, one_folder_daemon) -> None:
    drop, daemon = one_folder_daemon()
    chunk = b"0123456789" * 1000
    with (drop / "slow.txt").open("wb") as f:
        for _ in range(5):
            f.write(chunk)
            f.flush()
            time.sleep(0.5)  # longer than the debounce window
    eventually(lambda: assert_exactly(client, ["slow.txt"]))
    time.sleep(1)
    (remote,) = client.list_files()
    assert remote.bytes == 5 * len(chunk)
    assert daemon.count(r"uploaded \[d\] slow.txt") == 1


def test_a_burst_of_a_thousand_files(client: Client, one_folder_daemon) -> None:
    drop, daemon = one_folder_daemon()
    names = [f"burst-{i:04}.txt" for i in range(1000)]
    for name in names:
        (drop / name).write_text(f"file {name}\n")
    eventually(lambda: assert_exactly(client, names), timeout=60, interval=1)
    # Handled as batches, not a pass per file.
    passes = daemon.count(r"paths pass done")
    assert daemon.stop() == 0
    assert 1 <= passes <= 20, passes


def _file_id(client: Client, name: str) -> str | None:
    ids = [f.id for f in client.list_files() if f.filename == name]
    return ids[0] if len(ids) == 1 else None


def _status(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def _status_json(config: Path) -> dict:
    return json.loads(_status(config, "--json"))
