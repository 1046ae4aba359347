"""Helpers for the emulator's own tests: uploading files and making assistants over HTTP, and
a store to test directly."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest

from syncd.emulator.store import Store

Upload = Callable[..., dict[str, Any]]
MakeAssistant = Callable[..., dict[str, Any]]


@pytest.fixture
def upload(http: httpx2.Client) -> Upload:
    """Upload ``content`` as ``filename`` and return the file object (the upload must succeed)."""

    def upload(
        content: bytes = b"hello\n", filename: str = "notes.txt", purpose: str = "assistants"
    ) -> dict[str, Any]:
        response = http.post(
            "files", files={"file": (filename, content)}, data={"purpose": purpose}
        )
        assert response.status_code == 200, response.text
        return response.json()

    return upload


@pytest.fixture
def make_assistant(http: httpx2.Client) -> MakeAssistant:
    """Create an assistant with ``file_ids`` attached and return it."""

    def make_assistant(file_ids: Sequence[str] = (), name: str = "helper") -> dict[str, Any]:
        response = http.post(
            "assistants", json={"model": "gpt-4-turbo", "name": name, "file_ids": list(file_ids)}
        )
        assert response.status_code == 200, response.text
        return response.json()

    return make_assistant


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An emulator's store on disk, without a server: for rules tested page by page."""
    store = Store(tmp_path / "data")
    yield store
    store.close()
