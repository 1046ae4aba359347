"""The operator commands as a person runs them — subprocesses on real files — where issue #11
found them misleading: configuration errors, ``check``'s side effects, read-only state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry, State

pytestmark = pytest.mark.timeout(60)


def syncd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
    )


def test_every_configuration_problem_at_once_with_bounds_and_reasons(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(
        "[api]\n"
        'base_url = "http://127.0.0.1:9/v1"\n'
        "timeout_seconds = nan\n"
        "[sync]\n"
        'state_dir = "state"\n'
        "debounce_seconds = 1e309\n"  # infinite: the daemon would never upload
        "rescan_interval_seconds = 1e12\n"
        "shutdown_grace_seconds = true\n"
        "concurrency = 4.5\n"
        '[[folders]]\nname = "a"\npath = "a"\npurpose = "assistants"\n'
        '[[folders]]\nname = "a"\npath = "a"\npurpose = "assistants"\n'  # same name, same dir
        '[[folders]]\nname = "b"\npath = "b"\npurpose = "finetune"\n'
    )

    result = syncd("check", "--config", str(config))

    assert result.returncode == 2
    lines = [line.removeprefix("FAIL  config  ") for line in result.stdout.splitlines()]
    expected = [
        "api.timeout_seconds: must be between 1 and 3600 (how long to wait for the service's "
        "answer before retrying), got nan",
        "sync.debounce_seconds: must be between 0.05 and 3600 (how long a changed file must "
        "stay quiet before it is uploaded), got inf",
        "sync.rescan_interval_seconds: must be between 10 and 604800 (the time between full "
        "passes: 10 s to a week), got 1e+12",
        "sync.shutdown_grace_seconds: must be a number, got true",
        "sync.concurrency: must be a whole number, got 4.5",
        'folders[2].purpose: must be "assistants" or "fine-tune", got "finetune"',
        'folders[1].name: "a" is already used by folders[0]',
        "folders[1].path: ",  # the same directory as folders[0].path
    ]
    for problem in expected:
        assert any(f"{config}: {problem}" in line for line in lines), (problem, result.stdout)
    assert "Traceback" not in result.stderr


def test_check_only_tests_that_the_state_directory_could_be_created(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[api]\nbase_url = "http://127.0.0.1:9/v1"\n[sync]\nstate_dir = "deep/state"\n'
        '[[folders]]\nname = "docs"\npath = "docs"\npurpose = "assistants"\n'
    )

    result = syncd("check", "--config", str(config), env={"PATH": "/usr/bin:/bin"})

    assert result.returncode == 2  # no API key in this environment
    line = next(line for line in result.stdout.splitlines() if "state dir" in line)
    assert line.split() == ["ok", "state", "dir", str(tmp_path / "deep" / "state"), "does", "not",
                            "exist", "yet;", "the", "first", "pass", "creates", "it"]  # fmt: skip
    assert (
        "no API key: set api.api_key_file in the configuration, or the OPENAI_API_KEY "
        "environment variable"
    ) in result.stdout
    assert not (tmp_path / "deep").exists()


def _as_another_user() -> list[str]:
    """A prefix that runs a command where permissions apply: root ignores a read-only mode, so
    as root the command runs as nobody."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_status_reads_a_manifest_in_a_read_only_state_directory() -> None:
    root = Path(tempfile.mkdtemp(prefix="syncd-readonly-"))
    try:
        (root / "docs").mkdir()
        state = root / "state"
        with ManifestDB.open(state) as db:
            db.put_entry(Entry("docs", "a.md", 1, 1, 1, "0" * 64, State.SYNCED, "file-1"))
            db.put_entry(
                Entry("docs", "b.md", 1, 1, 2, "1" * 64, State.REJECTED, last_error="file is empty")
            )
        config = root / "syncd.toml"
        config.write_text(
            '[api]\nbase_url = "http://127.0.0.1:9/v1"\n[sync]\nstate_dir = "state"\n'
            '[[folders]]\nname = "docs"\npath = "docs"\npurpose = "assistants"\n'
        )
        for path in (root, root / "docs", state):
            path.chmod(0o555)
        for path in (config, state / "manifest.sqlite"):
            path.chmod(0o444)

        result = subprocess.run(
            [*_as_another_user(), sys.executable, "-m", "syncd", "status", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )

        assert result.returncode == 0, result.stderr
        assert "1 synced, 1 rejected" in result.stdout
        assert "file is empty" in result.stdout
        assert sorted(p.name for p in state.iterdir()) == ["manifest.sqlite"]
    finally:
        for path in (root, root / "docs", root / "state"):
            path.chmod(0o700)
        shutil.rmtree(root)
