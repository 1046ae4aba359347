"""What a command loads before it does anything: a one-shot ``syncd reconcile`` runs on a timer
or from cron, and its start-up is part of every pass (``bench/reconcile.py``). Each command's
module is imported only when that command runs (``syncd.cli.LazyGroup``), and what the import
makes is then frozen out of the garbage collector's walks.

Each check runs ``python -m syncd`` as a subprocess, so that it sees a fresh interpreter's
``sys.modules`` rather than this test process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Workspace

#: Runs ``python -m syncd ARGS`` and, as the process exits, writes the modules it loaded and
#: how many objects were frozen to the file named by ``SYNCD_TEST_PROBE``.
PROBE = """\
import atexit, gc, json, os, runpy, sys

def report():
    with open(os.environ["SYNCD_TEST_PROBE"], "w") as out:
        json.dump({"modules": sorted(sys.modules), "frozen": gc.get_freeze_count()}, out)

atexit.register(report)
runpy.run_module("syncd", run_name="__main__", alter_sys=True)
"""

#: Only other commands use these: the emulator's web stack, the daemon's watchers and metrics,
#: and rich, which draws a progress bar only on a terminal; and tenacity, which only a call
#: that failed needs.
NOT_FOR_RECONCILE = [
    "tenacity",
    "syncd.emulator",
    "starlette",
    "uvicorn",
    "python_multipart",
    "syncd.service.daemon",
    "syncd.service.watch",
    "watchdog",
    "prometheus_client",
    "rich",
]

#: What ``syncd --version`` has no use for: any command's module and what they import.
NOT_FOR_VERSION = [
    "syncd.api",
    "syncd.config",
    "syncd.engine",
    "httpx2",
    "pydantic",
    "sqlite_utils",
]


def _probe(tmp_path: Path, *args: str, key: str = "sk-startup-test") -> tuple[str, dict[str, Any]]:
    """``python -m syncd ARGS`` (stderr not a terminal); its stdout and what the probe saw."""
    report = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "OPENAI_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env | {"OPENAI_API_KEY": key, "SYNCD_TEST_PROBE": str(report)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(report.read_text(encoding="utf-8"))


def _loaded(modules: list[str], packages: list[str]) -> list[str]:
    """Those of ``packages`` that were loaded, themselves or any of their submodules."""
    return [p for p in packages if any(m == p or m.startswith(f"{p}.") for m in modules)]


def test_a_reconcile_pass_loads_no_other_commands_machinery(workspace: Workspace) -> None:
    (workspace.docs / "a.md").write_text("alpha\n", encoding="utf-8")
    stdout, seen = _probe(
        workspace.root, "reconcile", "--config", str(workspace.config), key=workspace.api_key
    )
    assert stdout.startswith("uploaded 1,"), stdout
    assert _loaded(seen["modules"], NOT_FOR_RECONCILE) == []
    others = [f"syncd.cli.{name}" for name in ("emulator", "run", "demo", "status", "verify")]
    assert _loaded(seen["modules"], others) == []


def test_a_command_runs_with_its_imports_frozen(workspace: Workspace) -> None:
    _, seen = _probe(
        workspace.root, "reconcile", "--config", str(workspace.config), key=workspace.api_key
    )
    # The API models, the configuration and the engine alone are tens of thousands of objects.
    assert seen["frozen"] > 10_000


def test_version_loads_no_command(tmp_path: Path) -> None:
    stdout, seen = _probe(tmp_path, "--version")
    assert stdout.startswith("syncd, version ")
    assert _loaded(seen["modules"], NOT_FOR_VERSION) == []
    assert seen["frozen"] == 0


def test_a_pass_over_a_current_manifest_loads_no_migration_machinery(workspace: Workspace) -> None:
    """sqlite-utils builds the tables of a migration; reading and writing rows needs none of
    it (importing it cost ~50 ms of each command's start)."""
    (workspace.docs / "a.md").write_text("alpha\n", encoding="utf-8")
    command = ("reconcile", "--config", str(workspace.config))
    _, first = _probe(workspace.root, *command, key=workspace.api_key)
    assert "sqlite_utils" in first["modules"]  # the manifest was made: migrations ran
    stdout, seen = _probe(workspace.root, *command, key=workspace.api_key)
    assert stdout.startswith("uploaded 0,"), stdout
    assert _loaded(seen["modules"], ["sqlite_utils"]) == []
