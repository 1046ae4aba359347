"""Every operation's answer validates against the contract's schemas (tests/spec/openai-files.yaml).

Two deliberate differences from validating against the YAML as written:

* ``first_id``/``last_id`` of the paginated lists may be null. The spec types them as strings,
  but an empty list has no first or last item and the service answers null there; the emulator
  does the same rather than invent an id.
* Stricter than the spec: every object schema gets ``additionalProperties: false``, so the
  emulator is shown to send nothing the contract does not declare — with the exceptions of
  today's service (``openai-vector-stores.yaml``, 2.3.0), which the v1 clients must tolerate: the
  file list is paginated (``has_more``, ``first_id``, ``last_id``), and the file object carries
  ``expires_at`` and the deprecated ``status_details``, both null when unset, as the service
  sends them (the spec types them as integer and string).

The vector-store operations are checked the same way in ``test_schema_vector_stores.py``.
"""

from __future__ import annotations

from typing import Any

import httpx2
import jsonschema
import pytest

from .conftest import MakeAssistant, Upload
from .spec_schemas import SPEC_DIR, AnswerRecorder, SpecSchemas

ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def _adjust(components: dict[str, Any]) -> None:
    """The deliberate differences named in the module docstring."""
    for schema in components["schemas"].values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    listing = components["schemas"]["ListFilesResponse"]["properties"]
    listing["has_more"] = {"type": "boolean"}
    listing["first_id"] = listing["last_id"] = {"type": ["string", "null"]}
    file_object = components["schemas"]["OpenAIFile"]["properties"]
    file_object["expires_at"] = {"type": ["integer", "null"]}
    file_object["status_details"] = {"type": ["string", "null"]}
    for name in ("ListAssistantFilesResponse", "ListMessageFilesResponse"):
        for cursor in ("first_id", "last_id"):
            components["schemas"][name]["properties"][cursor]["type"] = ["string", "null"]


SCHEMAS = SpecSchemas(SPEC_DIR / "openai-files.yaml", jsonschema.Draft4Validator, _adjust)


def test_the_vendored_spec_names_the_eleven_operations() -> None:
    assert sorted(SCHEMAS.operations) == sorted(
        [
            "listFiles",
            "createFile",
            "retrieveFile",
            "deleteFile",
            "downloadFile",
            "listAssistantFiles",
            "createAssistantFile",
            "getAssistantFile",
            "deleteAssistantFile",
            "listMessageFiles",
            "getMessageFile",
        ]
    )


def test_every_operation_answers_in_the_spec_shape(
    http: httpx2.Client, upload: Upload, make_assistant: MakeAssistant
) -> None:
    record = AnswerRecorder(SCHEMAS)

    assistant = make_assistant()
    tune = http.post(
        "files", files={"file": ("t.jsonl", b'{"a": 1}\n')}, data={"purpose": "fine-tune"}
    )
    record("createFile", tune)
    doc = record(
        "createFile",
        http.post("files", files={"file": ("d.md", b"# d\n")}, data={"purpose": "assistants"}),
    )
    tune_id, doc_id = tune.json()["id"], doc["id"]
    record("listFiles", http.get("files"))
    record("listFiles", http.get("files", params={"purpose": "nothing"}))
    record("retrieveFile", http.get(f"files/{tune_id}"))
    record("downloadFile", http.get(f"files/{tune_id}/content"), json_body=False)

    asst = assistant["id"]
    record("listAssistantFiles", http.get(f"assistants/{asst}/files"))  # empty: null cursors
    record("createAssistantFile", http.post(f"assistants/{asst}/files", json={"file_id": doc_id}))
    record("listAssistantFiles", http.get(f"assistants/{asst}/files"))
    record("getAssistantFile", http.get(f"assistants/{asst}/files/{doc_id}"))

    thread = http.post("threads", json={}).json()
    message = http.post(
        f"threads/{thread['id']}/messages",
        json={"role": "user", "content": "x", "file_ids": [doc_id]},
    ).json()
    files_path = f"threads/{thread['id']}/messages/{message['id']}/files"
    record("listMessageFiles", http.get(files_path))
    record("listMessageFiles", http.get(files_path, params={"after": doc_id}))  # empty page
    record("getMessageFile", http.get(f"{files_path}/{doc_id}"))

    record("deleteAssistantFile", http.delete(f"assistants/{asst}/files/{doc_id}"))
    record("deleteFile", http.delete(f"files/{doc_id}"))

    record.validate_all()


def test_the_schema_check_can_fail() -> None:
    """Guards the check above against passing vacuously."""
    good = {"id": "file-x", "object": "file", "deleted": True}
    SCHEMAS.validate("deleteFile", good)
    for bad in (
        {**good, "deleted": "yes"},
        {"id": "file-x", "object": "file"},
        {**good, "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            SCHEMAS.validate("deleteFile", bad)


def test_error_answers_of_every_operation_have_the_error_shape(
    http: httpx2.Client, emulator
) -> None:
    placeholders = {
        "{file_id}": "file-missing",
        "{assistant_id}": "asst_missing",
        "{thread_id}": "thread_missing",
        "{message_id}": "msg_missing",
    }
    checked = 0
    for method, template, _ in SCHEMAS.operations.values():
        path = template
        for placeholder, value in placeholders.items():
            path = path.replace(placeholder, value)
        kwargs: dict[str, Any] = {"json": {"file_id": "file-missing"}} if method == "POST" else {}
        unauthenticated = httpx2.request(method, emulator.base_url + path, **kwargs)
        answers = [unauthenticated]
        if "{" in template or method == "POST":  # something can be missing or wrong
            answers.append(http.request(method, path.lstrip("/"), **kwargs))
        for response in answers:
            assert 400 <= response.status_code < 500, (method, path, response.status_code)
            jsonschema.Draft7Validator(ERROR_SCHEMA).validate(response.json())
            checked += 1
    assert checked == 21  # 11 unauthenticated + 10 with a missing object or a bad body
