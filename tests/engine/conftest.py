"""A workspace for engine tests: drop folders, a real configuration file pointing at the shared
emulator, the manifest, and an :class:`Engine` whose every request is HTTP to the emulator."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from syncd.api import Client, FileObject, RetryPolicy
from syncd.config import Config, load_config, write_config
from syncd.emulator import EmulatorServer
from syncd.engine.manifest import ManifestDB
from syncd.engine.model import Entry
from syncd.engine.reconcile import Engine
from syncd.engine.report import PassReport

#: Client retries in tests: real backoff, but short.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, deadline=5)


def sha(data: bytes) -> str:
    """The content hash the scan and the manifest use."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Workspace:
    root: Path
    emulator: EmulatorServer
    api_key: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    sync: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    _client: Client | None = None
    _manifest: ManifestDB | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "syncd.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def add_folder(self, name: str, purpose: str = "assistants", **options: Any) -> Path:
        """Configure a drop folder ``name`` (created) and return its path."""
        path = self.root / "drop" / name
        path.mkdir(parents=True, exist_ok=True)
        self.folders[name] = {"name": name, "path": str(path), "purpose": purpose, **options}
        self.write_config()
        return path

    def write_config(self) -> Path:
        return write_config(
            self.config_path,
            api={
                "base_url": self.emulator.base_url,
                "max_attempts": 3,
                "timeout_seconds": 10,
                **self.api,
            },
            sync={"state_dir": self.state_dir, **self.sync},
            folders=self.folders.values(),
        )

    def env(self) -> dict[str, str]:
        """The environment a ``syncd`` subprocess runs with (only the key added)."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "OPENAI_"))}
        return {**keep, "OPENAI_API_KEY": self.api_key}

    def command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``syncd ARGS --config`` this workspace's configuration, as a subprocess with only
        the key added to its environment."""
        return subprocess.run(
            [*syncd_command(), *args, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
        )

    def config(self) -> Config:
        return load_config(self.config_path, env={"OPENAI_API_KEY": self.api_key})

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.emulator.base_url, self.api_key, retry=FAST_RETRY)
        return self._client

    @property
    def manifest(self) -> ManifestDB:
        if self._manifest is None:
            self._manifest = ManifestDB.open(self.state_dir)
        return self._manifest

    def entry(self, folder: str, path: str) -> Entry:
        """The manifest's row for ``folder``/``path``, which the test expects to exist."""
        row = self.manifest.entry(folder, path)
        if row is None:
            raise LookupError(f"no manifest row for {folder}/{path}")
        return row

    def engine(self, **kwargs: Any) -> Engine:
        return Engine(self.config(), self.client, self.manifest, **kwargs)

    def run(self, **kwargs: Any) -> PassReport:
        """One pass, in-process."""
        return self.engine().run_pass(**kwargs)

    def assistant(self) -> str:
        return self.client.create_assistant(name="test").id

    def remote(self) -> dict[str, FileObject]:
        return {f.id: f for f in self.client.list_files()}

    def attached(self, assistant: str) -> set[str]:
        return {a.id for a in self.client.iter_assistant_files(assistant)}

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
        if self._client is not None:
            self._client.close()


@pytest.fixture
def ws(tmp_path: Path, emulator: EmulatorServer, api_key: str) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path, emulator, api_key)
    yield workspace
    workspace.close()


def syncd_command() -> list[str]:
    """How to run the ``syncd`` command of this checkout."""
    return [sys.executable, "-m", "syncd"]
