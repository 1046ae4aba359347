"""``syncd run`` syncing into a vector store while the emulator fails or drops a fifth of its
requests: files settle ``completed`` once each as they are dropped in, an unreadable one is
rejected once and never sent again, a rename sends no upload."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from syncd.api import Client

from .harness import DaemonProcess, FolderDef, eventually, holds, write_config

pytestmark = pytest.mark.timeout(240)

FAULTS = {
    "fail_rate": 0.1,
    "drop_rate": 0.1,
    "seed": 7,
    "match": r"^(?!POST /v1/vector_stores/[^/]+/search)",
}


def store_paths(client: Client, store: str) -> tuple[Counter[str], set[str]]:
    found = list(client.iter_vector_store_files(store))
    paths = Counter(str((f.attributes or {}).get("syncd_path")) for f in found)
    return paths, {f.status for f in found}


def test_the_daemon_syncs_into_a_store_under_faults(
    tmp_path: Path, emulator, api_key: str, client: Client, daemons: list[DaemonProcess]
) -> None:
    store = client.create_vector_store("docs").id
    drop = tmp_path / "drop"
    drop.mkdir()
    config = write_config(
        tmp_path / "syncd.toml",
        emulator.base_url,
        tmp_path / "state",
        [FolderDef("docs", drop, vector_stores=[store])],
        sync={"rescan_interval_seconds": 10},
    )
    emulator.set_faults(**FAULTS)
    daemon = DaemonProcess(config, api_key)
    daemons.append(daemon)
    daemon.wait_for_line("ready:")
    names = {f"note{i}.md" for i in range(15)}
    for name in names:
        (drop / name).write_text(f"{name}\n")
    (drop / "broken.pdf").write_bytes(b"not a pdf")

    def settled(expected: set[str]) -> None:
        paths, statuses = store_paths(client, store)
        holds(paths == Counter(expected) and statuses == {"completed"})

    eventually(lambda: settled(names), timeout=120)
    daemon.wait_for_line(r"rejected \[docs\] broken\.pdf", timeout=60)
    (drop / "note0.md").rename(drop / "moved.md")
    names = (names - {"note0.md"}) | {"moved.md"}
    eventually(lambda: settled(names), timeout=60)
    assert daemon.stop() == 0
    emulator.clear_faults()
    assert Counter(f.filename for f in client.list_files()) == Counter(
        {name: 1 for name in names - {"moved.md"}} | {"note0.md": 1}
    )
    assert daemon.count(r"rejected \[docs\] broken\.pdf") == 1
    # Sent once at most (a lost answer is adopted, not sent again), never after its rejection.
    assert daemon.count(r"uploaded \[docs\] broken\.pdf") <= 1
    assert daemon.count(r"uploaded \[docs\] moved\.md") == 0
