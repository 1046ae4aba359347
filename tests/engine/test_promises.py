"""Issue #10, "keep the promises": each defect found by trying to break syncd, shown through
``syncd reconcile`` (a subprocess, a real configuration, the emulator over HTTP)."""

from __future__ import annotations

import io
import json
import subprocess

import pytest

from .conftest import Workspace, sha, syncd_command

pytestmark = pytest.mark.timeout(120)


def syncd(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*syncd_command(), *args, "--config", str(ws.config_path)],
        capture_output=True,
        text=True,
        env=ws.env(),
        timeout=100,
    )


def reconcile(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return syncd(ws, "reconcile", *args)


def example(text: str) -> str:
    """One fine-tune example line."""
    return json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n"


def content(ws: Workspace, file_id: str) -> bytes:
    out = io.BytesIO()
    ws.client.download_file(file_id, out)
    return out.getvalue()


# --- 1: lost answers must not pair paths with the wrong uploads ----------------------------------


def test_lost_answers_of_same_named_uploads_never_pair_paths_with_the_wrong_files(
    ws: Workspace,
) -> None:
    # Six folders, an x.jsonl of one size but different content in each; the service stores
    # every upload and every answer is lost.
    texts = {f"f{n}": example(f"example number {n}") for n in range(6)}
    for name, text in texts.items():
        (ws.add_folder(name, "fine-tune") / "x.jsonl").write_text(text)
    assert len({len(t) for t in texts.values()}) == 1
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match=r"^POST /v1/files$")
    reconcile(ws)

    ws.emulator.clear_faults()
    for _ in range(8):
        result = reconcile(ws)
        if result.returncode == 0:
            break
    assert result.returncode == 0, result.stderr
    for name, text in texts.items():
        entry = ws.entry(name, "x.jsonl")
        assert entry.sha256 == sha(text.encode())
        assert content(ws, entry.file_id or "") == text.encode(), name
    assert len(ws.remote()) == 6  # each stored once: nothing sent twice
    assert syncd(ws, "verify").returncode == 0
