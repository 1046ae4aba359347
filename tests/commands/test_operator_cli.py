"""The operator commands as a person runs them — subprocesses on real files — where issue #11
found them misleading: configuration errors, ``check``'s side effects, read-only state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
