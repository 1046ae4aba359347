"""``syncd reconcile`` as a user runs it: a subprocess, a real configuration file, the emulator
over HTTP; exit statuses, output, and what ends up on the service."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

import pytest

from syncd.service.lock import StateLock

from .conftest import Workspace, syncd_command

pytestmark = pytest.mark.timeout(60)


def reconcile(
    ws: Workspace, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*syncd_command(), "reconcile", "--config", str(ws.config_path), *args],
        capture_output=True,
        text=True,
        env=env or ws.env(),
        timeout=50,
    )


def test_sync_then_nothing_to_do(ws: Workspace) -> None:
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "guides").mkdir()
    (docs / "guides" / "setup.md").write_text("x" * 12_000)
    (docs / "notes.txt").write_text("notes")

    first = reconcile(ws)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "uploaded 2, replaced 0, deleted 0, attached 2, detached 0, unchanged 0, "
        "rejected 0, failed 0, adopted 0, unresolved 0"
    )
    file_id = ws.entry("docs", "guides/setup.md").file_id
    assert f"uploaded docs/guides/setup.md → {file_id} (12 KB, " in first.stderr
    assert f"attached docs/guides/setup.md to {asst}" in first.stderr

    second = reconcile(ws)
    assert second.returncode == 0
    assert "unchanged 2" in second.stdout and "uploaded 0" in second.stdout
    assert second.stderr == ""  # nothing happened, so nothing is logged


def test_json_report_and_exit_1_for_a_rejected_file(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("fine")
    (docs / "tool.exe").write_bytes(b"MZ\x90\x00")

    result = reconcile(ws, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("uploaded", "rejected", "failed", "exit_status")} == {
        "uploaded": 1,
        "rejected": 1,
        "failed": 0,
        "exit_status": 1,
    }
    assert {a["what"] for a in report["actions"]} == {"uploaded", "rejected"}
    rejected = next(a for a in report["actions"] if a["what"] == "rejected")
    assert rejected["path"] == "tool.exe" and ".exe" in rejected["detail"]
    assert report["errors"] == []
    assert "rejected docs/tool.exe: " in result.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    result = reconcile(ws, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "would upload docs/a.md"
    assert result.stdout.splitlines()[-1].startswith("dry run, would have: uploaded 1,")
    assert not ws.state_dir.exists()
    assert ws.remote() == {}

    # After a real pass, a dry run reads the manifest and still writes nothing.
    assert reconcile(ws).returncode == 0
    (docs / "a.md").unlink()
    (docs / "b.md").write_text("b")
    manifest = ws.state_dir / "manifest.sqlite"
    before = manifest.read_bytes()
    planned = reconcile(ws, "--dry-run", "--json")
    report = json.loads(planned.stdout)
    assert [a["action"] for a in report["actions"]] == ["upload", "retire", "cleanup"]
    assert report["dry_run"] is True
    [old_id] = ws.remote()
    said = reconcile(ws, "--dry-run").stdout.splitlines()
    assert said[:2] == [
        "would upload docs/b.md",
        f"would delete remote {old_id} (docs/a.md was removed)",
    ]
    assert manifest.read_bytes() == before
    assert len(ws.remote()) == 1


def test_usage_and_configuration_errors_exit_2(ws: Workspace) -> None:
    ws.add_folder("docs")
    unknown = reconcile(ws, "--folder", "nope")
    assert unknown.returncode == 2
    assert "no folder named nope" in unknown.stderr

    ws.config_path.write_text("[[folders]]\nname = 'x'\n")
    broken = reconcile(ws)
    assert broken.returncode == 2
    assert str(ws.config_path) in broken.stderr


def test_a_refused_key_exits_3_with_one_message(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    env = {**ws.env(), "OPENAI_API_KEY": "sk-wrong-0123456789"}
    result = reconcile(ws, env=env)
    assert result.returncode == 3
    assert result.stderr.count("refused the API key") == 1
    assert "sk-wrong-0123456789" not in result.stderr + result.stdout
    assert ws.remote() == {}


def test_the_delete_guard_exits_3_until_forced(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for i in range(3):
        (docs / f"{i}.md").write_text(str(i))
    assert reconcile(ws).returncode == 0
    for i in range(3):
        (docs / f"{i}.md").unlink()

    guarded = reconcile(ws)
    assert guarded.returncode == 3
    assert "would remove 3 of 3 files from docs" in guarded.stderr
    assert "--force" in guarded.stderr
    assert len(ws.remote()) == 3

    forced = reconcile(ws, "--force")
    assert forced.returncode == 0
    assert "deleted 3" in forced.stdout
    assert ws.remote() == {}


def test_the_lock_held_by_another_syncd_exits_3(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    with StateLock(ws.state_dir, command="syncd run"):
        result = reconcile(ws)
    assert result.returncode == 3
    assert "another syncd" in result.stderr and "syncd run" in result.stderr
    assert ws.remote() == {}


def test_two_concurrent_runs_one_works_one_stops(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for i in range(3):
        (docs / f"{i}.md").write_text(str(i))
    # Slow answers keep the first pass (and its lock) busy while the second starts.
    ws.emulator.set_faults(latency_ms=400)
    command = [*syncd_command(), "reconcile", "--config", str(ws.config_path)]
    runs = [
        subprocess.Popen(
            command, env=ws.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = []
    for run in runs:
        _, stderr = run.communicate(timeout=50)
        results.append((run.returncode, stderr))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    assert any("another syncd" in err for code, err in results if code == 3)
    ws.emulator.clear_faults()
    assert sorted(f.filename for f in ws.remote().values()) == ["0.md", "1.md", "2.md"]


def read_all(fd: int) -> bytes:
    """Everything written to a pty until its last writer closes it."""
    out = b""
    while select.select([fd], [], [], 30)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_a_progress_bar_on_a_terminal_plain_lines_otherwise(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    for i in range(3):
        (docs / f"{i}.md").write_text(str(i))
    master, slave = pty.openpty()
    command = [*syncd_command(), "reconcile", "--config", str(ws.config_path)]
    with subprocess.Popen(command, env=ws.env(), stdout=subprocess.PIPE, stderr=slave) as run:
        os.close(slave)
        terminal = read_all(master).decode()
        os.close(master)
        assert run.wait(timeout=50) == 0
    assert "syncing" in terminal and "3/3" in terminal
    assert "uploaded docs/0.md" in terminal  # log lines go above the bar

    (docs / "3.md").write_text("3")
    plain = reconcile(ws)
    assert plain.returncode == 0
    assert "\x1b[" not in plain.stderr and "syncing" not in plain.stderr
    assert "uploaded docs/3.md" in plain.stderr
