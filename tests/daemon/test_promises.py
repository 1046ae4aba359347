"""Issue #10, "keep the promises", as the daemon shows it: ``syncd run`` as a subprocess
against the emulator."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from syncd.api import Client
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import State

from .harness import DaemonProcess, FolderDef, assert_exactly, eventually, holds, write_config

pytestmark = pytest.mark.timeout(150)


def _uploading(state_dir: Path) -> int:
    with ManifestDB.open(state_dir, readonly=True) as manifest:
        return sum(c.get(State.UPLOADING.value, 0) for c in manifest.counts().values())


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
    eventually(lambda: holds(_uploading(state) > 0), interval=0.05)
    time.sleep(0.3)  # the requests are out
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(10) == 0
    daemon.wait_for_line("grace period is over")
    emulator.clear_faults()  # the requests in flight are stored all the same

    restarted = DaemonProcess(config, api_key)
    daemons.append(restarted)
    restarted.wait_for_line("looked for in 5 s before being sent again", timeout=30)
    restarted.wait_for_line("ready:", timeout=60)
    eventually(lambda: assert_exactly(client, names))
    time.sleep(4)  # every request cut off has been stored by now
    assert_exactly(client, names)
    assert restarted.stop() == 0
