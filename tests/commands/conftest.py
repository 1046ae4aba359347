"""Fixtures for the operator commands: a workspace with two drop folders and a configuration
pointing at the shared emulator, a runner for ``syncd …`` and helpers that put real files on
the service and record them in a manifest the way a pass does.

Commands run in-process through click's runner (fast), but every request they make is real
HTTP to the emulator on a loopback port.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncd.api import Client, FileObject
from syncd.cli import main
from syncd.config import write_config
from syncd.emulator import EmulatorServer
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry, State


@dataclass
class Workspace:
    """A configuration file, its two folders (``docs``: assistants, ``train``: fine-tune)
    and its state directory, all under one temporary directory."""

    root: Path
    base_url: str
    api_key: str
    assistants: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "syncd.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def train(self) -> Path:
        return self.root / "train"

    def write_config(self, *, base_url: str | None = None) -> Path:
        """(Re)write the configuration."""
        return write_config(
            self.config,
            api={"base_url": base_url or self.base_url},
            sync={"state_dir": "./state"},
            folders=[
                {
                    "name": "docs",
                    "path": "./docs",
                    "purpose": "assistants",
                    "assistants": self.assistants,
                },
                {"name": "train", "path": "./train", "purpose": "fine-tune"},
            ],
        )

    def run(self, *args: str, key: str | None = "default", config: bool = True) -> Result:
        """``syncd ARGS --config …`` with ``OPENAI_API_KEY`` set to ``key`` (the emulator's
        by default; ``None`` unsets it). Asserts the key never shows up in any output."""
        key = self.api_key if key == "default" else key
        argv = [*args, "--config", str(self.config)] if config else list(args)
        result = CliRunner().invoke(main, argv, env={"OPENAI_API_KEY": key})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        for secret in {s for s in (key, self.api_key) if s is not None}:
            assert secret not in result.output, "the API key leaked into the output"
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        result = self.run(*args, "--json", **kwargs)
        assert result.stderr == "", result.stderr
        return json.loads(result.stdout)

    def manifest(self) -> ManifestDB:
        return ManifestDB.open(self.state_dir)

    def record_synced(self, folder: str, path: str, data: bytes, file: FileObject) -> Entry:
        """Record ``path`` as synced to ``file`` the way a pass does after an upload."""
        entry = Entry(
            folder=folder,
            path=path,
            size=len(data),
            mtime_ns=1_700_000_000_000_000_000,
            inode=1,
            sha256=hashlib.sha256(data).hexdigest(),
            state=State.SYNCED,
            file_id=file.id,
        )
        with self.manifest() as db:
            db.put_entry(entry)
        return entry


@pytest.fixture
def client(emulator: EmulatorServer, api_key: str) -> Iterator[Client]:
    """syncd's own client, for setting the service up the way a test needs it."""
    with Client(emulator.base_url, api_key) as c:
        yield c


@pytest.fixture
def workspace(tmp_path: Path, emulator: EmulatorServer, api_key: str) -> Workspace:
    ws = Workspace(tmp_path, emulator.base_url, api_key)
    ws.docs.mkdir()
    ws.train.mkdir()
    ws.write_config()
    return ws


@pytest.fixture
def upload(client: Client, tmp_path: Path) -> Callable[..., FileObject]:
    """Upload ``data`` as ``filename`` with ``purpose`` (fine-tune waits until processed)."""
    staging = tmp_path / "staging"
    staging.mkdir()

    def put(filename: str, data: bytes, purpose: str = "assistants") -> FileObject:
        source = staging / filename
        source.write_bytes(data)
        file = client.create_file(source, purpose)
        source.unlink()
        return client.wait_processed(file.id, poll=0.02) if purpose == "fine-tune" else file

    return put
