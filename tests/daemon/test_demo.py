"""``syncd demo``: the README's first command, briefly, as a user would run it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .harness import DaemonProcess

pytestmark = pytest.mark.timeout(90)


class DemoProcess(DaemonProcess):
    """``syncd demo --dir DIR`` with its output collected like a daemon's log."""

    def __init__(self, directory: Path) -> None:
        # A real key in the environment must not reach the demo's emulator.
        self._spawn(["demo", "--dir", str(directory)], "sk-real-key-that-must-stay-home")


def test_the_demo_syncs_a_dropped_file_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    demo = DemoProcess(demo_dir)
    try:
        demo.wait_for_line(r"Copy files into .*drop")
        demo.wait_for_line(r"ready: watching 1 folder · 2 synced", timeout=30)
        (demo_dir / "drop" / "mine.txt").write_text("dropped by the test")
        demo.wait_for_line(r"uploaded \[demo\] mine\.txt → file-")
        demo.wait_for_line(r"attached \[demo\] mine\.txt to vs_")
        search = re.search(r"^    (.+ search vs_.+)$", demo.log, re.MULTILINE)
        assert search, demo.log
        found = subprocess.run(
            [*shlex.split(search[1]), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "OPENAI_API_KEY": "sk-real-key-that-must-stay-home"},
        )
        assert found.returncode == 0, found.stderr
        assert "demo/guides/getting-started.md" in [h["path"] for h in json.loads(found.stdout)]
        (demo_dir / "drop" / "mine.txt").unlink()
        demo.wait_for_line(r"deleted remote file-.* \(\[demo\] mine\.txt was removed\)")
        demo.signal(signal.SIGINT)
        assert demo.proc.wait(20) == 0
    finally:
        demo.kill()
    assert "SIGINT: stopping" in demo.log
    assert "sk-real-key" not in demo.log

    config = tomllib.loads((demo_dir / "syncd.toml").read_text())
    assert config["api"]["base_url"].startswith("http://127.0.0.1:")
    assert config["folders"][0]["vector_stores"][0].startswith("vs_")

    # A second run picks up where the first left off: nothing to upload again.
    again = DemoProcess(demo_dir)
    try:
        again.wait_for_line(r"full pass done in .*: nothing to do", timeout=30)
        again.wait_for_line(r"ready: watching 1 folder · 2 synced")
        again.signal(signal.SIGINT)
        assert again.proc.wait(20) == 0
    finally:
        again.kill()


def test_every_command_the_banner_prints_works_as_printed(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    demo = DemoProcess(demo_dir)
    try:
        start = demo.wait_for_line(r"In another terminal, while this runs")
        demo.wait_for_line(r"ready: watching 1 folder · 2 synced", timeout=30)
        commands = []
        for line in demo.lines[start + 1 :]:
            if not line.startswith("    "):
                break
            commands.append(line.strip())
        names = [c.split(" --config ")[0].split(" syncd ")[-1] for c in commands]
        assert names[:5] == ["status", "check", "verify", "remote files", "reconcile --dry-run"]
        assert re.fullmatch(r'search vs_\S+ "getting started"', names[5]), names
        key_file = demo_dir / "api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        # As a user would type them, in the same directory, with a key of their own in the
        # environment that the demo's configuration does not use.
        env = {**os.environ, "OPENAI_API_KEY": "sk-real-key-that-must-stay-home"}
        env = {k: v for k, v in env.items() if not k.startswith("SYNCD_")}
        for command in commands:
            result = subprocess.run(
                shlex.split(command), capture_output=True, text=True, env=env, timeout=30
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
        demo.signal(signal.SIGINT)
        assert demo.proc.wait(20) == 0
    finally:
        demo.kill()
    config = tomllib.loads((demo_dir / "syncd.toml").read_text())
    assert config["api"]["api_key_file"] == "api-key"


def test_the_demo_refuses_a_config_moved_to_the_real_api(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    (demo_dir / "syncd.toml").write_text('[api]\nbase_url = "https://api.openai.com/v1"\n')
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "demo", "--dir", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not the demo's emulator" in result.stderr
    assert "syncd run --config" in result.stderr


def test_the_banner_names_the_script_it_was_started_as(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.cli.demo import follow_up_commands

    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    script = tmp_path / ".venv" / "bin" / "syncd"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no syncd there
    assert follow_up_commands(Path("demo/syncd.toml"))[0] == (
        ".venv/bin/syncd status --config demo/syncd.toml"
    )
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # the README's way
    assert follow_up_commands(Path("demo/syncd.toml"))[0] == (
        "syncd status --config demo/syncd.toml"
    )
