"""What syncd depends on: the HTTP client library it imports, and locks in step with pyproject."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Replaced by their maintained continuations, httpx2 and httpcore2 (see pyproject.toml).
RETIRED = {"httpx", "httpcore"}


def retired_imports(source: str) -> list[str]:
    """Each module ``source`` imports whose top-level package is in :data:`RETIRED`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in RETIRED]
    return found


def test_retired_imports_are_recognised() -> None:
    source = "import httpx\nimport httpcore._models\nfrom httpx import Client\nimport os, httpx\n"
    assert retired_imports(source) == ["httpx", "httpcore._models", "httpx", "httpx"]
    assert retired_imports("import httpx2\nfrom httpcore2 import x\nfrom . import httpx\n") == []


def test_no_module_imports_httpx_or_httpcore() -> None:
    sources = [p for d in ("syncd", "tests", "bench") for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(sources) > 50  # the walk found the code
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in sources
        if (found := retired_imports(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def _lock_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "locktool.py"), "--root", str(root), "check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the lock check reads: pyproject.toml and requirements/."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_the_locks_are_in_step_with_pyproject() -> None:
    done = _lock_check(ROOT)
    assert done.returncode == 0, done.stderr


def test_a_comment_does_not_put_the_locks_out_of_step(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a note\n")
    assert _lock_check(checkout).returncode == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\ndependencies = [\n", '\ndependencies = [\n    "six",\n'),  # a runtime dependency
        ("\ntest = [\n", '\ntest = [\n    "six",\n'),  # a test dependency
        ("\nrequires = [", '\nrequires = ["wheel", '),  # the build backend's
    ],
)
def test_a_dependency_change_without_a_new_lock_is_caught(
    checkout: Path, old: str, new: str
) -> None:
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text()
    assert text.count(old) == 1
    pyproject.write_text(text.replace(old, new))
    done = _lock_check(checkout)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"requirements/{name} was not made from pyproject.toml's current dependencies: "
        "run ./scripts/lock"
        for name in ("lock.txt", "runtime.txt")
    ]


def test_a_missing_lock_is_caught(checkout: Path) -> None:
    (checkout / "requirements" / "runtime.txt").unlink()
    done = _lock_check(checkout)
    assert done.returncode == 1
    assert done.stderr == "requirements/runtime.txt is missing: run ./scripts/lock\n"


def test_the_install_step_refuses_a_lock_out_of_step(checkout: Path) -> None:
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("\ndependencies = [\n", '\ndependencies = [\n    "six",\n', 1)
    )
    done = subprocess.run(
        ["bash", "-c", "source scripts/_venv.sh"],
        cwd=checkout,
        env={"PATH": os.environ["PATH"], "PYTHON": sys.executable, "VENV": "venv"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "run ./scripts/lock" in done.stderr
    assert not (checkout / "venv").exists()  # refused before installing anything
