"""StateLock with real processes: a live holder blocks, a dead one is taken over."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.service.lock import LOCK_NAME, STALE_AFTER_SECONDS, LockHeld, StateLock, ensure_state_dir

pytestmark = pytest.mark.timeout(30)

HOLDER = """
import sys, time
from pathlib import Path
from syncd.service.lock import StateLock
with StateLock(Path(sys.argv[1]), command="syncd run"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on ``tmp_path / "state"``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def sleeper() -> Iterator[int]:
    """The PID of a live process that is not syncd."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def write_record(state: Path, pid: int, heartbeat: float, host: str | None = None) -> None:
    ensure_state_dir(state)
    record = {
        "pid": pid,
        "since": heartbeat - 60,
        "heartbeat": heartbeat,
        "host": host or socket.gethostname(),
        "command": "syncd reconcile",
    }
    (state / LOCK_NAME).write_text(json.dumps(record))


def record(state: Path) -> dict:
    return json.loads((state / LOCK_NAME).read_text())


def test_acquire_writes_who_holds_it_and_release_clears_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateLock(state, command="syncd reconcile") as lock:
        assert lock.held
        data = record(state)
        assert data["pid"] == os.getpid()
        assert data["command"] == "syncd reconcile"
        assert data["host"] == socket.gethostname()
        assert abs(data["heartbeat"] - time.time()) < 5
        assert stat.S_IMODE((state / LOCK_NAME).stat().st_mode) == 0o600
    assert not lock.held
    assert (state / LOCK_NAME).read_text() == ""
    with StateLock(state):  # free again
        pass


def test_heartbeat_moves_forward(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with StateLock(state) as lock:
        first = record(state)
        time.sleep(0.01)
        lock.heartbeat()
        second = record(state)
    assert second["heartbeat"] > first["heartbeat"]
    assert second["since"] == first["since"]


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with StateLock(tmp_path), pytest.raises(LockHeld) as caught:
        StateLock(tmp_path).acquire()
    assert caught.value.pid == os.getpid()


def test_live_holder_blocks_and_is_named(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    state = tmp_path / "state"
    with pytest.raises(LockHeld) as caught:
        StateLock(state, command="syncd reconcile").acquire()
    held = caught.value
    assert held.pid == holder.pid
    assert held.command == "syncd run"
    assert held.host == socket.gethostname()
    assert re.fullmatch(
        rf"another syncd \(PID {holder.pid}, running since \d\d:\d\d:\d\d, "
        rf"command 'syncd run'\) holds {re.escape(str(state / LOCK_NAME))}",
        str(held),
    )


def test_lock_is_free_once_the_holder_dies(
    tmp_path: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    holder.kill()
    holder.wait()
    state = tmp_path / "state"
    with caplog.at_level(logging.INFO, logger="syncd.lock"), StateLock(state) as lock:
        assert lock.held and record(state)["pid"] == os.getpid()
    assert f"from PID {holder.pid} (not running)" in caplog.text


def test_stale_record_of_a_dead_pid_is_taken_over(tmp_path: Path, dead_pid: int) -> None:
    write_record(tmp_path, dead_pid, heartbeat=time.time())
    with StateLock(tmp_path):
        assert record(tmp_path)["pid"] == os.getpid()


def test_live_pid_with_fresh_heartbeat_but_no_flock_is_respected(
    tmp_path: Path, sleeper: int
) -> None:
    # What a network filesystem without shared flock looks like from the second process.
    write_record(tmp_path, sleeper, heartbeat=time.time())
    with pytest.raises(LockHeld) as caught:
        StateLock(tmp_path).acquire()
    assert caught.value.pid == sleeper
    assert "command 'syncd reconcile'" in str(caught.value)
    # The refused attempt left the record alone.
    assert record(tmp_path)["pid"] == sleeper


def test_live_pid_with_old_heartbeat_is_a_reused_pid(tmp_path: Path, sleeper: int) -> None:
    write_record(tmp_path, sleeper, heartbeat=time.time() - STALE_AFTER_SECONDS - 1)
    with StateLock(tmp_path):
        assert record(tmp_path)["pid"] == os.getpid()


def test_record_from_another_host_is_taken_over(
    tmp_path: Path, sleeper: int, caplog: pytest.LogCaptureFixture
) -> None:
    write_record(tmp_path, sleeper, heartbeat=time.time(), host="elsewhere.example")
    with caplog.at_level(logging.INFO, logger="syncd.lock"), StateLock(tmp_path):
        assert record(tmp_path)["host"] == socket.gethostname()
        assert record(tmp_path)["pid"] == os.getpid()
    assert f"from PID {sleeper} (recorded on elsewhere.example)" in caplog.text


def test_garbage_in_the_lock_file_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("{not json")
    with StateLock(tmp_path):
        assert record(tmp_path)["pid"] == os.getpid()


def test_message_shows_the_date_when_not_today(tmp_path: Path, sleeper: int) -> None:
    write_record(tmp_path, sleeper, heartbeat=time.time())
    data = record(tmp_path)
    data["since"] = time.time() - 3 * 86400
    (tmp_path / LOCK_NAME).write_text(json.dumps(data))
    with pytest.raises(LockHeld, match=r"running since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"):
        StateLock(tmp_path).acquire()


def test_ensure_state_dir_creates_private_directories(tmp_path: Path) -> None:
    path = ensure_state_dir(tmp_path / "a" / "b")
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_ensure_state_dir_tightens_loose_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state"
    path.mkdir()
    path.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="syncd.lock"):
        ensure_state_dir(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert "accessible to other users (mode 755)" in caplog.text


def test_ensure_state_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(FileExistsError):
        ensure_state_dir(tmp_path / "state")
