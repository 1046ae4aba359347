"""The official ``openai`` SDK pointed at the emulator — nothing else: no emulator-specific code
in the tests, so what passes here is what a user's own SDK code meets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from openai import OpenAI

if TYPE_CHECKING:
    from syncd.emulator import EmulatorServer


@pytest.fixture
def client(emulator: EmulatorServer, api_key: str) -> Iterator[OpenAI]:
    """An SDK client for a fresh emulator (ingestion takes the default 0.2 s)."""
    with OpenAI(api_key=api_key, base_url=emulator.base_url, max_retries=0) as sdk:
        yield sdk
