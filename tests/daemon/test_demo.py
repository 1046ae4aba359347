"""``syncd demo``: the README's first command, briefly, as a user would run it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
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
        demo.wait_for_line(r"uploaded demo/mine\.txt → file-")
        demo.wait_for_line(r"attached demo/mine\.txt to vs_")
        search = re.search(
            r"Find what you dropped: (OPENAI_API_KEY=\S+) (syncd search .*)", demo.log
        )
        assert search, demo.log
        key = search[1].split("=", 1)[1]
        argv = search[2].split()[2:]  # after "syncd search"
        found = subprocess.run(
            [sys.executable, "-m", "syncd", "search", *shlex.split(" ".join(argv)), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
            env={**os.environ, "OPENAI_API_KEY": key},
        )
        assert found.returncode == 0, found.stderr
        assert "demo/guides/getting-started.md" in [h["path"] for h in json.loads(found.stdout)]
        (demo_dir / "drop" / "mine.txt").unlink()
        demo.wait_for_line(r"deleted remote file-.* \(demo/mine\.txt was removed\)")
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
