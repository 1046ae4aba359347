"""Issue #10, "keep the promises", as the daemon shows it: ``syncd run`` as a subprocess
against the emulator."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.api import Client

from .harness import (
    DaemonProcess,
    FolderDef,
    assert_exactly,
    eventually,
    holds,
    stop_with_uploads_in_flight,
    write_config,
)

pytestmark = pytest.mark.timeout(150)


def test_uploads_cut_off_by_sigterm_and_stored_late_are_not_sent_again(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "syncd.toml",
        emulator.base_url,
        state,
        [FolderDef("d", drop)],
        grace=0.5,
        sync={"unresolved_grace_seconds": 5},
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    # The service stores each upload 3 s after its body arrived, whether or not the client
    # is still there; the shutdown grace period cuts the requests off before that.
    emulator.set_faults(slow_commit_ms=3000, match="POST /v1/files$")
    names = [f"late-{i}.md" for i in range(4)]
    for name in names:
        (drop / name).write_text(name)
    stop_with_uploads_in_flight(daemon, state, after=0.3)  # the requests are out
    emulator.clear_faults()  # the requests in flight are stored all the same

    restarted = DaemonProcess(config, api_key)
    daemons.append(restarted)
    restarted.wait_for_line("looked for in 5 s before being sent again", timeout=30)
    restarted.wait_for_line("ready:", timeout=60)
    eventually(lambda: assert_exactly(client, names))
    time.sleep(4)  # every request cut off has been stored by now
    assert_exactly(client, names)
    assert restarted.stop() == 0


def test_the_daemon_syncs_an_edit_that_keeps_size_and_mtime(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    path = drop / "a.md"
    path.write_text("version one")
    config = write_config(
        tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state", [FolderDef("d", drop)]
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    [first] = client.list_files()
    before = path.stat()
    path.write_text("version two")  # the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p, touch -r
    daemon.wait_for_line(r"replaced \[d\] a\.md")
    eventually(lambda: holds([f.id for f in client.list_files()] not in ([], [first.id])))
    eventually(lambda: holds(len(client.list_files()) == 1))
    assert daemon.stop() == 0


def test_the_daemon_logs_a_missing_assistant_as_an_error_each_pass(
    tmp_path: Path, emulator, api_key: str, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    gone = "asst_gone0000000000000000"
    folder = FolderDef("d", drop, assistants=[gone])
    config = write_config(tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state", [folder])
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    assert daemon.count(rf"error.*{gone} does not exist") == 1, daemon.log
    (drop / "a.md").write_text("a")
    eventually(lambda: holds(daemon.count(rf"{gone} does not exist") == 2))
    assert daemon.stop() == 0


def test_a_first_pass_that_cannot_reach_the_service_is_followed_as_announced(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "early.md").write_text("there before the daemon started")
    config = write_config(
        tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state", [FolderDef("d", drop)]
    )
    # The first pass's listing fails until the client gives up; the next full pass is
    # announced for 10 s later — not a whole rescan interval (600 s here).
    emulator.set_faults(fail_rate=1.0, match="GET /v1/files$", max_faults=6)
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line(r"a full pass follows in 10 s", timeout=60)
    eventually(lambda: assert_exactly(client, ["early.md"]), timeout=30)
    assert daemon.stop() == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on its own tiny tmpfs (a real disk that fills up)."""
    path = tmp_path / "state"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_pass_that_finds_the_state_disk_full_is_tried_again_soon(
    tmp_path: Path, small_disk: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    config = write_config(
        tmp_path / "syncd.toml", emulator.base_url, small_disk, [FolderDef("d", drop)]
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for block in (65536, 4096, 1):
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * block)
    os.close(fd)
    names = [f"n{i}.md" for i in range(20)]
    for name in names:
        (drop / name).write_text(name)
    daemon.wait_for_line(r"is full \(no space left on device\)", timeout=30)
    daemon.wait_for_line(r"a full pass follows in 10 s", timeout=30)
    filler.unlink()
    # Not at the next full pass of the interval (600 s here): the failed pass is retried.
    try:
        eventually(lambda: assert_exactly(client, names), timeout=40)
    except AssertionError as e:
        raise AssertionError(daemon.log) from e
    assert "Traceback" not in daemon.log
    assert daemon.stop() == 0
