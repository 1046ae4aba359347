"""``syncd demo``: the daemon on a demo drop folder, against the built-in emulator.

Everything lives under one directory (``./demo`` by default)::

    demo/syncd.toml   the configuration (written on the first run, yours to edit after)
    demo/api-key      the emulator's key (mode 0600), named by ``api_key_file``
    demo/drop/        the drop folder: copy files in, edit them, remove them
    demo/state/       syncd's manifest and lock
    demo/emulator/    the emulator's files and vector store, so a second run carries on

The emulator runs in this process on a loopback port and accepts only a fixed demo key, which
the configuration names through ``api_key_file``: whatever ``OPENAI_API_KEY`` holds never reaches
it, and every other command (``status``, ``check``, ``verify``, ``remote``, ``reconcile``) works
against the running demo with ``--config demo/syncd.toml``.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import click

from syncd.api import Client, NotFoundError, is_loopback
from syncd.cli.output import fail
from syncd.emulator import EmulatorServer
from syncd.engine.report import ExitStatus
from syncd.service.daemon import Daemon
from syncd.service.logs import setup_logging

__all__ = [
    "CONFIG_TEMPLATE",
    "DEMO_KEY",
    "KEY_FILE",
    "SAMPLES",
    "demo_command",
    "follow_up_commands",
    "search_command",
]

DEMO_KEY = "sk-demo-emulator-only-0000000000"
#: The file, next to the configuration, that holds the emulator's key.
KEY_FILE = "api-key"

CONFIG_TEMPLATE = """\
# Written by `syncd demo`: the daemon on ./drop, against the emulator that `syncd demo` starts.
#
# To use the real API with this folder: put your key in a file of its own (chmod 600) and
# point api_key_file at it (or remove api_key_file and set OPENAI_API_KEY), set base_url
# to "https://api.openai.com/v1", vector_stores to your own store ids and state_dir to a new
# directory, then run `syncd run --config {config}` (`syncd demo` itself only ever talks to
# its emulator).

[api]
base_url = "{base_url}"
# The demo emulator's key, so that `syncd status|check|verify|remote|reconcile --config` work
# against the running demo.
api_key_file = "{key_file}"

[sync]
state_dir = "state"
debounce_seconds = 1.0
rescan_interval_seconds = 300

[[folders]]
name = "demo"
path = "drop"
purpose = "assistants"
vector_stores = ["{store}"]
attributes = {{ source = "syncd demo" }}
"""

SAMPLES = {
    "welcome.md": "# Welcome\n\nThis file was synced by syncd's demo. Edit it and watch the log.\n",
    "guides/getting-started.md": "# Getting started\n\n1. Copy a file into demo/drop.\n"
    "2. Watch syncd upload it and add it to the demo vector store.\n"
    "3. Search for it with `syncd search`.\n"
    "4. Remove it, and watch syncd clean up.\n",
}


def _demo_port(config_path: Path) -> int:
    """The emulator port an existing demo configuration points at (0: pick a free one).

    Refuses a configuration that no longer points at a loopback emulator: the user has moved
    it to the real API, and the demo must not run it against anything but its emulator.
    """
    if not config_path.exists():
        return 0
    try:
        base_url = tomllib.loads(config_path.read_text()).get("api", {}).get("base_url", "")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"{config_path}: {exc}", ExitStatus.CONFIG)
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not is_loopback(parts.hostname or ""):
        fail(
            f"{config_path} points at {base_url or 'the real API'}, not the demo's emulator; "
            f"run `syncd run --config {config_path}` to use it that way",
            ExitStatus.CONFIG,
        )
    return parts.port or 0


def _shown_path(path: Path) -> str:
    """``path`` as a person would type it here: relative below the working directory."""
    shown = os.path.relpath(path)
    return str(path) if shown.startswith(os.pardir) else shown


def _syncd_invocation() -> str:
    """How to run this same syncd from the working directory: ``syncd`` when that is what
    PATH finds, else the script's path (``.venv/bin/syncd``), else ``python -m syncd``."""
    script = sys.argv[0] if sys.argv else ""
    if not script or Path(script).name == "__main__.py":
        return f"{_as_command(Path(sys.executable))} -m syncd"
    found = shutil.which("syncd")
    if found and os.path.realpath(found) == os.path.realpath(script):
        return "syncd"
    return _as_command(Path(os.path.abspath(script)))


def _as_command(program: Path) -> str:
    """``program``'s path as typed to run it: with a ``/``, or the shell would search PATH."""
    shown = _shown_path(program)
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def follow_up_commands(config: Path) -> list[str]:
    """The commands the banner suggests, exactly as they can be typed in this directory while
    the demo runs (``reconcile`` as a dry run: the running daemon holds the lock)."""
    syncd = _syncd_invocation()
    option = f"--config {shlex.quote(str(config))}"
    return [
        f"{syncd} status {option}",
        f"{syncd} check {option}",
        f"{syncd} verify {option}",
        f"{syncd} remote files {option}",
        f"{syncd} reconcile --dry-run {option}",
    ]


def search_command(config: Path, store: str) -> str:
    """The banner's ``syncd search`` line: finds the sample guide in the demo's store."""
    option = f"--config {shlex.quote(str(config))}"
    return f'{_syncd_invocation()} search {store} "getting started" {option}'


def _start_emulator(data_dir: Path, port: int) -> EmulatorServer:
    """The demo's emulator, on ``port`` when it is free, else on any free port."""
    try:
        return EmulatorServer(data_dir=data_dir, api_key=DEMO_KEY, port=port).start()
    except OSError:
        if port == 0:
            raise
        return EmulatorServer(data_dir=data_dir, api_key=DEMO_KEY, port=0).start()


def _write_key(path: Path) -> None:
    """The emulator's key in ``path``, readable by its owner only (as any key file should be)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(DEMO_KEY + "\n")


def _prepare(directory: Path, server: EmulatorServer) -> Path:
    """Write (or bring up to date) the demo configuration and its key file; seed the drop
    folder the first time."""
    config_path = directory / "syncd.toml"
    drop = directory / "drop"
    _write_key(directory / KEY_FILE)
    with Client(server.base_url, DEMO_KEY) as client:
        if not config_path.exists():
            store = client.create_vector_store("syncd demo").id
            config_path.write_text(
                CONFIG_TEMPLATE.format(
                    base_url=server.base_url,
                    store=store,
                    config=config_path,
                    key_file=KEY_FILE,
                )
            )
            for relpath, text in SAMPLES.items():
                (drop / relpath).parent.mkdir(parents=True, exist_ok=True)
                (drop / relpath).write_text(text)
            return config_path
        text = config_path.read_text()
        config = tomllib.loads(text)
        old_url = config.get("api", {}).get("base_url", "")
        if old_url != server.base_url:
            text = text.replace(old_url, server.base_url)
        if "api_key_file" not in config.get("api", {}):
            # A configuration from an older demo: name the key file, so the other commands work.
            text = text.replace(
                f'base_url = "{server.base_url}"\n',
                f'base_url = "{server.base_url}"\napi_key_file = "{KEY_FILE}"\n',
                1,
            )
        for folder in config.get("folders", []):
            for assistant in folder.get("assistants", []):
                try:
                    client.retrieve_assistant(assistant)
                except NotFoundError:
                    # The emulator's data was removed: give the folder a new demo assistant.
                    text = text.replace(assistant, client.create_assistant(name="syncd demo").id)
            for store in folder.get("vector_stores", []):
                try:
                    client.retrieve_vector_store(store)
                except NotFoundError:
                    # Likewise: a new demo store.
                    text = text.replace(store, client.create_vector_store("syncd demo").id)
        config_path.write_text(text)
    return config_path


def _first_store(config_path: Path) -> str | None:
    """The first vector store of the demo configuration, for the banner's search example."""
    for folder in tomllib.loads(config_path.read_text()).get("folders", []):
        for store in folder.get("vector_stores", []):
            return str(store)
    return None


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo keeps its configuration, drop folder and state.",
)
def demo_command(directory: Path) -> None:
    """Run the daemon on DIR/drop against the built-in emulator (Ctrl-C stops both)."""
    setup_logging("human")
    # One line per request from the emulator would drown the daemon's own lines.
    logging.getLogger("syncd.emulator").setLevel(logging.WARNING)
    directory = directory.absolute()
    (directory / "drop").mkdir(parents=True, exist_ok=True)
    port = _demo_port(directory / "syncd.toml")
    server = _start_emulator(directory / "emulator", port)
    try:
        config_path = _prepare(directory, server)
        shown = _shown_path(directory)
        config = Path(shown) / "syncd.toml"
        store = _first_store(config_path)
        commands = follow_up_commands(config)
        if store:
            commands.append(search_command(config, store))
        listed = "\n".join(f"    {c}" for c in commands)
        click.echo(
            f"syncd demo: the emulator listens on {server.base_url} (data in {shown}/emulator).\n"
            f"  Copy files into {shown}/drop, edit them, rename them, remove them: each line\n"
            f"  below says what syncd did; each file goes into the vector store {store}.\n"
            "  Ctrl-C stops syncd and the emulator.\n"
            f"  In another terminal, while this runs (the last finds what you dropped):\n{listed}\n"
            "  To use the real API, see the comment at the top of "
            f"{shown}/syncd.toml.\n",
            err=True,
        )
        status = Daemon(config_path).run()
    finally:
        server.stop()
    sys.exit(status)
