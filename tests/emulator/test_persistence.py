"""State in a data directory survives restarts; state in memory does not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx2

from syncd.emulator.store import SCHEMA_VERSION

KEY = "sk-test-persistence"


def _client(server) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v1"}
    return httpx2.Client(base_url=server.base_url + "/", headers=headers, timeout=10)


def test_everything_survives_a_restart(emulator_factory, tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    first = emulator_factory(data_dir=data_dir, api_key=KEY, processing_delay=0)
    with _client(first) as http:
        doc = http.post(
            "files", files={"file": ("d.md", b"# doc\n")}, data={"purpose": "assistants"}
        ).json()
        tune_content = b'{"a": 1}\n{"b": 2}\n'
        tune = http.post(
            "files", files={"file": ("t.jsonl", tune_content)}, data={"purpose": "fine-tune"}
        ).json()
        assistant = http.post("assistants", json={"model": "gpt-4", "file_ids": [doc["id"]]}).json()
        thread = http.post("threads", json={}).json()
        message = http.post(
            f"threads/{thread['id']}/messages",
            json={"role": "user", "content": "x", "file_ids": [doc["id"]]},
        ).json()
        files_before = http.get("files").json()
    first.stop()

    second = emulator_factory(data_dir=data_dir, api_key=KEY)
    with _client(second) as http:
        assert http.get("files").json() == files_before
        assert http.get(f"files/{tune['id']}/content").content == tune_content
        assert http.get(f"assistants/{assistant['id']}").json() == assistant
        assert http.get(f"threads/{thread['id']}/messages/{message['id']}").json() == message
        assert http.get(f"assistants/{assistant['id']}/files/{doc['id']}").status_code == 200

        # One small database and one blob per upload; deleting a file deletes its blob.
        assert (data_dir / "emulator.db").is_file()
        blobs = data_dir / "blobs"
        assert sorted(p.name for p in blobs.iterdir() if p.is_file()) == sorted(
            [doc["id"], tune["id"]]
        )
        http.delete(f"files/{tune['id']}")
        assert not (blobs / tune["id"]).exists()


def test_partial_uploads_left_by_a_crash_are_cleared(emulator_factory, tmp_path: Path) -> None:
    incoming = tmp_path / "blobs" / ".incoming"
    incoming.mkdir(parents=True)
    (incoming / "req_cut_short").write_bytes(b"half an upl")
    emulator_factory(data_dir=tmp_path)
    assert list(incoming.iterdir()) == []


def test_memory_state_is_gone_after_a_restart(emulator_factory) -> None:
    first = emulator_factory(api_key=KEY)
    with _client(first) as http:
        http.post("files", files={"file": ("d.md", b"x")}, data={"purpose": "assistants"})
        assert len(http.get("files").json()["data"]) == 1
    assert first.store is not None
    blob_dir = first.store.blob_path("x").parent
    first.stop()
    assert not blob_dir.exists()  # the private temporary directory is removed
    second = emulator_factory(api_key=KEY)
    with _client(second) as http:
        assert http.get("files").json()["data"] == []


def test_a_stopped_server_can_start_again_on_its_port(emulator_factory) -> None:
    server = emulator_factory(api_key=KEY)
    url = server.base_url
    server.stop()
    server.start()
    assert server.base_url == url
    with _client(server) as http:
        assert http.get("files").json()["data"] == []


def test_vector_stores_batches_and_uploads_survive_a_restart(
    emulator_factory, tmp_path: Path
) -> None:
    from syncd.emulator import Knobs

    data_dir = tmp_path / "state"
    first = emulator_factory(data_dir=data_dir, api_key=KEY, knobs=Knobs(ingestion_seconds=0))
    with _client(first) as http:
        doc = http.post(
            "files", files={"file": ("d.md", b"# doc\n")}, data={"purpose": "assistants"}
        ).json()
        store = http.post("vector_stores", json={"name": "kept", "metadata": {"k": "v"}}).json()
        vs = store["id"]
        http.post(f"vector_stores/{vs}/files", json={"file_id": doc["id"], "attributes": {"a": 1}})
        batch = http.post(f"vector_stores/{vs}/file_batches", json={"file_ids": [doc["id"]]}).json()
        upload = http.post(
            "uploads",
            json={"filename": "u.txt", "purpose": "batch", "bytes": 6, "mime_type": "text/plain"},
        ).json()
        part = http.post(f"uploads/{upload['id']}/parts", files={"data": ("b", b"abc")}).json()
        before = {
            "store": http.get(f"vector_stores/{vs}").json(),
            "file": http.get(f"vector_stores/{vs}/files/{doc['id']}").json(),
            "batch": http.get(f"vector_stores/{vs}/file_batches/{batch['id']}").json(),
        }
    first.stop()

    second = emulator_factory(data_dir=data_dir, api_key=KEY)
    with _client(second) as http:
        assert http.get(f"vector_stores/{vs}").json() == before["store"]
        assert http.get(f"vector_stores/{vs}/files/{doc['id']}").json() == before["file"]
        assert http.get(f"vector_stores/{vs}/file_batches/{batch['id']}").json() == before["batch"]
        # The upload goes on where it stopped: its first part was kept.
        rest = http.post(f"uploads/{upload['id']}/parts", files={"data": ("b", b"def")}).json()
        done = http.post(
            f"uploads/{upload['id']}/complete", json={"part_ids": [part["id"], rest["id"]]}
        ).json()
        assert http.get(f"files/{done['file']['id']}/content").content == b"abcdef"


def test_a_data_directory_from_before_vector_stores_is_migrated(
    emulator_factory, tmp_path: Path
) -> None:
    """Version 0: the files table had no ``expires_at`` (nor ``head``) and the database no
    user_version."""
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "file-old").write_bytes(b"old\n")
    db = sqlite3.connect(tmp_path / "emulator.db")
    db.execute(
        "CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
        " bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, filename TEXT NOT NULL,"
        " purpose TEXT NOT NULL, processed_at REAL NOT NULL)"
    )
    db.execute(
        "INSERT INTO files (id, bytes, created_at, filename, purpose, processed_at)"
        " VALUES ('file-old', 4, 1700000000, 'old.md', 'assistants', 0)"
    )
    db.commit()
    db.close()
    server = emulator_factory(data_dir=tmp_path, api_key=KEY)
    with _client(server) as http:
        listed = http.get("files").json()["data"]
        assert [(f["id"], f["expires_at"]) for f in listed] == [("file-old", None)]
        assert listed == [http.get("files/file-old").json()]
        vs = http.post("vector_stores", json={"file_ids": ["file-old"]})
        assert vs.status_code == 200, vs.text
    with sqlite3.connect(tmp_path / "emulator.db") as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_data_directory_of_version_1_is_migrated(emulator_factory, tmp_path: Path) -> None:
    """Version 1: files kept no ``head`` (the JSON of their object before the status), from
    which pages of files are made."""
    (tmp_path / "blobs").mkdir()
    db = sqlite3.connect(tmp_path / "emulator.db")
    db.execute(
        "CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
        " bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, filename TEXT NOT NULL,"
        " purpose TEXT NOT NULL, processed_at REAL NOT NULL, expires_at INTEGER)"
    )
    rows = [
        ("file-a", 4, 1700000000, "a.md", "assistants", 0, None),
        ("file-b", 9, 1700000001, 'q"uote\\ü.jsonl', "batch", 0, 4000000000),
        ("file-c", 2, 1700000002, "t.jsonl", "fine-tune", 4000000000, None),  # uploaded
    ]
    db.executemany("INSERT INTO files VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with _client(emulator_factory(data_dir=tmp_path, api_key=KEY)) as http:
        listed = http.get("files", params={"order": "asc"}).json()["data"]
        assert [f["id"] for f in listed] == ["file-a", "file-b", "file-c"]
        assert listed == [http.get(f"files/{row[0]}").json() for row in rows]
        assert [f["status"] for f in listed] == ["processed", "processed", "uploaded"]
