"""Files: upload, list, retrieve, download, delete — and the service's rules about them."""

from __future__ import annotations

import logging
import re
import socket
import time

import httpx2
import pytest

from .conftest import MakeAssistant, Upload
from .support import error_of

FILE_ID = re.compile(r"^file-[A-Za-z0-9]{24}$")


def test_upload_returns_the_file_object(http: httpx2.Client) -> None:
    before = int(time.time())
    response = http.post(
        "files", files={"file": ("guides/setup.md", b"# Setup\n")}, data={"purpose": "assistants"}
    )
    assert response.status_code == 200
    file = response.json()
    assert FILE_ID.match(file["id"])
    assert file == {
        "id": file["id"],
        "object": "file",
        "bytes": 8,
        "created_at": file["created_at"],
        "expires_at": None,
        "filename": "guides/setup.md",
        "purpose": "assistants",
        "status": "processed",
        "status_details": None,
    }
    assert before <= file["created_at"] <= int(time.time())


def test_ids_are_unique(upload: Upload) -> None:
    ids = {upload()["id"] for _ in range(20)}
    assert len(ids) == 20


def test_non_ascii_filenames_survive(upload: Upload, http: httpx2.Client) -> None:
    file = upload(filename="Übersicht – 東京.md")
    assert http.get(f"files/{file['id']}").json()["filename"] == "Übersicht – 東京.md"


def test_a_list_without_parameters_has_every_file_newest_first(
    upload: Upload, http: httpx2.Client
) -> None:
    """What SDK 1.20.0 sends: no limit, no cursor. The default page is 10,000 files."""
    uploaded = [upload(content=f"file {i}\n".encode())["id"] for i in range(25)]
    listing = http.get("files").json()
    assert listing["object"] == "list"
    assert listing["has_more"] is False
    assert [f["id"] for f in listing["data"]] == uploaded[::-1]
    assert (listing["first_id"], listing["last_id"]) == (uploaded[-1], uploaded[0])


def test_list_pages_follow_the_cursor(upload: Upload, http: httpx2.Client) -> None:
    uploaded = [upload(content=f"file {i}\n".encode())["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2, "order": "asc"}
    while True:
        page = http.get("files", params=params).json()
        seen += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        params["after"] = page["last_id"]
    assert seen == uploaded


@pytest.mark.parametrize(
    ("limit", "code"), [(0, "integer_below_min_value"), (10_001, "integer_above_max_value")]
)
def test_list_limit_is_1_to_10000(http: httpx2.Client, limit: int, code: str) -> None:
    response = http.get("files", params={"limit": limit})
    assert response.status_code == 400
    assert (error_of(response)["param"], error_of(response)["code"]) == ("limit", code)
    assert http.get("files", params={"limit": 10_000}).status_code == 200


def test_list_of_an_empty_service(http: httpx2.Client) -> None:
    assert http.get("files").json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_list_filters_by_purpose(upload: Upload, http: httpx2.Client) -> None:
    doc = upload()
    data = upload(content=b'{"a": 1}\n', filename="train.jsonl", purpose="fine-tune")
    assert [
        f["id"] for f in http.get("files", params={"purpose": "assistants"}).json()["data"]
    ] == [doc["id"]]
    assert [f["id"] for f in http.get("files", params={"purpose": "fine-tune"}).json()["data"]] == [
        data["id"]
    ]
    assert http.get("files", params={"purpose": "nothing"}).json()["data"] == []


def test_retrieve(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    response = http.get(f"files/{file['id']}")
    assert response.status_code == 200
    assert response.json() == file


def test_unknown_file_is_404_everywhere(http: httpx2.Client) -> None:
    missing = "file-000000000000000000000000"
    for response in (
        http.get(f"files/{missing}"),
        http.delete(f"files/{missing}"),
        http.get(f"files/{missing}/content"),
    ):
        assert response.status_code == 404
        assert error_of(response) == {
            "message": f"No such File object: {missing}",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }


def test_delete(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    response = http.delete(f"files/{file['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": file["id"], "object": "file", "deleted": True}
    assert http.get(f"files/{file['id']}").status_code == 404
    assert http.get("files").json()["data"] == []
    assert http.delete(f"files/{file['id']}").status_code == 404


def test_delete_detaches_the_file_everywhere(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    file, other = upload(), upload()
    assistant = make_assistant([file["id"], other["id"]])
    thread = http.post(
        "threads",
        json={
            "messages": [{"role": "user", "content": "hi", "file_ids": [file["id"], other["id"]]}]
        },
    ).json()
    message = http.post(
        f"threads/{thread['id']}/messages",
        json={"role": "user", "content": "more", "file_ids": [file["id"]]},
    ).json()

    assert http.delete(f"files/{file['id']}").status_code == 200

    assert [f["id"] for f in http.get(f"assistants/{assistant['id']}/files").json()["data"]] == [
        other["id"]
    ]
    assert http.get(f"assistants/{assistant['id']}").json()["file_ids"] == [other["id"]]
    assert http.get(f"assistants/{assistant['id']}/files/{file['id']}").status_code == 404
    assert http.get(f"threads/{thread['id']}/messages/{message['id']}/files").json()["data"] == []
    assert http.get(f"threads/{thread['id']}/messages/{message['id']}").json()["file_ids"] == []


def test_download_of_assistants_files_is_refused(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    response = http.get(f"files/{file['id']}/content")
    assert response.status_code == 400
    assert error_of(response)["message"] == "Not allowed to download files of purpose: assistants."


def test_fine_tune_files_download_byte_for_byte(upload: Upload, http: httpx2.Client) -> None:
    content = '{"prompt": "naïve ☃", "completion": "x"}\r\n{"messages": []}\n'.encode()
    file = upload(content=content, filename="train.jsonl", purpose="fine-tune")
    response = http.get(f"files/{file['id']}/content")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-length"] == str(len(content))


def test_large_download_streams_whole(upload: Upload, http: httpx2.Client) -> None:
    line = b'{"text": "' + b"x" * 1000 + b'"}\n'
    content = line * 3000  # ~3 MB, many download chunks
    file = upload(content=content, filename="big.jsonl", purpose="fine-tune")
    with http.stream("GET", f"files/{file['id']}/content") as response:
        received = b"".join(response.iter_bytes())
    assert received == content


def test_fine_tune_files_are_processed_after_a_delay(emulator_factory, api_key: str) -> None:
    server = emulator_factory(api_key=api_key, processing_delay=0.3)
    with httpx2.Client(
        base_url=server.base_url + "/", headers={"Authorization": f"Bearer {api_key}"}
    ) as client:
        tune = client.post(
            "files", files={"file": ("t.jsonl", b"{}\n")}, data={"purpose": "fine-tune"}
        ).json()
        doc = client.post(
            "files", files={"file": ("d.txt", b"doc")}, data={"purpose": "assistants"}
        ).json()
        assert tune["status"] == "uploaded"
        assert doc["status"] == "processed"
        assert client.get(f"files/{tune['id']}").json()["status"] == "uploaded"
        time.sleep(0.35)
        assert client.get(f"files/{tune['id']}").json()["status"] == "processed"
        statuses = {f["id"]: f["status"] for f in client.get("files").json()["data"]}
        assert statuses == {tune["id"]: "processed", doc["id"]: "processed"}


# --- what an upload must be ---------------------------------------------------------------------


def test_bad_purpose(http: httpx2.Client) -> None:
    response = http.post("files", files={"file": ("a.txt", b"x")}, data={"purpose": "search"})
    assert response.status_code == 400
    assert error_of(response)["message"] == (
        "'search' is not one of ['fine-tune', 'assistants', 'batch', 'user_data', 'vision', "
        "'evals'] - 'purpose'"
    )
    assert error_of(response)["param"] == "purpose"


@pytest.mark.parametrize("purpose", ["batch", "user_data", "vision", "evals"])
def test_todays_purposes_are_accepted(upload: Upload, purpose: str) -> None:
    assert upload(purpose=purpose)["purpose"] == purpose


def test_batch_files_expire_after_30_days_others_never(upload: Upload) -> None:
    batch = upload(content=b'{"a": 1}\n', filename="b.jsonl", purpose="batch")
    assert batch["expires_at"] == batch["created_at"] + 30 * 24 * 3600
    assert upload()["expires_at"] is None


def test_expires_after_sets_expires_at(http: httpx2.Client) -> None:
    response = http.post(
        "files",
        files={"file": ("a.txt", b"x")},
        data={
            "purpose": "user_data",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "3600",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["expires_at"] == response.json()["created_at"] + 3600


@pytest.mark.parametrize(
    ("anchor", "seconds", "param"),
    [
        ("created_at", "3599", "expires_after.seconds"),
        ("created_at", "2592001", "expires_after.seconds"),
        ("last_active_at", "3600", "expires_after.anchor"),
    ],
)
def test_expires_after_is_checked(http: httpx2.Client, anchor: str, seconds: str, param: str):
    response = http.post(
        "files",
        files={"file": ("a.txt", b"x")},
        data={
            "purpose": "assistants",
            "expires_after[anchor]": anchor,
            "expires_after[seconds]": seconds,
        },
    )
    assert response.status_code == 400
    assert error_of(response)["param"] == param


def test_an_expired_file_is_gone(emulator, upload: Upload, http: httpx2.Client) -> None:
    file = upload(content=b'{"a": 1}\n', filename="b.jsonl", purpose="batch")
    real_clock = emulator.store.clock
    emulator.store.clock = lambda: real_clock() + 31 * 24 * 3600
    try:
        assert http.get(f"files/{file['id']}").status_code == 404
        assert http.get("files").json()["data"] == []
    finally:
        emulator.store.clock = real_clock


def test_missing_purpose_or_file(http: httpx2.Client) -> None:
    no_purpose = http.post("files", files={"file": ("a.txt", b"x")})
    assert no_purpose.status_code == 400
    assert error_of(no_purpose)["param"] == "purpose"
    no_file = http.post("files", files={"purpose": (None, "assistants")})
    assert no_file.status_code == 400
    assert error_of(no_file) == {
        "message": "Missing required parameter: 'file'.",
        "type": "invalid_request_error",
        "param": "file",
        "code": None,
    }


def test_upload_must_be_multipart(http: httpx2.Client) -> None:
    response = http.post("files", json={"purpose": "assistants", "file": "x"})
    assert response.status_code == 400
    assert "multipart/form-data" in error_of(response)["message"]


def test_unknown_form_fields_are_refused(http: httpx2.Client) -> None:
    response = http.post(
        "files", files={"file": ("a.txt", b"x")}, data={"purpose": "assistants", "tag": "y"}
    )
    assert response.status_code == 400
    assert error_of(response)["message"] == "Unrecognized request argument supplied: tag"
    assert http.get("files").json()["data"] == []


def test_empty_files_are_rejected(http: httpx2.Client) -> None:
    response = http.post(
        "files", files={"file": ("empty.txt", b"")}, data={"purpose": "assistants"}
    )
    assert response.status_code == 400
    assert error_of(response)["param"] == "file"
    assert "empty" in error_of(response)["message"]
    assert http.get("files").json()["data"] == []


def test_size_limit_is_enforced_while_streaming(emulator_factory, api_key: str) -> None:
    server = emulator_factory(api_key=api_key, max_file_bytes=100_000)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx2.Client(base_url=server.base_url + "/", headers=headers) as client:
        at_limit = client.post(
            "files", files={"file": ("a.bin", b"a" * 100_000)}, data={"purpose": "assistants"}
        )
        assert at_limit.status_code == 200
        over = client.post(
            "files", files={"file": ("b.bin", b"b" * 1_000_000)}, data={"purpose": "assistants"}
        )
        assert over.status_code == 400
        error = error_of(over)
        assert error["param"] == "file"
        assert error["message"] == (
            "File is too large (1000000 bytes). The maximum file size is 97.66 KB."
        )
        assert [f["id"] for f in client.get("files").json()["data"]] == [at_limit.json()["id"]]
    assert server.store is not None
    # Nothing of the refused upload is left on disk: one blob, no partial upload.
    blobs = server.store.blob_path("x").parent
    assert [p.name for p in blobs.iterdir() if p.is_file()] == [at_limit.json()["id"]]
    assert list((blobs / ".incoming").iterdir()) == []


def test_fine_tune_files_must_be_jsonl(http: httpx2.Client) -> None:
    response = http.post(
        "files", files={"file": ("train.json", b"{}\n")}, data={"purpose": "fine-tune"}
    )
    assert response.status_code == 400
    assert (
        error_of(response)["message"] == "Invalid file format for Fine-Tuning API. Must be .jsonl"
    )


def test_fine_tune_lines_must_be_json_objects(http: httpx2.Client) -> None:
    for content, bad_line in (
        (b'{"a": 1}\n{"b": 2}\n[1, 2]\n', 3),
        (b'{"a": 1}\nnot json\n{"c": 3}\n', 2),
        (b'{"a": 1}\n\n{"c": 3}\n', 2),
        (b'"just a string"', 1),
        (b'{"a": 1}\n{"b": \xff}\n', 2),
    ):
        response = http.post(
            "files", files={"file": ("t.jsonl", content)}, data={"purpose": "fine-tune"}
        )
        assert response.status_code == 400, content
        assert error_of(response)["message"] == (
            "Expected file to have JSONL format, where every line is a valid JSON dictionary. "
            f"Line {bad_line} is not a dictionary."
        )
    assert http.get("files").json()["data"] == []


def test_fine_tune_file_without_final_newline_is_fine(upload: Upload) -> None:
    file = upload(content=b'{"a": 1}\n{"b": 2}', filename="t.jsonl", purpose="fine-tune")
    assert file["bytes"] == 17


def test_an_upload_cut_off_by_the_client_leaves_nothing(
    emulator, http: httpx2.Client, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncd.emulator")
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: emulator\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: 10000000\r\n\r\n"
    ).encode()
    part = b'--cut\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
    with socket.create_connection(("127.0.0.1", emulator.port)) as client:
        client.sendall(head + part + b"x" * 200_000)
        time.sleep(0.1)  # let the server start writing the blob
    incoming = emulator.store.blob_path("x").parent / ".incoming"
    deadline = time.monotonic() + 5
    while list(incoming.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(incoming.iterdir()) == []
    assert http.get("files").json()["data"] == []
    assert "POST /v1/files → client went away (9.537 MB in" in caplog.text
