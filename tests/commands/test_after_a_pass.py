"""``status`` and ``verify`` over a manifest written by a real ``syncd reconcile`` pass: they
agree with what the engine did, verify spots what changed behind its back, and a second pass
repairs exactly that."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from syncd.api import Client

from .conftest import Workspace

CHAT = (
    json.dumps(
        {
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ]
        }
    )
    + "\n"
) * 10


def reconcile(ws: Workspace) -> subprocess.CompletedProcess[str]:
    """A pass in its own process, exactly as a timer would run it."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", "reconcile", "--config", str(ws.config)],
        env={**os.environ, "OPENAI_API_KEY": ws.api_key},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(120)
def test_status_and_verify_agree_with_a_real_pass(workspace: Workspace, client: Client) -> None:
    assistant = client.create_assistant(name="docs bot").id
    workspace.assistants = [assistant]
    workspace.write_config()
    (workspace.docs / "guides").mkdir()
    (workspace.docs / "guides" / "setup.md").write_text("# Setup\n")
    (workspace.docs / "faq.md").write_text("# FAQ\n")
    (workspace.train / "chat.jsonl").write_text(CHAT)
    (workspace.train / "bad.jsonl").write_text('{"prompt": "old format"}\n')

    first = reconcile(workspace)
    assert first.returncode == 1, first.stderr  # one file rejected

    status = workspace.json("status")
    docs, train = status["folders"]
    assert docs["counts"]["synced"] == 2
    assert (train["counts"]["synced"], train["counts"]["rejected"]) == (1, 1)
    assert [(p["path"], p["state"]) for p in train["problems"]] == [("bad.jsonl", "rejected")]
    assert train["problems"][0]["reason"] == 'line 1: needs a non-empty "messages" list'
    assert docs["last_pass"] is not None

    # verify downloads chat.jsonl and hashes it: the engine's sha256 must match the service's.
    assert workspace.json("verify") == {
        "ok": True,
        "checked": 3,
        "discrepancies": [],
        "foreign": [],
    }

    with workspace.manifest() as db:
        faq = db.entry("docs", "faq.md")
        setup = db.entry("docs", "guides/setup.md")
    assert faq is not None and faq.file_id and setup is not None and setup.file_id
    client.delete_file(faq.file_id)
    client.delete_assistant_file(assistant, setup.file_id)
    report = workspace.json("verify")
    assert [(d["kind"], d["path"]) for d in report["discrepancies"]] == [
        ("missing", "faq.md"),
        ("not_attached", "guides/setup.md"),
    ]

    second = reconcile(workspace)
    assert second.returncode == 1, second.stderr  # bad.jsonl is still rejected
    assert workspace.run("verify").exit_code == 0
