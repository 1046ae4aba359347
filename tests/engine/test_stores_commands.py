"""The commands that show vector stores, as subprocesses after a real pass: ``status``,
``verify``, ``check``, ``remote vector-stores``, ``remote store-files`` and ``search``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Workspace

pytestmark = pytest.mark.timeout(120)


def syncd(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    result = ws.command(*args, timeout=60)
    assert ws.api_key not in result.stdout + result.stderr
    return result


def as_json(ws: Workspace, *args: str) -> Any:
    return json.loads(syncd(ws, *args, "--json").stdout)


@pytest.fixture
def synced_store(ws: Workspace) -> tuple[str, Path]:
    """docs/ synced into a store: two good files and one the store cannot read."""
    store = ws.client.create_vector_store("kb").id
    drop = ws.add_folder("docs", vector_stores=[store], attributes={"team": "platform"})
    (drop / "setup.md").write_text("How to set up the wombat server.\n")
    (drop / "faq.md").write_text("Frequently asked: where is the wombat?\n")
    (drop / "scan.pdf").write_bytes(b"no PDF header here")
    ws.run()
    return store, drop


def test_status_shows_each_store_by_ingestion_state(
    ws: Workspace, synced_store: tuple[str, Path]
) -> None:
    store, _ = synced_store
    report = as_json(ws, "status")
    instance = (ws.state_dir / "instance-id").read_text().strip()
    assert report["instance"] == instance
    assert report["stores"] == [
        {
            "folder": "docs",
            "store": store,
            "counts": {"completed": 2, "in_progress": 0, "failed": 0, "cancelled": 0},
            "failed": [],
            "slow": [],
        }
    ]
    problems = report["folders"][0]["problems"]
    assert [(p["path"], p["state"]) for p in problems] == [("scan.pdf", "rejected")]
    assert "could not be parsed" in problems[0]["reason"]
    text = syncd(ws, "status").stdout
    assert f"Vector stores (syncd instance {instance})" in text
    assert store in text


def test_verify_checks_membership_ingestion_and_attributes(
    ws: Workspace, synced_store: tuple[str, Path]
) -> None:
    store, _ = synced_store
    assert as_json(ws, "verify")["ok"] is True
    setup = ws.entry("docs", "setup.md").file_id
    faq = ws.entry("docs", "faq.md").file_id
    assert setup and faq
    ws.client.update_vector_store_file(store, setup, {"syncd_path": "other.md"})
    ws.client.delete_vector_store_file(store, faq)
    result = syncd(ws, "verify", "--json")
    assert result.returncode == 1
    found = {
        (d["kind"], d["path"], d["store_id"]) for d in json.loads(result.stdout)["discrepancies"]
    }
    assert found == {("attributes", "setup.md", store), ("not_in_store", "faq.md", store)}


def test_check_names_each_store_and_a_missing_one(
    ws: Workspace, synced_store: tuple[str, Path]
) -> None:
    store, _ = synced_store
    checks = {c["name"]: c for c in as_json(ws, "check")["checks"]}
    assert checks[f"vector store {store}"]["ok"] is True
    assert "2 file(s) ready" in checks[f"vector store {store}"]["detail"]
    ws.client.delete_vector_store(store)
    result = syncd(ws, "check")
    assert result.returncode == 3
    assert f"vector store {store}" in result.stdout and "not found" in result.stdout


def test_check_says_once_that_the_assistants_api_is_gone(ws: Workspace) -> None:
    first, second = ws.assistant(), ws.assistant()
    ws.add_folder("a", assistants=[first])
    ws.add_folder("b", assistants=[second])
    ws.emulator.set_knobs(assistants_api="retired")
    result = syncd(ws, "check")
    assert result.returncode == 3
    assert result.stdout.count("no longer offers the Assistants API") == 1
    assert "vector_stores" in result.stdout


def test_remote_lists_stores_and_their_files(ws: Workspace, synced_store: tuple[str, Path]) -> None:
    store, _ = synced_store
    stores = as_json(ws, "remote", "vector-stores")
    assert [(s["id"], s["file_counts"]["completed"]) for s in stores] == [(store, 2)]
    files = as_json(ws, "remote", "store-files", store)
    assert sorted(f["attributes"]["syncd_path"] for f in files) == ["faq.md", "setup.md"]
    assert as_json(ws, "remote", "store-files", store, "--filter", "failed") == []
    text = syncd(ws, "remote", "store-files", store).stdout
    assert "docs/setup.md" in text and "completed" in text


def test_search_prints_the_local_path_score_and_snippet(
    ws: Workspace, synced_store: tuple[str, Path]
) -> None:
    store, _ = synced_store
    hits = as_json(ws, "search", store, "wombat server")
    assert hits[0]["path"] == "docs/setup.md"
    assert hits[0]["score"] > 0 and "wombat" in hits[0]["text"]
    only = as_json(ws, "search", store, "wombat", "--filter", "syncd_path=faq.md")
    assert [h["path"] for h in only] == ["docs/faq.md"]
    text = syncd(ws, "search", store, "wombat server").stdout
    assert "docs/setup.md" in text and "How to set up the wombat server." in text
    nothing = syncd(ws, "search", store, "zeppelin")
    assert nothing.returncode == 1 and "nothing in" in nothing.stderr
    bad = syncd(ws, "search", store, "x", "--filter", "no-equals-sign")
    assert bad.returncode == 2


def test_repair_rebuilds_a_lost_manifest_from_the_stores_without_uploading(
    ws: Workspace, synced_store: tuple[str, Path]
) -> None:
    store, drop = synced_store
    before = {p: ws.entry("docs", p).file_id for p in ("setup.md", "faq.md")}
    (drop / "faq.md").write_text("changed while the manifest was lost\n")
    ws.manifest.close()
    ws._manifest = None
    for name in ("manifest.sqlite", "manifest.sqlite-wal", "manifest.sqlite-shm"):
        (ws.state_dir / name).unlink(missing_ok=True)
    # Another instance's file in the same store is never adopted.
    theirs = ws.client.create_file(drop / "setup.md", "assistants", filename="theirs.md")
    ws.client.create_vector_store_file(
        store,
        theirs.id,
        attributes={
            "syncd_instance": "syncd-other",
            "syncd_folder": "docs",
            "syncd_path": "setup.md",
        },
    )
    repaired = as_json(ws, "repair", "--from-stores")
    assert repaired["adopted"] == [
        {"folder": "docs", "path": "setup.md", "file_id": before["setup.md"]}
    ]
    assert repaired["retired"] == [before["faq.md"]]  # its local content changed
    report = json.loads(syncd(ws, "reconcile", "--json").stdout)
    uploaded = [a["path"] for a in report["actions"] if a["what"] == "uploaded"]
    # The changed file, and the unreadable one: a rejection lives only in the manifest.
    assert sorted(uploaded) == ["faq.md", "scan.pdf"]
    assert ws.entry("docs", "setup.md").file_id == before["setup.md"]
    assert before["faq.md"] not in {f.id for f in ws.client.list_files()}
    assert theirs.id in {f.id for f in ws.client.list_files()}
