"""SDK 1.20.0 — the last with ``beta.assistants.files`` — keeps working against the emulator's
``--assistants-api v1``: the contract syncd was written against.

SDK 1.20.0 needs httpx < 0.28, so it runs in its own venv (``scripts/sdk120-venv`` builds
``.venv-sdk120`` from the hash-pinned ``requirements/sdk-1.20.txt``), as a subprocess. Without that
venv the test is skipped — except in CI (``CI=true``), where it must run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from syncd.emulator import EmulatorServer

VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv-sdk120" / "bin" / "python"

# Runs under SDK 1.20.0: plain SDK calls, no emulator-specific code.
SCRIPT = """
import json, sys
import openai
from openai import OpenAI

assert openai.__version__ == "1.20.0", openai.__version__
client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
doc = client.files.create(file=("notes.md", b"# notes\\n"), purpose="assistants")
assistant = client.beta.assistants.create(model="gpt-4-turbo", name="syncd")
attached = client.beta.assistants.files.create(assistant_id=assistant.id, file_id=doc.id)
listed = [f.id for f in client.beta.assistants.files.list(assistant_id=assistant.id)]
one = client.beta.assistants.files.retrieve(assistant_id=assistant.id, file_id=doc.id)
removed = client.beta.assistants.files.delete(assistant_id=assistant.id, file_id=doc.id)
after = [f.id for f in client.beta.assistants.files.list(assistant_id=assistant.id)]
all_files = [f.id for f in client.files.list()]
deleted = client.files.delete(doc.id)
print(json.dumps({
    "file": doc.id,
    "attached": attached.id,
    "assistant_id": one.assistant_id,
    "listed": listed,
    "removed": removed.deleted,
    "after": after,
    "all_files": all_files,
    "deleted": deleted.deleted,
    "assistant": assistant.id,
}))
"""


@pytest.fixture
def sdk120_python() -> Path:
    if not VENV_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{VENV_PYTHON} is missing: run scripts/sdk120-venv (CI must test SDK 1.20)"
            )
        pytest.skip("no .venv-sdk120 (build it with scripts/sdk120-venv)")
    return VENV_PYTHON


def test_sdk_1_20_v1_assistant_file_calls_work(
    emulator: EmulatorServer, api_key: str, sdk120_python: Path
) -> None:
    result = subprocess.run(
        [str(sdk120_python), "-c", SCRIPT, emulator.base_url, api_key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["attached"] == seen["file"]
    assert seen["assistant_id"] == seen["assistant"]
    assert seen["listed"] == [seen["file"]]
    assert seen["removed"] is True and seen["after"] == []
    assert seen["all_files"] == [seen["file"]]
    assert seen["deleted"] is True


def test_sdk_1_20_meets_the_retired_api_as_today(
    emulator: EmulatorServer, api_key: str, sdk120_python: Path
) -> None:
    """Against ``retired``, the same calls fail as they do on today's service: 400 invalid_beta."""
    emulator.set_knobs(assistants_api="retired")
    result = subprocess.run(
        [str(sdk120_python), "-c", SCRIPT, emulator.base_url, api_key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "BadRequestError" in result.stderr
    assert "The v1 Assistants API has been deprecated." in result.stderr
