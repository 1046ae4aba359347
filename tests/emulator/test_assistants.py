"""Assistants and their files: create, attach, list (paginated), retrieve, detach, delete."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from .conftest import MakeAssistant, Upload
from .support import error_of

ASSISTANT_ID = re.compile(r"^asst_[A-Za-z0-9]{24}$")


def test_create_get_delete_assistant(upload: Upload, http: httpx2.Client) -> None:
    file = upload()
    response = http.post(
        "assistants",
        json={
            "model": "gpt-4-turbo",
            "name": "Docs",
            "instructions": "Answer from the docs.",
            "tools": [{"type": "retrieval"}],
            "file_ids": [file["id"]],
            "metadata": {"owner": "syncd"},
        },
    )
    assert response.status_code == 200
    assistant = response.json()
    assert ASSISTANT_ID.match(assistant["id"])
    assert assistant == {
        "id": assistant["id"],
        "object": "assistant",
        "created_at": assistant["created_at"],
        "name": "Docs",
        "description": None,
        "model": "gpt-4-turbo",
        "instructions": "Answer from the docs.",
        "tools": [{"type": "retrieval"}],
        "file_ids": [file["id"]],
        "metadata": {"owner": "syncd"},
    }
    assert http.get(f"assistants/{assistant['id']}").json() == assistant

    deleted = http.delete(f"assistants/{assistant['id']}")
    assert deleted.json() == {"id": assistant["id"], "object": "assistant.deleted", "deleted": True}
    assert http.get(f"assistants/{assistant['id']}").status_code == 404
    # Deleting an assistant leaves its files alone.
    assert http.get(f"files/{file['id']}").status_code == 200


def test_unknown_assistant_is_404(http: httpx2.Client) -> None:
    missing = "asst_000000000000000000000000"
    for response in (
        http.get(f"assistants/{missing}"),
        http.delete(f"assistants/{missing}"),
        http.get(f"assistants/{missing}/files"),
        http.post(f"assistants/{missing}/files", json={"file_id": "file-x"}),
        http.get(f"assistants/{missing}/files/file-x"),
        http.delete(f"assistants/{missing}/files/file-x"),
    ):
        assert response.status_code == 404
        assert error_of(response) == {
            "message": f"No assistant found with id '{missing}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_model_is_required(http: httpx2.Client) -> None:
    response = http.post("assistants", json={"name": "x"})
    assert response.status_code == 400
    assert error_of(response)["message"] == "Missing required parameter: 'model'."


def test_assistants_list(make_assistant: MakeAssistant, http: httpx2.Client) -> None:
    made = [make_assistant(name=f"a{i}")["id"] for i in range(3)]
    listing = http.get("assistants").json()
    assert [a["id"] for a in listing["data"]] == made[::-1]


def test_attach_list_get_detach(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    assistant = make_assistant()
    file = upload()
    attached = http.post(f"assistants/{assistant['id']}/files", json={"file_id": file["id"]})
    assert attached.status_code == 200
    assistant_file = attached.json()
    assert assistant_file == {
        "id": file["id"],
        "object": "assistant.file",
        "created_at": assistant_file["created_at"],
        "assistant_id": assistant["id"],
    }
    assert http.get(f"assistants/{assistant['id']}/files/{file['id']}").json() == assistant_file
    assert http.get(f"assistants/{assistant['id']}/files").json() == {
        "object": "list",
        "data": [assistant_file],
        "first_id": file["id"],
        "last_id": file["id"],
        "has_more": False,
    }
    assert http.get(f"assistants/{assistant['id']}").json()["file_ids"] == [file["id"]]

    detached = http.delete(f"assistants/{assistant['id']}/files/{file['id']}")
    assert detached.json() == {
        "id": file["id"],
        "object": "assistant.file.deleted",
        "deleted": True,
    }
    assert http.get(f"assistants/{assistant['id']}/files").json()["data"] == []
    missing = http.get(f"assistants/{assistant['id']}/files/{file['id']}")
    assert missing.status_code == 404
    assert http.delete(f"assistants/{assistant['id']}/files/{file['id']}").status_code == 404
    # Detaching leaves the file itself alone.
    assert http.get(f"files/{file['id']}").status_code == 200


def test_attaching_twice_answers_the_existing_attachment(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    file = upload()
    assistant = make_assistant([file["id"]])
    first = http.get(f"assistants/{assistant['id']}/files/{file['id']}").json()
    again = http.post(f"assistants/{assistant['id']}/files", json={"file_id": file["id"]})
    assert again.status_code == 200
    assert again.json() == first
    assert len(http.get(f"assistants/{assistant['id']}/files").json()["data"]) == 1


def test_attaching_needs_an_existing_assistants_file(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    assistant = make_assistant()
    missing = http.post(
        f"assistants/{assistant['id']}/files", json={"file_id": "file-000000000000000000000000"}
    )
    assert missing.status_code == 404
    assert error_of(missing)["message"] == "No such File object: file-000000000000000000000000"
    assert error_of(missing)["param"] == "file_id"

    tune = upload(content=b"{}\n", filename="t.jsonl", purpose="fine-tune")
    wrong = http.post(f"assistants/{assistant['id']}/files", json={"file_id": tune["id"]})
    assert wrong.status_code == 400
    assert error_of(wrong)["param"] == "file_id"
    assert "purpose 'assistants'" in error_of(wrong)["message"]
    at_creation = http.post("assistants", json={"model": "gpt-4", "file_ids": [tune["id"]]})
    assert at_creation.status_code == 400
    assert http.get("assistants").json()["data"] == [assistant]


def test_attach_request_body_is_checked(make_assistant: MakeAssistant, http: httpx2.Client) -> None:
    path = f"assistants/{make_assistant()['id']}/files"
    assert error_of(http.post(path, json={}))["message"] == "Missing required parameter: 'file_id'."
    assert error_of(http.post(path, json={"file_id": 5}))["code"] == "invalid_type"
    assert error_of(http.post(path, json={"file_id": "f", "x": 1}))["message"] == (
        "Unrecognized request argument supplied: x"
    )
    assert error_of(
        http.post(path, content=b"{not json", headers={"content-type": "application/json"})
    )["message"].startswith("We could not parse the JSON body of your request.")


def test_twenty_files_per_assistant(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    files = [upload(content=f"{i}".encode())["id"] for i in range(21)]
    too_many = http.post("assistants", json={"model": "gpt-4", "file_ids": files})
    assert too_many.status_code == 400
    assert error_of(too_many) == {
        "message": "Invalid 'file_ids': array too long. Expected an array with maximum length 20, "
        "but got an array with length 21 instead.",
        "type": "invalid_request_error",
        "param": "file_ids",
        "code": "array_above_max_length",
    }
    assistant = make_assistant(files[:20])
    over = http.post(f"assistants/{assistant['id']}/files", json={"file_id": files[20]})
    assert over.status_code == 400
    assert "maximum of 20 files" in error_of(over)["message"]
    http.delete(f"assistants/{assistant['id']}/files/{files[0]}")
    assert (
        http.post(f"assistants/{assistant['id']}/files", json={"file_id": files[20]}).status_code
        == 200
    )


def test_the_limit_holds_under_concurrent_attaches(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client
) -> None:
    files = [upload(content=f"{i}".encode())["id"] for i in range(30)]
    assistant = make_assistant()

    def attach(file_id: str) -> int:
        return http.post(
            f"assistants/{assistant['id']}/files", json={"file_id": file_id}
        ).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attach, files))
    assert sorted(statuses) == [200] * 20 + [400] * 10
    assert len(http.get(f"assistants/{assistant['id']}").json()["file_ids"]) == 20


# --- pagination -------------------------------------------------------------------------------


@pytest.fixture
def five_attached(upload: Upload, make_assistant: MakeAssistant) -> tuple[str, list[str]]:
    """An assistant with five files attached in one request (same second), oldest first."""
    files = [upload(content=f"{i}".encode())["id"] for i in range(5)]
    return make_assistant(files)["id"], files


def _page(http: httpx2.Client, assistant_id: str, **params: str | int) -> dict:
    response = http.get(f"assistants/{assistant_id}/files", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_default_order_is_newest_first(http: httpx2.Client, five_attached) -> None:
    assistant_id, files = five_attached
    page = _page(http, assistant_id)
    assert [f["id"] for f in page["data"]] == files[::-1]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (files[4], files[0], False)


def test_ascending_order(http: httpx2.Client, five_attached) -> None:
    assistant_id, files = five_attached
    assert [f["id"] for f in _page(http, assistant_id, order="asc")["data"]] == files


def test_walking_pages_with_after(http: httpx2.Client, five_attached) -> None:
    assistant_id, files = five_attached
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "order": "asc"}
        if after:
            params["after"] = after
        page = _page(http, assistant_id, **params)
        seen += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == files


def test_before_gives_the_items_nearest_the_cursor(http: httpx2.Client, five_attached) -> None:
    assistant_id, files = five_attached
    page = _page(http, assistant_id, order="asc", before=files[4], limit=2)
    assert [f["id"] for f in page["data"]] == files[2:4]
    assert page["has_more"] is True
    page = _page(http, assistant_id, order="asc", before=files[2], limit=2)
    assert [f["id"] for f in page["data"]] == files[0:2]
    assert page["has_more"] is False
    between = _page(http, assistant_id, order="desc", after=files[4], before=files[1])
    assert [f["id"] for f in between["data"]] == [files[3], files[2]]


def test_a_page_past_the_end_is_empty(http: httpx2.Client, five_attached) -> None:
    assistant_id, files = five_attached
    page = _page(http, assistant_id, after=files[0])  # desc: the oldest is the last
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_empty_list_has_null_cursors(make_assistant: MakeAssistant, http: httpx2.Client) -> None:
    page = _page(http, make_assistant()["id"])
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"limit": 0}, "limit", "integer_below_min_value"),
        ({"limit": 101}, "limit", "integer_above_max_value"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"order": "newest"}, "order", "invalid_value"),
        ({"after": "file-gone"}, "after", "invalid_value"),
        ({"before": "file-gone"}, "before", "invalid_value"),
    ],
)
def test_bad_pagination_parameters(http: httpx2.Client, five_attached, params, param, code) -> None:
    assistant_id, _ = five_attached
    response = http.get(f"assistants/{assistant_id}/files", params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == (param, code)


def test_limit_bounds_are_inclusive(http: httpx2.Client, five_attached) -> None:
    assistant_id, _ = five_attached
    assert len(_page(http, assistant_id, limit=1)["data"]) == 1
    assert _page(http, assistant_id, limit=1)["has_more"] is True
    assert len(_page(http, assistant_id, limit=100)["data"]) == 5


def test_order_is_by_time_then_insertion(
    upload: Upload, make_assistant: MakeAssistant, http: httpx2.Client, emulator, monkeypatch
) -> None:
    """Attachments sort by their second first, then by the order they were made in."""
    files = [upload(content=f"{i}".encode())["id"] for i in range(4)]
    assistant = make_assistant()
    for file_id, when in zip(files, [2e9, 1e9, 2e9, 1.5e9], strict=True):
        monkeypatch.setattr(emulator.store, "clock", lambda when=when: float(when))
        http.post(f"assistants/{assistant['id']}/files", json={"file_id": file_id})
    page = _page(http, assistant["id"], order="asc")
    assert [f["id"] for f in page["data"]] == [files[1], files[3], files[0], files[2]]
    assert [f["created_at"] for f in page["data"]] == [
        1_000_000_000,
        1_500_000_000,
        2_000_000_000,
        2_000_000_000,
    ]
