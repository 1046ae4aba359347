"""Every operation of today's API (tests/spec/openai-vector-stores.yaml: Files as served, Uploads,
Vector stores) answers in the spec's shape — the check ``test_schema.py`` makes for the v1
contract, with the same strictness (``additionalProperties: false`` on every object schema) and
these deliberate differences from the YAML as written:

* ``first_id``/``last_id`` of a list may be null (an empty list has neither; the service answers
  null there).
* The file object's ``expires_at`` and deprecated ``status_details`` may be null (the service
  sends null when unset), and its ``purpose`` may be ``evals``: the spec accepts ``evals`` on
  upload but leaves it out of the object's enum.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx2
import jsonschema
import pytest

from .conftest import Upload
from .spec_schemas import SPEC_DIR, AnswerRecorder, SpecSchemas


def _close_objects(node: Any) -> None:
    """``additionalProperties: false`` on every object schema with declared properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def _adjust(components: dict[str, Any]) -> None:
    """The deliberate differences named in the module docstring."""
    schemas = components["schemas"]
    _close_objects(schemas)
    for name in ("ListFilesResponse", "ListVectorStoresResponse", "ListVectorStoreFilesResponse"):
        for cursor in ("first_id", "last_id"):
            schemas[name]["properties"][cursor] = {"type": ["string", "null"]}
    file_object = schemas["OpenAIFile"]["properties"]
    file_object["expires_at"] = {"type": ["integer", "null"]}
    file_object["status_details"] = {"type": ["string", "null"]}
    file_object["purpose"]["enum"].append("evals")


SCHEMAS = SpecSchemas(
    SPEC_DIR / "openai-vector-stores.yaml", jsonschema.Draft202012Validator, _adjust
)


def test_the_vendored_spec_has_25_operations() -> None:
    assert len(SCHEMAS.operations) == 25


def test_every_operation_answers_in_the_spec_shape(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    emulator.set_knobs(ingestion_seconds=0)
    record = AnswerRecorder(SCHEMAS)

    # Files as served today.
    doc = record(
        "createFile",
        http.post("files", files={"file": ("d.md", b"# fox\n")}, data={"purpose": "assistants"}),
    )
    batch_file = record(
        "createFile",
        http.post("files", files={"file": ("b.jsonl", b"{}\n")}, data={"purpose": "batch"}),
    )
    record(
        "createFile",
        http.post("files", files={"file": ("e.jsonl", b"{}\n")}, data={"purpose": "evals"}),
    )
    record("listFiles", http.get("files"))
    record("listFiles", http.get("files", params={"limit": 1, "order": "asc"}))
    record("listFiles", http.get("files", params={"purpose": "nothing"}))  # empty: null cursors
    record("retrieveFile", http.get(f"files/{doc['id']}"))
    record("downloadFile", http.get(f"files/{batch_file['id']}/content"), json_body=False)

    # Uploads.
    content = b"part one|part two"
    created = record(
        "createUpload",
        http.post(
            "uploads",
            json={
                "filename": "big.txt",
                "purpose": "assistants",
                "bytes": len(content),
                "mime_type": "text/plain",
            },
        ),
    )
    parts = [
        record(
            "addUploadPart",
            http.post(f"uploads/{created['id']}/parts", files={"data": ("blob", chunk)}),
        )
        for chunk in (content[:9], content[9:])
    ]
    completed = record(
        "completeUpload",
        http.post(
            f"uploads/{created['id']}/complete",
            json={
                "part_ids": [p["id"] for p in parts],
                "md5": hashlib.md5(content, usedforsecurity=False).hexdigest(),
            },
        ),
    )
    assert completed["file"]["bytes"] == len(content)
    doomed = http.post(
        "uploads",
        json={"filename": "x.txt", "purpose": "batch", "bytes": 1, "mime_type": "text/plain"},
    ).json()
    record("cancelUpload", http.post(f"uploads/{doomed['id']}/cancel"))

    # Vector stores.
    store = record("createVectorStore", http.post("vector_stores", json={"name": "s"}))
    record("createVectorStore", http.post("vector_stores", json={"file_ids": [doc["id"]]}))
    vs = store["id"]
    record("listVectorStores", http.get("vector_stores"))
    record("getVectorStore", http.get(f"vector_stores/{vs}"))
    record(
        "modifyVectorStore",
        http.post(
            f"vector_stores/{vs}",
            json={"metadata": {"a": "b"}, "expires_after": {"anchor": "last_active_at", "days": 3}},
        ),
    )
    record("getVectorStore", http.get(f"vector_stores/{vs}"))  # with expires_after
    record("listVectorStoreFiles", http.get(f"vector_stores/{vs}/files"))  # empty
    record(
        "createVectorStoreFile",
        http.post(f"vector_stores/{vs}/files", json={"file_id": doc["id"], "attributes": {"n": 1}}),
    )
    bad = upload(content=b"nope", filename="bad.pdf")
    record(
        "createVectorStoreFile", http.post(f"vector_stores/{vs}/files", json={"file_id": bad["id"]})
    )
    record("getVectorStoreFile", http.get(f"vector_stores/{vs}/files/{bad['id']}"))  # failed
    record("listVectorStoreFiles", http.get(f"vector_stores/{vs}/files"))
    record(
        "updateVectorStoreFileAttributes",
        http.post(f"vector_stores/{vs}/files/{doc['id']}", json={"attributes": {"k": True}}),
    )
    record("getVectorStoreFile", http.get(f"vector_stores/{vs}/files/{doc['id']}"))
    record(
        "retrieveVectorStoreFileContent",
        http.get(f"vector_stores/{vs}/files/{doc['id']}/content"),
    )
    record(
        "searchVectorStore",
        http.post(f"vector_stores/{vs}/search", json={"query": "fox", "max_num_results": 5}),
    )
    emulator.set_knobs(stuck_rate=1.0)
    more = upload(content=b"more\n", filename="m.txt")
    batch = record(
        "createVectorStoreFileBatch",
        http.post(f"vector_stores/{vs}/file_batches", json={"file_ids": [more["id"]]}),
    )
    record("getVectorStoreFileBatch", http.get(f"vector_stores/{vs}/file_batches/{batch['id']}"))
    record(
        "listFilesInVectorStoreBatch",
        http.get(f"vector_stores/{vs}/file_batches/{batch['id']}/files"),
    )
    record(
        "cancelVectorStoreFileBatch",
        http.post(f"vector_stores/{vs}/file_batches/{batch['id']}/cancel"),
    )
    record("deleteVectorStoreFile", http.delete(f"vector_stores/{vs}/files/{doc['id']}"))
    record("deleteFile", http.delete(f"files/{bad['id']}"))
    record("deleteVectorStore", http.delete(f"vector_stores/{vs}"))

    record.validate_all()


def test_the_schema_check_can_fail() -> None:
    """Guards the check above against passing vacuously."""
    good = {
        "id": "file-x",
        "object": "vector_store.file",
        "usage_bytes": 0,
        "created_at": 1,
        "vector_store_id": "vs_x",
        "status": "in_progress",
        "last_error": None,
    }
    SCHEMAS.validate("getVectorStoreFile", good)
    for bad in (
        {**good, "status": "done"},
        {**good, "attributes": {f"k{i}": 1 for i in range(17)}},
        {**good, "last_error": {"code": "oops", "message": "x"}},
        {**good, "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            SCHEMAS.validate("getVectorStoreFile", bad)
