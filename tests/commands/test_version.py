"""The version comes from one place, ``syncd.__version__``, by way of the installed package's
metadata (setuptools reads it there when building); ``syncd --version``, ``syncd status`` and
the User-Agent every request carries all say that same version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import syncd

from ..api.conftest import RecordingServer
from .conftest import Workspace

#: What the installed distribution says: the version pip, pipx and bug reports see.
VERSION = metadata.version("syncd")


def _syncd(*args: str, cwd: Path, key: str = "sk-version-test") -> str:
    """``python -m syncd ARGS`` as a subprocess, with no SYNCD_*/OPENAI_* settings but the key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "OPENAI_"))}
    done = subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=cwd,
        env=env | {"OPENAI_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_the_package_metadata_takes_the_version_from_syncd() -> None:
    # Fails when setuptools' dynamic version stops pointing at syncd.__version__, or when the
    # environment was installed from an older source (scripts/_venv.sh reinstalls on a change).
    assert syncd.__version__ == VERSION


def test_version_option(tmp_path: Path) -> None:
    assert _syncd("--version", cwd=tmp_path) == f"syncd, version {VERSION}\n"


def test_status_shows_the_version(workspace: Workspace) -> None:
    result = workspace.run("status")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"syncd {VERSION}"
    assert workspace.json("status")["version"] == VERSION


def test_user_agent_names_syncd_and_httpx2(tmp_path: Path) -> None:
    server = RecordingServer()
    try:
        (tmp_path / "train").mkdir()
        config = tmp_path / "syncd.toml"
        config.write_text(
            f'[api]\nbase_url = "{server.base_url}"\n[sync]\nstate_dir = "./state"\n'
            '[[folders]]\nname = "train"\npath = "./train"\npurpose = "fine-tune"\n',
            encoding="utf-8",
        )
        shown = _syncd("remote", "show", "file-x", "--config", str(config), "--json", cwd=tmp_path)
    finally:
        server.close()
    assert json.loads(shown)["id"] == "file-x"
    [(method, path, headers)] = server.requests
    assert (method, path) == ("GET", "/v1/files/file-x")
    assert headers["User-Agent"] == f"syncd/{VERSION} httpx2/{metadata.version('httpx2')}"
