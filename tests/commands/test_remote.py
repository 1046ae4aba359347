"""``syncd remote …`` end to end against the emulator: output shapes, exit statuses, and the
failure paths (unknown ids, a refused download, a wrong key, an unreachable service)."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.api import Client, FileObject
from syncd.emulator import EmulatorServer

from .conftest import Workspace

TRAINING = b'{"prompt": "a", "completion": "b"}\n' * 40

Upload = Callable[..., FileObject]


def test_files_lists_every_file_oldest_first_as_json(workspace: Workspace, upload: Upload) -> None:
    notes = upload("notes.md", b"# notes\n")
    data = upload("data.jsonl", TRAINING, "fine-tune")
    listed = workspace.json("remote", "files")
    assert sorted(f["id"] for f in listed) == sorted([notes.id, data.id])
    assert [f["created_at"] for f in listed] == sorted(f["created_at"] for f in listed)
    assert next(f for f in listed if f["id"] == data.id) == {
        "id": data.id,
        "object": "file",
        "bytes": len(TRAINING),
        "created_at": data.created_at,
        "expires_at": None,  # today's service sends it (the client passes unknown fields on)
        "filename": "data.jsonl",
        "purpose": "fine-tune",
        "status": "processed",
        "status_details": None,
    }
    only = workspace.json("remote", "files", "--purpose", "fine-tune")
    assert [f["id"] for f in only] == [data.id]


def test_files_prints_plain_aligned_text_when_not_on_a_terminal(
    workspace: Workspace, upload: Upload
) -> None:
    notes = upload("notes.md", b"x" * 12_000)
    result = workspace.run("remote", "files")
    assert result.exit_code == 0
    header, row, total = result.stdout.splitlines()
    assert header.split() == ["id", "filename", "size", "purpose", "status", "created"]
    assert row.split()[:5] == [notes.id, "notes.md", "12", "KB", "assistants"]
    assert row.index("notes.md") == header.index("filename")
    assert total == "1 file(s)"


def test_show_prints_one_file(workspace: Workspace, upload: Upload) -> None:
    notes = upload("notes.md", b"x" * 1500)
    assert workspace.json("remote", "show", notes.id) == notes.model_dump(mode="json")
    lines = workspace.run("remote", "show", notes.id).stdout.splitlines()
    assert lines[0].split() == ["id", notes.id]
    assert "filename  notes.md" in lines
    assert "size      1.5 KB (1500 bytes)" in lines


def test_an_unknown_file_id_exits_1_with_the_services_message_and_request_id(
    workspace: Workspace,
) -> None:
    result = workspace.run("remote", "show", "file-doesnotexist")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("syncd: showing file-doesnotexist: 404 No such File object")
    assert "(request req_" in result.stderr


def test_download_streams_a_fine_tune_file_to_the_path(
    workspace: Workspace, upload: Upload, tmp_path: Path
) -> None:
    data = upload("data.jsonl", TRAINING, "fine-tune")
    out = tmp_path / "out.jsonl"
    result = workspace.run("remote", "download", data.id, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == TRAINING
    assert result.stdout.startswith(f"downloaded {data.id} → {out} (1.4 KB, ")
    again = workspace.json("remote", "download", data.id, "-o", str(out), "--force")
    assert again == {"file_id": data.id, "path": str(out), "bytes": len(TRAINING)}


def test_download_refuses_to_overwrite_without_force(
    workspace: Workspace, upload: Upload, tmp_path: Path
) -> None:
    data = upload("data.jsonl", TRAINING, "fine-tune")
    out = tmp_path / "precious.jsonl"
    out.write_bytes(b"keep me")
    result = workspace.run("remote", "download", data.id, "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"syncd: {out} exists; pass --force to replace it\n"
    assert out.read_bytes() == b"keep me"


def test_download_of_an_assistants_file_reports_the_services_refusal(
    workspace: Workspace, upload: Upload, tmp_path: Path
) -> None:
    notes = upload("notes.md", b"# notes\n")
    out = tmp_path / "notes.md"
    result = workspace.run("remote", "download", notes.id, "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"syncd: the service refused to let {notes.id} be downloaded: "
        "400 Not allowed to download files of purpose: assistants."
    )
    assert "(request req_" in result.stderr
    assert list(tmp_path.glob("notes.md*")) == []  # neither the file nor a partial one


def test_download_keeps_memory_flat(workspace: Workspace, upload: Upload, tmp_path: Path) -> None:
    line = b'{"prompt": "' + b"p" * 1000 + b'", "completion": "c"}\n'
    big = line * 24_000  # ~24 MB
    data = upload("big.jsonl", big, "fine-tune")
    out = tmp_path / "big.jsonl"
    tracemalloc.start()
    try:
        result = workspace.run("remote", "download", data.id, "-o", str(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size == len(big)
    # Client and emulator both run in this process; together they stay far below the file size.
    assert peak < len(big) / 3, f"peak {peak} bytes for a {len(big)}-byte download"


def test_assistant_files_lists_the_attachments(
    workspace: Workspace, upload: Upload, client: Client
) -> None:
    a, b = upload("a.md", b"a"), upload("b.md", b"b")
    assistant = client.create_assistant(name="helper")
    client.create_assistant_file(assistant.id, a.id)
    client.create_assistant_file(assistant.id, b.id)
    listed = workspace.json("remote", "assistant-files", assistant.id)
    assert [(x["id"], x["object"], x["assistant_id"]) for x in listed] == [
        (a.id, "assistant.file", assistant.id),
        (b.id, "assistant.file", assistant.id),
    ]
    plain = workspace.run("remote", "assistant-files", assistant.id).stdout.splitlines()
    assert plain[0].split() == ["file", "attached"]
    assert [line.split()[0] for line in plain[1:3]] == [a.id, b.id]
    assert plain[3] == "2 file(s)"


def test_assistant_files_of_an_unknown_assistant_exits_1(workspace: Workspace) -> None:
    result = workspace.run("remote", "assistant-files", "asst_nope")
    assert result.exit_code == 1
    assert "404 No assistant found with id 'asst_nope'" in result.stderr


def test_message_files_lists_and_shows(
    workspace: Workspace, upload: Upload, client: Client
) -> None:
    a = upload("a.md", b"a")
    thread = client.create_thread()
    message = client.create_message(thread.id, "see attached", file_ids=[a.id])
    listed = workspace.json("remote", "message-files", thread.id, message.id)
    assert [(x["id"], x["object"], x["message_id"]) for x in listed] == [
        (a.id, "thread.message.file", message.id)
    ]
    one = workspace.json("remote", "message-files", thread.id, message.id, a.id)
    assert one == listed[0]
    missing = workspace.run("remote", "message-files", thread.id, message.id, "file-nope")
    assert missing.exit_code == 1
    assert "404" in missing.stderr


def test_message_files_of_an_unknown_message_exits_1(workspace: Workspace, client: Client) -> None:
    thread = client.create_thread()
    result = workspace.run("remote", "message-files", thread.id, "msg_nope")
    assert result.exit_code == 1
    assert "404" in result.stderr
    assert "(request req_" in result.stderr


def test_a_wrong_key_exits_3_without_showing_the_key(workspace: Workspace) -> None:
    wrong = "sk-wrong-key-9876543210"
    result = workspace.run("remote", "files", key=wrong)  # run() asserts the key never shows
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "syncd: listing files: the service did not accept the API key: 401 Incorrect API key"
    )


def test_no_key_at_all_is_a_configuration_error(workspace: Workspace) -> None:
    result = workspace.run("remote", "files", key=None)
    assert result.exit_code == 2
    assert result.stderr.startswith("syncd: no API key")


def test_an_unreachable_service_exits_3_within_seconds(
    workspace: Workspace, closed_port_url: str
) -> None:
    workspace.write_config(base_url=closed_port_url)
    started = time.monotonic()
    result = workspace.run("remote", "show", "file-abc")
    assert time.monotonic() - started < 5
    assert result.exit_code == 3
    assert result.stderr.startswith("syncd: showing file-abc: cannot reach the service: Connect")


def test_a_service_that_keeps_failing_exits_3(
    workspace: Workspace, emulator: EmulatorServer
) -> None:
    emulator.set_faults(fail_rate=1.0)
    result = workspace.run("remote", "files")
    assert result.exit_code == 3
    assert result.stderr.startswith("syncd: listing files: 50")


@pytest.mark.parametrize("command", [["files"], ["show", "file-x"], ["assistant-files", "asst_x"]])
def test_a_bad_configuration_exits_2(workspace: Workspace, command: list[str]) -> None:
    workspace.config.write_text("[api\n", encoding="utf-8")
    result = workspace.run("remote", *command)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"syncd: {workspace.config}: line 1")


def test_download_into_a_missing_directory_is_a_usage_error(
    workspace: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "dir" / "x.jsonl"
    result = workspace.run("remote", "download", "file-abc", "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"syncd: {out.parent} is not a directory\n"
