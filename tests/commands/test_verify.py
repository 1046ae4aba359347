"""``syncd verify``: every kind of discrepancy, reported one line each with exit 1; files and
attachments syncd does not own listed but never counted; nothing changed anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from syncd.api import Client, FileObject
from syncd.engine.model import Retired

from .conftest import Workspace

Upload = Callable[..., FileObject]

GUIDE = b"# Setup\n\nRun the installer.\n"
FAQ = b"# FAQ\n\nNo.\n"
TRAINING = b'{"prompt": "2+2", "completion": "4"}\n' * 20


@dataclass
class Synced:
    """What a pass would have left: two docs attached to an assistant, one training file."""

    assistant: str
    guide: FileObject
    faq: FileObject
    training: FileObject


@pytest.fixture
def synced(workspace: Workspace, upload: Upload, client: Client) -> Synced:
    assistant = client.create_assistant(name="docs bot").id
    workspace.assistants = [assistant]
    workspace.write_config()
    guide = upload("setup.md", GUIDE)
    faq = upload("faq.md", FAQ)
    training = upload("train.jsonl", TRAINING, "fine-tune")
    workspace.record_synced("docs", "guides/setup.md", GUIDE, guide)
    workspace.record_synced("docs", "faq.md", FAQ, faq)
    workspace.record_synced("train", "train.jsonl", TRAINING, training)
    with workspace.manifest() as db:
        for file in (guide, faq):
            client.create_assistant_file(assistant, file.id)
            db.add_attachment(file.id, assistant)
    return Synced(assistant, guide, faq, training)


def remote_state(client: Client, assistant: str) -> tuple[list[FileObject], list[str]]:
    return client.list_files(), [a.id for a in client.iter_assistant_files(assistant)]


def test_everything_matches(workspace: Workspace, synced: Synced) -> None:
    result = workspace.run("verify")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == "checked 3 synced file(s): all match\n"
    assert workspace.json("verify") == {
        "ok": True,
        "checked": 3,
        "discrepancies": [],
        "foreign": [],
    }


def test_before_any_pass_there_is_nothing_to_verify(workspace: Workspace) -> None:
    result = workspace.run("verify")
    assert result.exit_code == 0
    assert result.stdout == (
        "no pass has run yet: syncd has synced nothing to verify\n"
        "checked 0 synced file(s): all match\n"
    )
    assert not workspace.state_dir.exists()


def test_foreign_files_and_attachments_are_listed_not_counted(
    workspace: Workspace, synced: Synced, upload: Upload, client: Client
) -> None:
    theirs = upload("theirs.md", b"someone else's")
    client.create_assistant_file(synced.assistant, theirs.id)
    report = workspace.json("verify")
    assert report["ok"] is True
    assert report["foreign"] == [
        {
            "kind": "file",
            "file_id": theirs.id,
            "assistant_id": None,
            "detail": "theirs.md (14 B, assistants)",
        },
        {
            "kind": "attachment",
            "file_id": theirs.id,
            "assistant_id": synced.assistant,
            "detail": "attached by someone else",
        },
    ]
    result = workspace.run("verify")
    assert result.exit_code == 0
    assert "Not owned by syncd (left alone; for information):" in result.stdout


def test_every_kind_of_discrepancy_is_one_line_and_nothing_is_changed(
    workspace: Workspace, synced: Synced, upload: Upload, client: Client
) -> None:
    a = synced.assistant
    # Deleted by someone else; detached by someone else; recorded with other bytes.
    client.delete_file(synced.faq.id)
    client.delete_assistant_file(a, synced.guide.id)
    with workspace.manifest() as db:
        guide = db.entry("docs", "guides/setup.md")
        assert guide is not None
        db.put_entry(replace(guide, size=999))
        training = db.entry("train", "train.jsonl")
        assert training is not None
        db.put_entry(replace(training, sha256="f" * 64))
        # An old version that a pass replaced but could not detach yet.
        old = upload("setup.md", b"# Setup (old)\n")
        client.create_assistant_file(a, old.id)
        db.add_attachment(old.id, a)
        db.put_retired(Retired(old.id, "docs", delete=True, replaced_by=synced.guide.id))
    before = remote_state(client, a)

    result = workspace.json("verify")
    assert result["ok"] is False
    assert result["checked"] == 3
    assert result["foreign"] == []
    assert [
        (d["kind"], d["folder"], d["path"], d["file_id"], d["assistant_id"])
        for d in result["discrepancies"]
    ] == [
        ("missing", "docs", "faq.md", synced.faq.id, None),
        ("bytes", "docs", "guides/setup.md", synced.guide.id, None),
        ("content", "train", "train.jsonl", synced.training.id, None),
        ("not_attached", "docs", "guides/setup.md", synced.guide.id, a),
        ("retired_attached", "docs", None, old.id, a),
    ]
    details = [d["detail"] for d in result["discrepancies"]]
    assert details[1] == f"{len(GUIDE)} bytes on the service, 999 recorded"
    assert details[2].startswith("sha256 ") and details[2].endswith(f"{'f' * 12}… recorded")

    plain = workspace.run("verify")
    assert plain.exit_code == 1
    lines = plain.stdout.splitlines()
    assert lines[0].split()[:2] == ["problem", "folder"]
    assert [line.split()[0] for line in lines[1:-1]] == [
        "missing",
        "bytes",
        "content",
        "not_attached",
        "retired_attached",
    ]
    assert lines[-1] == "checked 3 synced file(s): 5 discrepancies"
    assert remote_state(client, a) == before


def test_no_content_skips_the_download(workspace: Workspace, synced: Synced) -> None:
    with workspace.manifest() as db:
        training = db.entry("train", "train.jsonl")
        assert training is not None
        db.put_entry(replace(training, sha256="f" * 64))
    assert workspace.run("verify").exit_code == 1
    result = workspace.run("verify", "--no-content")
    assert result.exit_code == 0, result.stdout


def test_a_file_uploaded_under_another_name_differs(
    workspace: Workspace, synced: Synced, upload: Upload
) -> None:
    renamed = upload("other-name.md", GUIDE)
    workspace.record_synced("docs", "guides/setup.md", GUIDE, renamed)
    report = workspace.json("verify")
    kinds = [(d["kind"], d["path"], d["detail"]) for d in report["discrepancies"]]
    assert (
        "filename",
        "guides/setup.md",
        "named 'other-name.md' on the service, 'setup.md' here",
    ) in kinds


def test_a_configured_assistant_that_does_not_exist(workspace: Workspace, synced: Synced) -> None:
    workspace.assistants = [synced.assistant, "asst_gone"]
    workspace.write_config()
    report = workspace.json("verify")
    assert report["discrepancies"] == [
        {
            "kind": "assistant_missing",
            "folder": "docs",
            "path": None,
            "file_id": None,
            "assistant_id": "asst_gone",
            "detail": "the assistant does not exist: no file of this folder can be attached to it",
            "store_id": None,
        }
    ]


def test_a_wrong_key_exits_3(workspace: Workspace, synced: Synced) -> None:
    result = workspace.run("verify", key="sk-not-this-one")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "syncd: verifying: the service did not accept the API key: 401 Incorrect API key"
    )


def test_an_unreachable_service_exits_3(
    workspace: Workspace, synced: Synced, closed_port_url: str
) -> None:
    workspace.write_config(base_url=closed_port_url)
    result = workspace.run("verify")
    assert result.exit_code == 3
    assert "cannot reach the service" in result.stderr


def test_json_is_the_documented_shape(workspace: Workspace, synced: Synced, client: Client) -> None:
    client.delete_file(synced.faq.id)
    report = json.loads(workspace.run("verify", "--json").stdout)
    assert set(report) == {"ok", "checked", "discrepancies", "foreign"}
    assert set(report["discrepancies"][0]) == {
        "kind",
        "folder",
        "path",
        "file_id",
        "assistant_id",
        "detail",
        "store_id",
    }
