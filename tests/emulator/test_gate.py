"""What every request goes through: the API key, the OpenAI-Beta header, request ids, bad URLs."""

from __future__ import annotations

import logging
import re
import time

import httpx2
import pytest

from .conftest import Upload
from .support import error_of

ASSISTANT_PATHS = [
    ("GET", "assistants/asst_x/files"),
    ("POST", "assistants"),
    ("GET", "assistants/asst_x/files/file-x"),
    ("POST", "threads"),
    ("GET", "threads/thread_x/messages/msg_x/files"),
]


def test_missing_key_is_401(emulator, http: httpx2.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        response = httpx2.get(emulator.base_url + "/files", headers=headers)
        assert response.status_code == 401
        error = error_of(response)
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"


def test_wrong_key_is_401_and_never_echoed(emulator) -> None:
    wrong = "sk-wrong-key-1234567890"
    response = httpx2.get(
        emulator.base_url + "/files", headers={"Authorization": f"Bearer {wrong}"}
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert "wrong" not in response.text and "7890" not in response.text


def test_without_a_configured_key_any_bearer_is_accepted(emulator_factory) -> None:
    server = emulator_factory()
    response = httpx2.get(server.base_url + "/files", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 200
    assert httpx2.get(server.base_url + "/files").status_code == 401


@pytest.mark.parametrize(("method", "path"), ASSISTANT_PATHS)
def test_assistants_and_threads_need_the_beta_header(
    emulator, api_key: str, method: str, path: str
) -> None:
    for beta in (None, "assistants=v2", "something-else"):
        headers = {"Authorization": f"Bearer {api_key}"} | ({"OpenAI-Beta": beta} if beta else {})
        response = httpx2.request(method, f"{emulator.base_url}/{path}", headers=headers, json={})
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_beta"


def test_beta_header_may_list_several_betas(emulator, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "OpenAI-Beta": "other=v3, assistants=v1"}
    response = httpx2.post(emulator.base_url + "/threads", headers=headers, json={})
    assert response.status_code == 200


def test_files_paths_do_not_need_the_beta_header(emulator, api_key: str) -> None:
    response = httpx2.get(
        emulator.base_url + "/files", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 200


def test_every_answer_has_a_request_id(upload: Upload, http: httpx2.Client, emulator) -> None:
    file = upload()
    responses = [
        http.get("files"),
        http.get(f"files/{file['id']}"),
        http.get("files/file-missing"),
        http.get("no/such/path"),
        httpx2.get(emulator.base_url + "/files"),  # 401
        http.get(f"{emulator.admin_url}/faults"),
    ]
    emulator.set_faults(fail_rate=1.0)
    responses.append(http.get("files"))  # injected 5xx
    emulator.set_faults(fail_rate=0.0, rate_limit_rate=1.0)
    responses.append(http.get("files"))  # injected 429
    request_ids = [r.headers["x-request-id"] for r in responses]
    assert all(rid.startswith("req_") and len(rid) == 36 for rid in request_ids)
    assert len(set(request_ids)) == len(request_ids)


def test_unknown_paths_and_methods_are_invalid_urls(http: httpx2.Client) -> None:
    for method, path in (("GET", "models"), ("PATCH", "files"), ("PUT", "files/file-x")):
        response = http.request(method, path)
        assert response.status_code == 404
        assert error_of(response)["message"] == f"Invalid URL ({method} /v1/{path})"


def test_each_request_is_logged_in_one_line(
    emulator, http: httpx2.Client, upload: Upload, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncd.emulator")
    upload(content=b"x" * 3000)
    http.get("files", params={"purpose": "assistants"})
    emulator.set_faults(fail_rate=1.0, seed=0)
    http.get("files")
    emulator.set_faults(fail_rate=0.0, drop_rate=1.0, drop_phase="after")
    with pytest.raises(httpx2.TransportError):
        http.delete("files/file-x")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "syncd.emulator"]

    # The dropped request is logged once the server has seen the connection close, which may
    # be just after the client noticed.
    deadline = time.monotonic() + 5
    while len(logged()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = logged()
    assert len(lines) == 4
    assert re.fullmatch(r"POST /v1/files → 200 \(3\.\d+ KB in, \d+ ms\)", lines[0])
    assert re.fullmatch(r"GET /v1/files\?purpose=assistants → 200 \(\d+ ms\)", lines[1])
    assert re.fullmatch(r"GET /v1/files → 50[023] \(injected\) \(\d+ ms\)", lines[2])
    assert re.fullmatch(
        r"DELETE /v1/files/file-x → connection dropped after processing \(injected\) \(\d+ ms\)",
        lines[3],
    )


def test_the_key_never_shows_in_the_servers_repr(emulator, api_key: str) -> None:
    assert api_key not in repr(emulator)
    assert emulator.base_url in repr(emulator)
