"""``assistants_api: retired``: the Assistants API as today's service answers it."""

from __future__ import annotations

import httpx2
import pytest

from .conftest import MakeAssistant, Upload
from .support import error_of


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "assistants"),
        ("POST", "assistants"),
        ("GET", "assistants/asst_x/files"),
        ("POST", "threads"),
    ],
)
def test_v1_calls_answer_invalid_beta(emulator, http: httpx2.Client, method: str, path: str):
    emulator.set_knobs(assistants_api="retired")
    response = http.request(method, path, json={"model": "gpt-4"})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_beta")
    assert error["message"].startswith("The v1 Assistants API has been deprecated.")


def test_without_the_v1_header_the_api_is_gone(emulator, api_key: str) -> None:
    emulator.set_knobs(assistants_api="retired")
    for beta in ({"OpenAI-Beta": "assistants=v2"}, {}):
        response = httpx2.get(
            emulator.base_url + "/assistants",
            headers={"Authorization": f"Bearer {api_key}", **beta},
        )
        assert response.status_code == 404
        assert error_of(response)["message"] == "Invalid URL (GET /v1/assistants)"


def test_files_and_vector_stores_keep_working(
    emulator, http: httpx2.Client, upload: Upload, make_assistant: MakeAssistant
) -> None:
    assistant = make_assistant()
    emulator.set_knobs(assistants_api="retired")
    file = upload()
    assert http.get(f"files/{file['id']}").status_code == 200
    assert http.post("vector_stores", json={"file_ids": [file["id"]]}).status_code == 200
    assert http.get(f"assistants/{assistant['id']}").status_code == 400
    emulator.set_knobs(assistants_api="v1")  # and back: the state was kept
    assert http.get(f"assistants/{assistant['id']}").status_code == 200
