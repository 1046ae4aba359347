"""``syncd run`` as a subprocess where issue #11 found its log misleading: library warnings at
info, a renamed subfolder taken for a mass deletion, a full assistant logged file by file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.api import Client
from syncd.engine.manifest import ManifestDB

from .harness import DaemonProcess, FolderDef, assert_exactly, eventually, holds, write_config

pytestmark = pytest.mark.timeout(120)


def test_making_nested_directories_logs_no_library_warning(
    tmp_path: Path, emulator, api_key: str, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = write_config(tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state",
                          [FolderDef("d", drop)])  # fmt: skip
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    # `mkdir -p a/b/c` made watchdog warn "Callback with id … already exists" (two times in
    # three): a few rounds make a leak near certain.
    for i in range(6):
        subprocess.run(["mkdir", "-p", f"{drop}/a{i}/b/c"], check=True)
        (drop / f"a{i}" / "b" / "c" / "f.md").write_text(f"file {i}")
    eventually(lambda: assert_exactly_names(emulator, api_key, {"f.md"}, 6))
    assert daemon.stop() == 0
    assert "Callback with id" not in daemon.log
    assert "Warning" not in daemon.log, daemon.log


def assert_exactly_names(emulator, api_key: str, names: set[str], count: int) -> None:
    with Client(emulator.base_url, api_key) as client:
        files = list(client.list_files())
    assert {f.filename for f in files} == names and len(files) == count


def test_renaming_a_subfolder_is_a_rename_not_a_removal(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    (drop / "old").mkdir(parents=True)
    names = [f"{i}.md" for i in range(10)]
    for name in names:
        (drop / "old" / name).write_text(f"content of {name}")
    assistant = client.create_assistant().id
    config = write_config(tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state",
                          [FolderDef("d", drop, [assistant])])  # fmt: skip
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line(r"ready: watching 1 folder · 10 synced")

    (drop / "old").rename(drop / "new")

    # Each file is at its new path, once, attached; the old paths are gone from the service.
    eventually(lambda: holds(_paths(tmp_path / "state") == {f"new/{n}" for n in names}))
    eventually(lambda: assert_exactly(client, names))
    eventually(lambda: holds(len(attached_names_list(client, assistant)) == 10))
    assert daemon.stop() == 0
    # A rename is not a removal: no error, and nobody is told to force anything.
    assert "error:" not in daemon.log, daemon.log
    assert "--force" not in daemon.log


def attached_names_list(client: Client, assistant: str) -> list[str]:
    return [a.id for a in client.iter_assistant_files(assistant)]


def _paths(state: Path) -> set[str]:
    with ManifestDB.open(state, readonly=True) as db:
        return set(db.entries("d"))


def test_a_full_assistant_is_one_warning_and_one_status_line_with_a_count(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    names = [f"{i:02}.md" for i in range(30)]
    for name in names:
        (drop / name).write_text(f"content of {name}")
    assistant = client.create_assistant().id
    config = write_config(tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state",
                          [FolderDef("d", drop, [assistant])])  # fmt: skip
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line(r"ready: watching 1 folder · 30 synced")
    (drop / "30.md").write_text("one more, at a full assistant")
    eventually(lambda: holds(daemon.count(r"uploaded \[d\] 30\.md") == 1))
    assert daemon.stop() == 0

    # One warning for the ten files the first pass could not attach (not ten), and one more
    # when the count changed; nothing an operator reads as an error.
    limit = [line for line in daemon.lines if "20-file limit" in line]
    assert len(limit) == 2, limit
    assert f"assistant {assistant} is at its 20-file limit: 10 files of [d] are not" in limit[0]
    assert "11 files of [d]" in limit[1]
    assert "error:" not in daemon.log

    status = _syncd("status", "--config", str(config))
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert f"[d] 11 synced file(s) not attached to {assistant}" in status.stdout
    assert max(len(line) for line in lines) < 200
    assert "last pass stopped" not in status.stdout
    assert status.stdout.count("not attached") == 1  # the list is for -v and --json

    verbose = _syncd("status", "-v", "--config", str(config))
    assert verbose.stdout.count("not attached") == 1 + 11  # the line, then one row per file

    report = json.loads(_syncd("status", "--json", "--config", str(config)).stdout)
    [folder] = report["folders"]
    assert len(folder["unattached"][assistant]) == 11
    assert folder["last_pass"]["error"] is None


def _syncd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, env=env, timeout=30
    )
