"""scripts/wheel_smoke.py's archive checks fail on what a broken build would produce (CI runs
the whole of ./scripts/wheel-check on the real wheel and sdist)."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_smoke() -> ModuleType:
    """scripts/ is not a package: load the script as a module."""
    spec = importlib.util.spec_from_file_location(
        "wheel_smoke", ROOT / "scripts" / "wheel_smoke.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("wheel_smoke", module)
    spec.loader.exec_module(module)
    return module


smoke = _load_smoke()

GOOD_WHEEL = {
    "syncd/__init__.py": "",
    "syncd/py.typed": "",
    "syncd-1.2.3.dist-info/licenses/LICENSE": "MIT",
    "syncd-1.2.3.dist-info/METADATA": "Metadata-Version: 2.4\nName: syncd\nVersion: 1.2.3\n",
}
GOOD_SDIST = {
    name: ""
    for name in ("README.md", "LICENSE", "pyproject.toml", "syncd/__init__.py", "syncd/py.typed")
}


def wheel(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "syncd-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def sdist(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "syncd-1.2.3.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"syncd-1.2.3/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_complete_wheel_and_sdist_pass(tmp_path: Path) -> None:
    smoke.check_wheel(wheel(tmp_path, GOOD_WHEEL), "1.2.3")
    smoke.check_sdist(sdist(tmp_path, GOOD_SDIST), "1.2.3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tests/test_x.py": ""}, "holds files outside the package: ['tests/test_x.py']"),
        ({"syncd/py.typed": None}, "lacks syncd/py.typed"),
        ({"syncd-1.2.3.dist-info/licenses/LICENSE": None}, "lacks syncd-1.2.3.dist-info/licenses"),
        ({"syncd-1.2.3.dist-info/METADATA": "Version: 1.2.4\n"}, "does not say Version: 1.2.3"),
    ],
)
def test_a_broken_wheel_is_named(
    tmp_path: Path, change: dict[str, str | None], message: str
) -> None:
    files = {k: v for k, v in (GOOD_WHEEL | change).items() if v is not None}
    with pytest.raises(smoke.CheckFailed, match=message.replace("[", r"\[")):
        smoke.check_wheel(wheel(tmp_path, files), "1.2.3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"README.md": None}, "lacks README.md"),
        ({"LICENSE": None}, "lacks LICENSE"),
        ({"tests/conftest.py": ""}, "holds tests or benchmarks"),
        ({"bench/daemon.py": ""}, "holds tests or benchmarks"),
    ],
)
def test_a_broken_sdist_is_named(
    tmp_path: Path, change: dict[str, str | None], message: str
) -> None:
    files = {k: v for k, v in (GOOD_SDIST | change).items() if v is not None}
    with pytest.raises(smoke.CheckFailed, match=message):
        smoke.check_sdist(sdist(tmp_path, files), "1.2.3")
