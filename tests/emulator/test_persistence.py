"""State in a data directory survives restarts; state in memory does not."""

from __future__ import annotations

from pathlib import Path

import httpx2

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
