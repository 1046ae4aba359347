"""Issue #10, "keep the promises": each defect found by trying to break syncd, shown through
``syncd reconcile`` (a subprocess, a real configuration, the emulator over HTTP)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time

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


# --- 2: a slow service must not make duplicates ----------------------------------------------


def test_an_upload_stored_after_the_client_gave_up_is_kept_once(ws: Workspace) -> None:
    # The service takes 2.5 s to store an upload, and stores it even though syncd gave up
    # waiting after 1 s: syncd gives it a grace period and looks again instead of sending
    # the file again, and ends with one copy, its own.
    ws.api["timeout_seconds"] = 1
    ws.sync["unresolved_grace_seconds"] = 4
    asst = ws.assistant()
    docs = ws.add_folder("docs", assistants=[asst])
    (docs / "a.md").write_text("slowly stored")
    ws.emulator.set_faults(slow_commit_ms=2500, match=r"^POST /v1/files$")
    result = reconcile(ws)
    assert result.returncode == 0, result.stderr
    assert "syncd looks for it before uploading again" in result.stderr
    assert "adopted" in result.stderr
    ws.emulator.clear_faults()
    [only] = ws.remote().values()
    assert ws.entry("docs", "a.md").file_id == only.id
    assert ws.attached(asst) == {only.id}
    verify = syncd(ws, "verify")
    assert verify.returncode == 0, verify.stdout
    assert "not syncd's" not in verify.stdout


def test_late_copies_of_syncds_own_uploads_are_deleted_and_said_so(ws: Workspace) -> None:
    # No grace: the upload is sent again while the first request is still being stored,
    # and both land. The second copy matches one of syncd's recorded attempts: it is
    # syncd's own, so one is kept and the other deleted, with a line saying why.
    ws.api["timeout_seconds"] = 1
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("slowly stored")
    ws.emulator.set_faults(slow_commit_ms=1500, match=r"^POST /v1/files$", max_faults=None)
    first = reconcile(ws)
    ws.emulator.clear_faults()
    assert "syncd looks for it before uploading again" in first.stderr
    time.sleep(2)  # every request sent has been stored by now
    second = reconcile(ws, "--json")
    assert second.returncode == 0, second.stderr
    assert "was stored after syncd had given up on its answer; one copy is kept" in second.stderr
    [only] = ws.remote().values()
    assert ws.entry("docs", "a.md").file_id == only.id


# --- 10: an unresolved upload is not "in sync" ----------------------------------------------------


def test_uploads_with_unknown_outcomes_are_counted_listed_and_exit_1(ws: Workspace) -> None:
    ws.sync["unresolved_grace_seconds"] = 0
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("never answered")
    # Every upload's connection drops before the service takes it: the outcome is unknown.
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="before", match=r"^POST /v1/files$")
    result = reconcile(ws, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 0 and report["unresolved"] == 1
    assert report["exit_status"] == 1
    [error] = report["errors"]
    assert error["kind"] == "unresolved" and (error["folder"], error["path"]) == ("docs", "a.md")
    assert "unresolved 1" in reconcile(ws).stdout

    ws.emulator.clear_faults()
    settled = reconcile(ws, "--json")
    assert settled.returncode == 0, settled.stderr
    assert json.loads(settled.stdout)["unresolved"] == 0


# --- 6: a file name that is not UTF-8 ------------------------------------------------------


def test_a_name_that_is_not_utf8_is_rejected_and_the_pass_goes_on(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    (docs / "a.md").write_text("a")
    (docs / "b.md").write_text("b")
    assert reconcile(ws).returncode == 0
    (docs / "b.md").unlink()
    with open(os.fsencode(docs) + b"/bad\xff.md", "wb") as f:
        f.write(b"bad name")

    result = reconcile(ws, "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["rejected"] == 1 and report["deleted"] == 1
    [rejected] = [a for a in report["actions"] if a["what"] == "rejected"]
    assert rejected["path"] == "bad\\xff.md"
    assert "not valid UTF-8" in rejected["detail"]
    assert "rejected docs/bad\\xff.md: its name is not valid UTF-8" in result.stderr
    assert len(ws.remote()) == 1  # b.md's remote copy is gone
    assert reconcile(ws).returncode == 1  # still rejected, still no crash


# --- 3: names with ", CR, LF or TAB ------------------------------------------------------------


def test_names_the_client_encodes_are_compared_as_sent(ws: Workspace) -> None:
    docs = ws.add_folder("docs")
    names = ['say "hi".md', "tab\there.md", "line\nbreak.md", "cr\r.md"]
    for name in names:
        (docs / name).write_text(f"content of {name!r}")
    # Every answer is lost after the upload was stored: each must be found and adopted, not
    # sent again.
    ws.emulator.set_faults(drop_rate=1.0, drop_phase="after", match=r"^POST /v1/files$")
    ws.sync["unresolved_grace_seconds"] = 0
    ws.write_config()
    reconcile(ws)
    ws.emulator.clear_faults()
    result = reconcile(ws)
    assert result.returncode == 0, result.stderr
    assert len(ws.remote()) == len(names)  # none sent twice
    verify = syncd(ws, "verify")
    assert verify.returncode == 0, verify.stdout
