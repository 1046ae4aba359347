"""``syncd run`` as a subprocess where issue #11 found its log misleading: library warnings at
info, a renamed subfolder taken for a mass deletion, a full assistant logged file by file."""

from __future__ import annotations

import subprocess
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
