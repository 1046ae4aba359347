"""Threads, messages and message files: the Assistants v1 API that message files need."""

from __future__ import annotations

import re

import httpx2

from .conftest import Upload
from .support import error_of

THREAD_ID = re.compile(r"^thread_[A-Za-z0-9]{24}$")
MESSAGE_ID = re.compile(r"^msg_[A-Za-z0-9]{24}$")


def _message(http: httpx2.Client, thread_id: str, file_ids: list[str]) -> dict:
    response = http.post(
        f"threads/{thread_id}/messages",
        json={"role": "user", "content": "See attached.", "file_ids": file_ids},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_thread_and_message_objects(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    thread = http.post("threads", json={"metadata": {"k": "v"}}).json()
    assert THREAD_ID.match(thread["id"])
    assert thread == {
        "id": thread["id"],
        "object": "thread",
        "created_at": thread["created_at"],
        "metadata": {"k": "v"},
    }
    assert http.get(f"threads/{thread['id']}").json() == thread
    message = _message(http, thread["id"], [file["id"]])
    assert MESSAGE_ID.match(message["id"])
    assert message == {
        "id": message["id"],
        "object": "thread.message",
        "created_at": message["created_at"],
        "thread_id": thread["id"],
        "role": "user",
        "content": [{"type": "text", "text": {"value": "See attached.", "annotations": []}}],
        "file_ids": [file["id"]],
        "assistant_id": None,
        "run_id": None,
        "metadata": {},
    }
    assert http.get(f"threads/{thread['id']}/messages/{message['id']}").json() == message


def test_a_thread_can_start_with_messages(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    thread = http.post(
        "threads", json={"messages": [{"role": "user", "content": "hi", "file_ids": [file["id"]]}]}
    )
    assert thread.status_code == 200
    assert http.post("threads").status_code == 200  # no body at all is an empty thread


def test_message_files_list_and_get(upload: Upload, http: httpx2.Client) -> None:
    files = [upload(content=f"{i}".encode())["id"] for i in range(3)]
    thread = http.post("threads", json={}).json()
    message = _message(http, thread["id"], files)
    base = f"threads/{thread['id']}/messages/{message['id']}/files"
    listing = http.get(base).json()
    assert [f["id"] for f in listing["data"]] == files[::-1]
    assert listing["data"][0] == {
        "id": files[2],
        "object": "thread.message.file",
        "created_at": message["created_at"],
        "message_id": message["id"],
    }
    assert (listing["first_id"], listing["last_id"], listing["has_more"]) == (
        files[2],
        files[0],
        False,
    )
    assert http.get(f"{base}/{files[1]}").json() == {
        "id": files[1],
        "object": "thread.message.file",
        "created_at": message["created_at"],
        "message_id": message["id"],
    }


def test_message_files_paginate(upload: Upload, http: httpx2.Client) -> None:
    files = [upload(content=f"{i}".encode())["id"] for i in range(5)]
    thread = http.post("threads", json={}).json()
    message = _message(http, thread["id"], files)
    base = f"threads/{thread['id']}/messages/{message['id']}/files"
    first = http.get(base, params={"limit": 2, "order": "asc"}).json()
    assert [f["id"] for f in first["data"]] == files[:2]
    assert first["has_more"] is True
    rest = http.get(base, params={"limit": 10, "order": "asc", "after": first["last_id"]}).json()
    assert [f["id"] for f in rest["data"]] == files[2:]
    assert rest["has_more"] is False
    past_end = http.get(base, params={"after": files[0]}).json()
    assert past_end == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    assert http.get(base, params={"limit": 101}).status_code == 400


def test_unknown_thread_message_or_file(upload: Upload, http: httpx2.Client) -> None:
    thread = http.post("threads", json={}).json()
    message = _message(http, thread["id"], [upload()["id"]])
    gone_thread = "thread_000000000000000000000000"
    gone_message = "msg_000000000000000000000000"
    response = http.get(f"threads/{gone_thread}/messages/{message['id']}/files")
    assert response.status_code == 404
    assert error_of(response)["message"] == f"No thread found with id '{gone_thread}'."
    response = http.get(f"threads/{thread['id']}/messages/{gone_message}/files")
    assert response.status_code == 404
    assert error_of(response)["message"] == f"No message found with id '{gone_message}'."
    response = http.get(f"threads/{thread['id']}/messages/{message['id']}/files/file-nope")
    assert response.status_code == 404
    assert "file-nope" in error_of(response)["message"]
    # A message is found only under its own thread.
    other = http.post("threads", json={}).json()
    assert http.get(f"threads/{other['id']}/messages/{message['id']}/files").status_code == 404
    assert (
        http.post(
            f"threads/{gone_thread}/messages", json={"role": "user", "content": "x"}
        ).status_code
        == 404
    )


def test_ten_files_per_message(upload: Upload, http: httpx2.Client) -> None:
    files = [upload(content=f"{i}".encode())["id"] for i in range(11)]
    thread = http.post("threads", json={}).json()
    response = http.post(
        f"threads/{thread['id']}/messages", json={"role": "user", "content": "x", "file_ids": files}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "array_above_max_length"
    assert error_of(response)["param"] == "file_ids"
    assert len(_message(http, thread["id"], files[:10])["file_ids"]) == 10


def test_message_files_must_be_assistants_files(upload: Upload, http: httpx2.Client) -> None:
    tune = upload(content=b"{}\n", filename="t.jsonl", purpose="fine-tune")
    thread = http.post("threads", json={}).json()
    response = http.post(
        f"threads/{thread['id']}/messages",
        json={"role": "user", "content": "x", "file_ids": [tune["id"]]},
    )
    assert response.status_code == 400
    assert error_of(response)["param"] == "file_id"
    bad_thread = http.post(
        "threads", json={"messages": [{"role": "user", "content": "x", "file_ids": [tune["id"]]}]}
    )
    assert bad_thread.status_code == 400


def test_message_body_is_checked(http: httpx2.Client) -> None:
    thread = http.post("threads", json={}).json()
    path = f"threads/{thread['id']}/messages"
    assert error_of(http.post(path, json={"content": "x"}))["param"] == "role"
    assert error_of(http.post(path, json={"role": "assistant", "content": "x"}))["message"] == (
        "Invalid value: 'assistant'. Supported values are: 'user'."
    )
    assert error_of(http.post(path, json={"role": "user"}))["param"] == "content"
    assert (
        error_of(http.post(path, json={"role": "user", "content": "x", "file_ids": "f"}))["code"]
        == "invalid_type"
    )
