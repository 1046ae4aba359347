"""The checks of ./scripts/wheel-check once the wheel is installed in a fresh virtualenv.

What the sdist and wheel hold, then the installed ``syncd`` run as a person would run it, from a
scratch directory with no checkout on the path: ``--version``, the emulator (started on a free
loopback port, sent one request, stopped) and ``check`` and ``status`` against that emulator.

Only the standard library is used: this runs under the python3 that made the virtualenv, so the
only syncd it can reach is the installed wheel's, through its ``syncd`` script.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["check_sdist", "check_wheel", "main", "run_installed"]

#: The key sent to the emulator, which accepts any non-empty one.
FAKE_KEY = "sk-wheel-check"
#: Long enough for a cold start on a busy 2-core CI machine, short enough not to hang it.
TIMEOUT = 60


class CheckFailed(Exception):
    """A check failed; the message says which and what was seen."""


def check_wheel(wheel: Path, version: str) -> None:
    """The wheel holds the package, its typing marker and licence, and nothing else."""
    dist_info = f"syncd-{version}.dist-info/"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(dist_info + "METADATA").decode()
    stray = [n for n in names if not n.startswith(("syncd/", dist_info))]
    if stray:
        raise CheckFailed(f"{wheel.name} holds files outside the package: {stray[:5]}")
    for needed in ("syncd/__init__.py", "syncd/py.typed", dist_info + "licenses/LICENSE"):
        if needed not in names:
            raise CheckFailed(f"{wheel.name} lacks {needed}")
    if f"\nVersion: {version}\n" not in metadata:
        raise CheckFailed(f"{wheel.name}'s METADATA does not say Version: {version}")


def check_sdist(sdist: Path, version: str) -> None:
    """The sdist holds what building the wheel and reading about it need, and no tests."""
    base = f"syncd-{version}/"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for needed in ("README.md", "LICENSE", "pyproject.toml", "syncd/__init__.py", "syncd/py.typed"):
        if base + needed not in names:
            raise CheckFailed(f"{sdist.name} lacks {needed}")
    leaked = sorted(n for n in names if n.startswith((base + "tests/", base + "bench/")))
    if leaked:
        raise CheckFailed(f"{sdist.name} holds tests or benchmarks: {leaked[:5]}")


def _environment() -> dict[str, str]:
    """This process's environment without anything that could point syncd elsewhere: no
    PYTHONPATH (the checkout), no SYNCD_* or OPENAI_* settings from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("SYNCD_", "OPENAI_"))
    }
    env["OPENAI_API_KEY"] = FAKE_KEY
    return env


def _syncd(syncd: Path, work: Path, *args: str) -> str:
    """Run the installed ``syncd`` with ``args``; its stdout, or :class:`CheckFailed`."""
    done = subprocess.run(
        [str(syncd), *args],
        cwd=work,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise CheckFailed(
            f"syncd {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first line ``process`` prints, waiting at most :data:`TIMEOUT` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(TIMEOUT):
            raise CheckFailed(f"syncd emulator printed nothing in {TIMEOUT} s")
    return process.stdout.readline().strip()


def _create_assistant(base_url: str) -> str:
    """The one request to the emulator: create an assistant, return its id."""
    # The URL is the emulator's own loopback address, printed by it a moment ago.
    request = urllib.request.Request(  # noqa: S310
        f"{base_url}/assistants",
        data=json.dumps({"model": "gpt-4o", "name": "wheel-check"}).encode(),
        headers={
            "Authorization": f"Bearer {FAKE_KEY}",
            "OpenAI-Beta": "assistants=v1",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        return str(json.load(response)["id"])


def _write_config(work: Path, base_url: str, assistant: str) -> Path:
    """A one-folder configuration pointing at the emulator, as a person would write it."""
    (work / "docs").mkdir(exist_ok=True)
    config = work / "syncd.toml"
    config.write_text(
        f'[api]\nbase_url = "{base_url}"\n\n[sync]\nstate_dir = "./state"\n\n'
        f'[[folders]]\nname = "docs"\npath = "./docs"\npurpose = "assistants"\n'
        f'assistants = ["{assistant}"]\n',
        encoding="utf-8",
    )
    return config


def run_installed(venv: Path, work: Path, version: str) -> None:
    """``syncd --version``, then the emulator with ``check`` and ``status`` against it."""
    syncd = venv / "bin" / "syncd"
    shown = _syncd(syncd, work, "--version").strip()
    if shown != f"syncd, version {version}":
        raise CheckFailed(f"syncd --version printed {shown!r}, expected version {version}")

    log = work / "emulator.log"
    with log.open("w") as stderr:
        emulator = subprocess.Popen(
            [str(syncd), "emulator", "--port", "0"],
            cwd=work,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        line = _first_line(emulator)
        prefix = "syncd emulator listening on "
        if not line.startswith(prefix):
            raise CheckFailed(f"syncd emulator printed {line!r}")
        base_url = line.removeprefix(prefix)
        assistant = _create_assistant(base_url)
        config = str(_write_config(work, base_url, assistant))

        report = json.loads(_syncd(syncd, work, "check", "--config", config, "--json"))
        passed = {c["name"] for c in report["checks"] if c["ok"]}
        if not report["ok"] or f"assistant {assistant}" not in passed:
            raise CheckFailed(f"syncd check did not pass everything: {report}")
        status = json.loads(_syncd(syncd, work, "status", "--config", config, "--json"))
        if status.get("version") != version:
            raise CheckFailed(f"syncd status --json says version {status.get('version')!r}")
    except CheckFailed as e:
        raise CheckFailed(f"{e}\nemulator log:\n{log.read_text()}") from None
    finally:
        emulator.send_signal(signal.SIGTERM)
        code = emulator.wait(TIMEOUT)
    if code != 0:
        raise CheckFailed(f"syncd emulator exited {code} on SIGTERM:\n{log.read_text()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sdist", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True, help="where the wheel is installed")
    parser.add_argument("--work", type=Path, required=True, help="a scratch directory")
    args = parser.parse_args(argv)
    # syncd-0.1.0-py3-none-any.whl: the version the build took from syncd.__version__.
    version = args.wheel.name.split("-")[1]
    try:
        check_wheel(args.wheel, version)
        check_sdist(args.sdist, version)
        run_installed(args.venv.resolve(), args.work.resolve(), version)
    except CheckFailed as e:
        print(f"wheel-check: {e}", file=sys.stderr)
        return 1
    print(
        f"wheel-check: {args.wheel.name} works on its own "
        "(--version, emulator, check and status from a fresh virtualenv)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
