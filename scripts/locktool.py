"""Make and check the dependency locks in requirements/ (run through ./scripts/lock).

``requirements/lock.txt`` pins every package a development checkout installs — the runtime
dependencies, the ``test`` and ``dev`` extras and the build backend — to exact versions with
PyPI's sha256 hashes, for any platform and Python 3.11+. ``requirements/runtime.txt`` is its
subset that the package alone needs (what ``scripts/wheel-check`` installs beside the wheel).

Each lock's header records a digest of its inputs: the dependency lists of pyproject.toml and
the compile command below. ``check`` recomputes that digest from pyproject.toml, which needs no
network and no third-party package, so CI can tell in milliseconds whether someone changed a
dependency without refreshing the locks.

Only the standard library is used: this runs under whatever python3 makes the virtualenvs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

__all__ = ["LOCKS", "check", "compile_locks", "inputs_digest", "main"]

ROOT = Path(__file__).resolve().parent.parent
DIGEST_PREFIX = "# inputs-sha256: "
INDEX_URL = "https://pypi.org/simple"

#: The lock files, by the extras each covers.
LOCKS = {"lock.txt": ("dev",), "runtime.txt": ()}

#: Options for every ``uv pip compile``. The locks are made from PyPI alone, whatever pip or uv
#: configuration the machine has (``--no-config``; UV_*/PIP_* variables are dropped), so that
#: every hash in them is one PyPI serves. ``--universal`` resolves for every platform and every
#: Python the project supports, not only this machine's.
UV_OPTIONS = (
    "--quiet",
    "--no-config",
    "--universal",
    "--python-version=3.11",
    "--generate-hashes",
    f"--index-url={INDEX_URL}",
    "--custom-compile-command=./scripts/lock",
)


def lock_inputs(pyproject: Path) -> dict[str, object]:
    """What the locks are made from: pyproject.toml's dependency lists (parsed, so comments
    and formatting do not count) and the compile options."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    return {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-system": data.get("build-system", {}).get("requires", []),
        "uv-options": list(UV_OPTIONS),
        "locks": {name: list(extras) for name, extras in LOCKS.items()},
    }


def inputs_digest(pyproject: Path) -> str:
    """sha256 of :func:`lock_inputs`, in canonical JSON."""
    canonical = json.dumps(lock_inputs(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    """The digest a lock's header records, or ``None`` when it has none."""
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).split()[0]
        if not line.startswith("#"):
            return None
    return None


def check(root: Path) -> list[str]:
    """One line per lock that is missing or was made from other inputs than pyproject.toml's."""
    want = inputs_digest(root / "pyproject.toml")
    problems = []
    for name in LOCKS:
        lock = root / "requirements" / name
        if not lock.is_file():
            problems.append(f"requirements/{name} is missing")
        elif recorded_digest(lock) != want:
            problems.append(
                f"requirements/{name} was not made from pyproject.toml's current dependencies"
            )
    return problems


def _compile(uv: str, root: Path, args: list[str], stdin: str) -> str:
    """Run ``uv pip compile`` in ``root`` and return the lock it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    if "UV_CACHE_DIR" in os.environ:  # where the cache lives is not an input; keep it
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    done = subprocess.run(
        [uv, "pip", "compile", *UV_OPTIONS, *args],
        cwd=root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"uv pip compile failed (exit {done.returncode})")
    return done.stdout


def _with_digest(lock: str, digest: str) -> str:
    """``lock`` with the digest line added at the end of uv's header comment."""
    lines = lock.splitlines(keepends=True)
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    note = f"{DIGEST_PREFIX}{digest}  (./scripts/lock --check compares it with pyproject.toml)\n"
    return "".join([*lines[:header], note, *lines[header:]])


def compile_locks(uv: str, root: Path) -> None:
    """(Re)write every lock from pyproject.toml. The full lock comes first; the runtime lock
    is resolved under it as a constraint, so it is an exact subset of the same versions."""
    pyproject = root / "pyproject.toml"
    digest = inputs_digest(pyproject)
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    # The build backend is locked too: _venv.sh and wheel-check build without isolation, so
    # what builds syncd is a tested version, not the newest setuptools of the day. uv reads
    # these requirements from stdin, which keeps temporary paths out of the lock's comments.
    build_requires = "".join(f"{r}\n" for r in data["build-system"]["requires"])
    out = root / "requirements"
    out.mkdir(exist_ok=True)
    for name, extras in LOCKS.items():
        if extras:
            args = ["pyproject.toml", "-", *(f"--extra={e}" for e in extras)]
            text = _compile(uv, root, args, build_requires)
        else:
            args = ["pyproject.toml", f"--constraint=requirements/{next(iter(LOCKS))}"]
            text = _compile(uv, root, args, "")
        (out / name).write_text(_with_digest(text, digest), encoding="utf-8")
        print(f"wrote requirements/{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lock", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("compile", help="rewrite the locks from pyproject.toml (needs PyPI)")
    make.add_argument("--uv", required=True, help="the uv executable to compile with")
    sub.add_parser("check", help="exit 1 when a lock is out of step with pyproject.toml")
    args = parser.parse_args(argv)
    if args.command == "compile":
        compile_locks(args.uv, args.root)
        return 0
    problems = check(args.root)
    for problem in problems:
        print(f"{problem}: run ./scripts/lock", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
