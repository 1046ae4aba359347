"""``syncd run`` under signals, reloads, vanishing roots and a failing service."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from pathlib import Path

import httpx2
import pytest

from syncd.api import Client
from syncd.engine.model import State

from .harness import (
    DaemonProcess,
    FolderDef,
    assert_exactly,
    attached_names,
    eventually,
    holds,
    remote_names,
    states,
    stop_with_uploads_in_flight,
    write_config,
)

pytestmark = pytest.mark.timeout(150)

BURST = 300


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopped_in_a_burst_then_restarted_converges_without_duplicates(
    how: signal.Signals, tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    state = tmp_path / "state"
    config = write_config(tmp_path / "syncd.toml", emulator.base_url, state, [FolderDef("d", drop)])
    # A service that fails 20 % of requests meanwhile: errors, and connections dropped after
    # the upload was stored — the case where a blind retry would duplicate.
    emulator.set_faults(fail_rate=0.1, drop_rate=0.1, drop_phase="after", latency_ms=5, seed=7)
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    names = [f"b{i:03}.txt" for i in range(BURST)]
    for name in names:
        (drop / name).write_text(f"content of {name}\n")
    # Well into the burst: some uploads done, most not.
    eventually(lambda: holds(daemon.count(r"uploaded \[d\] b") >= BURST // 10), interval=0.05)
    stopped_at = time.monotonic()
    daemon.signal(how)
    status = daemon.proc.wait(20)
    if how == signal.SIGTERM:
        assert status == 0, daemon.log
        assert time.monotonic() - stopped_at < 10 + 2  # within the grace period
        assert "SIGTERM: stopping" in daemon.log
    uploaded_before = len(remote_names(client))
    assert BURST // 10 <= uploaded_before < BURST, "the stop should land in the burst"
    assert sum(emulator.fault_counts().values()) > 0

    restarted = DaemonProcess(config, api_key)
    daemons.append(restarted)
    restarted.wait_for_line("ready:", timeout=90)
    emulator.clear_faults()
    eventually(lambda: assert_exactly(client, names), timeout=60, interval=1)
    assert restarted.stop() == 0
    assert states(state) == {State.SYNCED.value: BURST}


def test_requests_still_in_flight_after_the_grace_period_are_resolved_at_restart(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "syncd.toml", emulator.base_url, state, [FolderDef("d", drop)], grace=1
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    # Uploads take 3 s before the service even reads them: the grace period cuts them off.
    emulator.set_faults(latency_ms=3000, match="POST /v1/files$")
    names = [f"slow-{i}.md" for i in range(6)]
    for name in names:
        (drop / name).write_text(name)
    assert stop_with_uploads_in_flight(daemon, state) < 3
    emulator.clear_faults()

    restarted = DaemonProcess(config, api_key)
    daemons.append(restarted)
    restarted.wait_for_line("ready:", timeout=60)
    # The lock it left says why it stopped: not a "stale lock" of a syncd "not running".
    assert restarted.count(r"stopped with work in flight: its 1 s shutdown grace period ran out")
    assert not restarted.count("stale lock")
    eventually(lambda: assert_exactly(client, names))
    assert restarted.stop() == 0
    assert states(state) == {State.SYNCED.value: len(names)}


def test_sighup_adds_a_folder_and_a_bad_config_keeps_the_old_one(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (two / "waiting.md").write_text("in a folder not configured yet")
    assistant = client.create_assistant().id
    config_path = tmp_path / "syncd.toml"
    state = tmp_path / "state"
    write_config(config_path, emulator.base_url, state, [FolderDef("one", one)])
    daemon = DaemonProcess(config_path, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready: watching 1 folder")

    write_config(
        config_path,
        emulator.base_url,
        state,
        [FolderDef("one", one), FolderDef("two", two, [assistant])],
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_line("folder two added")
    eventually(lambda: assert_exactly(client, ["waiting.md"]))
    eventually(lambda: holds(attached_names(client, assistant) == {"waiting.md"}))
    (two / "later.md").write_text("watched now")
    eventually(lambda: assert_exactly(client, ["waiting.md", "later.md"]))

    config_path.write_text(config_path.read_text().replace('purpose = "assistants"', "purpose ="))
    mark = len(daemon.lines)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_line("configuration not reloaded", after=mark)
    (one / "still.md").write_text("the old configuration still runs")
    eventually(lambda: assert_exactly(client, ["waiting.md", "later.md", "still.md"]))
    assert daemon.stop() == 0


def test_a_vanished_root_pauses_the_folder_and_deletes_nothing(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    names = ["a.md", "b.md", "c.md"]
    for name in names:
        (drop / name).write_text(name)
    config = write_config(
        tmp_path / "syncd.toml", emulator.base_url, tmp_path / "state", [FolderDef("d", drop)]
    )
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready: watching 1 folder · 3 synced")
    ids = {f.filename: f.id for f in client.list_files()}

    # Unmounted: the directory goes away with everything in it.
    saved = tmp_path / "saved"
    shutil.copytree(drop, saved)
    shutil.rmtree(drop)
    daemon.wait_for_line(r"folder d paused: its root .* is missing")
    time.sleep(1.5)
    assert_exactly(client, names)

    # Mounted again: the same files, a new directory.
    shutil.copytree(saved, drop)
    daemon.wait_for_line("folder d is back: resuming")
    (drop / "new.md").write_text("after the return")
    eventually(lambda: assert_exactly(client, [*names, "new.md"]))
    assert {f.filename: f.id for f in client.list_files() if f.filename in ids} == ids
    assert daemon.stop() == 0


def test_the_notify_protocol_for_real_and_metrics(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons
) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(0.2)
    drop = tmp_path / "drop"
    drop.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    config = write_config(
        tmp_path / "syncd.toml",
        emulator.base_url,
        tmp_path / "state",
        [FolderDef("d", drop)],
        sync={"metrics_address": f"127.0.0.1:{metrics_port}"},
    )
    daemon = DaemonProcess(
        config,
        api_key,
        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "600000"},
    )
    daemons.append(daemon)
    messages: list[str] = []

    def receive_until(predicate, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, messages
            try:
                messages.append(listener.recv(4096).decode())
            except TimeoutError:
                continue

    receive_until(lambda: any("READY=1" in m for m in messages))
    (drop / "hello.md").write_text("hello")
    receive_until(lambda: any("1 synced" in m and "READY" not in m for m in messages))
    receive_until(lambda: any(m == "WATCHDOG=1" for m in messages))
    scraped = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'syncd_files{folder="d",state="synced"} 1.0' in scraped
    assert 'syncd_actions_total{result="uploaded"} 1.0' in scraped
    assert 'syncd_request_duration_seconds_count{method="POST",operation="/files"} 1.0' in scraped
    daemon.signal(signal.SIGTERM)
    receive_until(lambda: "STOPPING=1" in messages)
    assert daemon.proc.wait(20) == 0
    listener.close()

    def first(predicate) -> int:
        return next(i for i, m in enumerate(messages) if predicate(m))

    ready = first(lambda m: "READY=1" in m)
    assert "STATUS=watching 1 folder · 0 synced" in messages[ready]
    status = first(lambda m: m.startswith("STATUS=") and "1 synced" in m)
    watchdog = first(lambda m: m == "WATCHDOG=1")
    stopping = first(lambda m: m == "STOPPING=1")
    assert ready < status < stopping
    assert ready < watchdog < stopping


def test_changes_made_while_the_service_is_down_are_not_lost(
    emulator, client: Client, one_folder_daemon
) -> None:
    drop, daemon = one_folder_daemon()
    # Every listing fails until the client's attempts run out: the pass for the new file stops.
    emulator.set_faults(fail_rate=1.0, match="GET /v1/files$", max_faults=6)
    (drop / "during-outage.md").write_text("dropped while the service was down")
    daemon.wait_for_line(r"a full pass follows in 10 s", timeout=60)
    eventually(lambda: assert_exactly(client, ["during-outage.md"]), timeout=30)
    assert daemon.stop() == 0


def test_a_failed_upload_is_tried_again_when_its_backoff_is_over(
    emulator, client: Client, one_folder_daemon
) -> None:
    drop, daemon = one_folder_daemon()
    # 429 on every try of this upload until the client's attempts run out: the file is failed,
    # with a first backoff of 30 s — far sooner than the next full pass (600 s in this config).
    emulator.set_faults(
        rate_limit_rate=1.0, retry_after_ms=10, match="POST /v1/files$", max_faults=6
    )
    (drop / "unlucky.md").write_text("refused for a while")
    daemon.wait_for_line(r"upload failed: .*attempt 1 of", timeout=30)
    # The service takes it again from now on: only the backoff stands between the file and its
    # upload (had the first try left a fault unspent, a second failure's 60 s would).
    emulator.clear_faults()
    assert not remote_names(client)
    eventually(lambda: assert_exactly(client, ["unlucky.md"]), timeout=50)
    assert daemon.count(r"uploaded \[d\] unlucky.md") == 1
    assert daemon.stop() == 0
