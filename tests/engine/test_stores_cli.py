"""``syncd reconcile`` as a subprocess, syncing into a vector store while the
emulator fails or drops a fifth of syncd's requests: every file ends ``completed`` once, with
no duplicate upload; a file the store cannot read is rejected once and never sent again; a
rename sends no upload; a search during a replacement always finds the document."""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter
from typing import Any

import pytest

from syncd.api import Client

from .conftest import FAST_RETRY, Workspace, syncd_command

pytestmark = pytest.mark.timeout(240)

# syncd's requests fail (500/502/503) or are dropped (before or after they took effect) one
# time in five; searches, which play the user here, are spared.
FAULTS: dict[str, Any] = {
    "fail_rate": 0.1,
    "drop_rate": 0.1,
    "seed": 13,
    "match": r"^(?!POST /v1/vector_stores/[^/]+/search)",
}


def reconcile_json(ws: Workspace) -> dict[str, Any]:
    result = subprocess.run(
        [*syncd_command(), "reconcile", "--config", str(ws.config_path), "--json"],
        capture_output=True,
        text=True,
        env=ws.env(),
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def until_clean(ws: Workspace, runs: list[dict[str, Any]], limit: int = 8) -> None:
    """Reconcile until a run changes nothing and reports no error (faults stay on)."""
    for _ in range(limit):
        report = reconcile_json(ws)
        runs.append(report)
        if not report["actions"] and not report["errors"]:
            return
    raise AssertionError(f"not clean after {limit} runs: {runs[-1]}")


def what(runs: list[dict[str, Any]], kind: str, path: str) -> int:
    return sum(1 for r in runs for a in r["actions"] if a["what"] == kind and a.get("path") == path)


def check_store(client: Client, store: str, names: set[str]) -> None:
    """The store holds one completed file per name (its path attribute), and the service one
    file per name: no duplicates."""
    found = list(client.iter_vector_store_files(store))
    paths = Counter(str((f.attributes or {}).get("syncd_path")) for f in found)
    assert paths == Counter(names), paths
    assert {f.status for f in found} == {"completed"}
    files = Counter(f.filename for f in client.list_files())
    assert sum(files.values()) == len(names), files


def test_reconcile_into_a_store_under_faults(ws: Workspace) -> None:
    store = ws.client.create_vector_store("docs").id
    drop = ws.add_folder("docs", vector_stores=[store])
    names = {f"doc{i:02}.md" for i in range(30)}
    for name in names:
        (drop / name).write_text(f"{name}: searchable text\n")
    (drop / "broken.pdf").write_bytes(b"not a pdf")
    ws.emulator.set_faults(**FAULTS)
    runs: list[dict[str, Any]] = []
    until_clean(ws, runs)

    # Every file completed once; the unreadable one rejected once, never uploaded after.
    ws.emulator.clear_faults()
    check_store(ws.client, store, names)
    assert what(runs, "rejected", "broken.pdf") == 1
    rejected_at = next(
        i for i, r in enumerate(runs) for a in r["actions"] if a["what"] == "rejected"
    )
    assert what(runs[rejected_at + 1 :], "uploaded", "broken.pdf") == 0
    ws.emulator.set_faults(**FAULTS)

    # Renames: no upload, the path attribute follows.
    for i in range(5):
        (drop / f"doc{i:02}.md").rename(drop / f"renamed{i}.md")
    names = (names - {f"doc{i:02}.md" for i in range(5)}) | {f"renamed{i}.md" for i in range(5)}
    renames: list[dict[str, Any]] = []
    until_clean(ws, renames)
    assert not [a for r in renames for a in r["actions"] if a["what"] in ("uploaded", "replaced")]
    ws.emulator.clear_faults()
    check_store(ws.client, store, names)


def test_a_search_during_a_replacement_always_finds_the_document(ws: Workspace) -> None:
    ws.emulator.set_knobs(ingestion_seconds=0.5)
    store = ws.client.create_vector_store("docs").id
    drop = ws.add_folder("docs", vector_stores=[store])
    (drop / "guide.md").write_text("quokka habits, first edition\n")
    until_clean(ws, [])
    ws.emulator.set_faults(**FAULTS)
    searches: list[int] = []
    done = threading.Event()

    def search() -> None:
        with Client(ws.emulator.base_url, ws.api_key, retry=FAST_RETRY) as client:
            while not done.is_set():
                searches.append(len(client.search_vector_store(store, "quokka").data))

    searcher = threading.Thread(target=search)
    searcher.start()
    try:
        for edition in ("second", "third"):
            (drop / "guide.md").write_text(f"quokka habits, {edition} edition\n")
            until_clean(ws, [])
    finally:
        done.set()
        searcher.join()
    assert searches and 0 not in searches, Counter(searches)
    ws.emulator.clear_faults()
    check_store(ws.client, store, {"guide.md"})
