"""The client under the emulator's injected faults: 5xx, 429 with Retry-After, latency and dropped
connections, end to end over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.api import (
    BadRequestError,
    Client,
    FileObject,
    RequestRecord,
    RetryPolicy,
    UploadOutcomeUnknown,
)


def stored_by(files: list[FileObject], unknown: UploadOutcomeUnknown) -> list[FileObject]:
    """The files in ``files`` that the upload ``unknown`` describes may have stored: same name,
    size and purpose, created no earlier than a second before it was sent (whole seconds)."""
    return [
        f
        for f in files
        if (f.filename, f.bytes, f.purpose) == (unknown.filename, unknown.size, unknown.purpose)
        and f.created_at >= int(unknown.sent_at) - 1
    ]


@pytest.fixture
def world(client, make_file, jsonl):
    """Files, an assistant and a message with attachments, made while no faults are on."""
    docs = [
        client.create_file(make_file(f"d{i}.md", f"doc {i}\n".encode()), "assistants")
        for i in range(6)
    ]
    spare = client.create_file(make_file("spare.md", b"spare\n"), "assistants")
    tune_content = jsonl(2000)
    tune = client.create_file(make_file("t.jsonl", tune_content), "fine-tune")
    assistant = client.create_assistant(file_ids=[d.id for d in docs])
    thread = client.create_thread()
    message = client.create_message(thread.id, "hi", file_ids=[d.id for d in docs[:4]])
    return {
        "docs": docs,
        "spare": spare,
        "tune": tune,
        "tune_content": tune_content,
        "assistant": assistant,
        "thread": thread,
        "message": message,
    }


def test_every_idempotent_call_succeeds_under_failures_429s_and_latency(
    client, emulator, world, tmp_path
):
    docs, assistant = world["docs"], world["assistant"]
    thread, message = world["thread"], world["message"]
    emulator.set_faults(fail_rate=0.3, rate_limit_rate=0.2, latency_ms=2, seed=11)
    log: list[RequestRecord] = []
    client.request_log = log.append

    assert {f.id for f in client.list_files("assistants")} == {d.id for d in docs} | {
        world["spare"].id
    }
    assert client.retrieve_file(docs[0].id) == docs[0]
    assert client.retrieve_assistant(assistant.id).file_ids == [d.id for d in docs]
    dest = tmp_path / "download.jsonl"
    assert client.download_file(world["tune"].id, dest) == len(world["tune_content"])
    assert dest.read_bytes() == world["tune_content"]

    listed = client.iter_assistant_files(assistant.id, page_size=2)
    assert [a.id for a in listed] == [d.id for d in docs]
    assert client.get_assistant_file(assistant.id, docs[1].id).id == docs[1].id
    assert client.create_assistant_file(assistant.id, world["spare"].id).id == world["spare"].id
    assert client.delete_assistant_file(assistant.id, docs[0].id) is True
    assert client.delete_assistant_file(assistant.id, docs[0].id, missing_ok=True) is False

    in_message = client.iter_message_files(thread.id, message.id, order="desc", page_size=3)
    assert [m.id for m in in_message] == [d.id for d in reversed(docs[:4])]
    assert client.get_message_file(thread.id, message.id, docs[2].id).id == docs[2].id

    assert client.delete_file(docs[5].id) is True
    assert client.delete_file(docs[5].id, missing_ok=True) is False

    injected = emulator.fault_counts()
    assert injected["fail"] >= 3 and injected["rate_limit"] >= 3
    assert sum(1 for r in log if r.status is not None and r.status >= 500) == injected["fail"]
    assert sum(1 for r in log if r.status == 429) == injected["rate_limit"]
    emulator.clear_faults()
    assert [a.id for a in client.iter_assistant_files(assistant.id)] == [
        *(d.id for d in docs[1:5]),
        world["spare"].id,
    ]


def test_idempotent_calls_survive_dropped_connections(client, emulator, world, tmp_path):
    """Drops before and after processing: GETs retry; a delete or detach whose answer was lost
    finds the object gone on retry and reports it deleted; an attach is answered again."""
    docs, assistant = world["docs"], world["assistant"]
    emulator.set_faults(drop_rate=0.5, seed=5)
    assert len(client.list_files()) == 8
    dest = tmp_path / "t.jsonl"
    assert client.download_file(world["tune"].id, dest) == len(world["tune_content"])
    assert [a.id for a in client.iter_assistant_files(assistant.id, page_size=2)] == [
        d.id for d in docs
    ]
    assert client.create_assistant_file(assistant.id, world["spare"].id).id == world["spare"].id
    for doc in docs[:3]:
        assert client.delete_assistant_file(assistant.id, doc.id) is True
        assert client.delete_file(doc.id) is True
    injected = emulator.fault_counts()
    assert injected["drop_before"] > 0 and injected["drop_after"] > 0
    emulator.clear_faults()
    assert {f.id for f in client.list_files()} == {f.id for f in docs[3:]} | {
        world["spare"].id,
        world["tune"].id,
    }


def test_a_delete_whose_answer_was_lost_reports_deleted(client, emulator, make_file):
    file = client.create_file(make_file(), "assistants")
    emulator.set_faults(drop_rate=1.0, drop_phase="after", match="^DELETE", max_faults=1)
    assert client.delete_file(file.id) is True
    assert emulator.fault_counts()["drop_after"] == 1
    assert client.list_files() == []


@pytest.fixture(params=["streamed", "in memory"])
def upload(request, client) -> Callable[[Path, str], FileObject]:
    """``create_file`` as a caller uses it: streamed from the path (through httpx2), or with
    the bytes the caller read (straight to the lean transport)."""
    if request.param == "streamed":
        return client.create_file
    return lambda path, purpose: client.create_file(path, purpose, content=path.read_bytes())


def test_upload_dropped_after_storing_is_unknown_and_found(client, emulator, make_file, upload):
    path = make_file("guide.md", b"guide\n" * 50)
    emulator.set_faults(drop_rate=1.0, drop_phase="after", match="POST /v1/files$")
    with pytest.raises(UploadOutcomeUnknown) as caught:
        upload(path, "assistants")
    unknown = caught.value
    assert (unknown.filename, unknown.size, unknown.purpose) == ("guide.md", 300, "assistants")
    assert unknown.status is None
    emulator.clear_faults()

    stored = client.list_files()
    assert len(stored) == 1, "the client must not have sent the upload twice"
    assert stored_by(stored, unknown) == stored


def test_upload_dropped_before_storing_is_unknown_and_not_found(
    client, emulator, make_file, upload
):
    path = make_file("guide.md", b"guide\n" * 50)
    emulator.set_faults(drop_rate=1.0, drop_phase="before", match="POST /v1/files$")
    with pytest.raises(UploadOutcomeUnknown) as caught:
        upload(path, "assistants")
    emulator.clear_faults()
    assert stored_by(client.list_files(), caught.value) == []
    assert client.list_files() == []


def test_uploads_under_random_drops_never_duplicate(client, emulator, make_file, upload):
    """With --drop-rate on, every upload either succeeds or surfaces UploadOutcomeUnknown; the
    look-up then finds exactly the uploads that were stored, and nothing was stored twice."""
    emulator.set_faults(drop_rate=0.5, seed=3, match="POST /v1/files$")
    succeeded, unknown = [], []
    for i in range(12):
        path = make_file(f"u{i}.md", f"upload {i}\n".encode())
        try:
            succeeded.append(upload(path, "assistants"))
        except UploadOutcomeUnknown as exc:
            unknown.append(exc)
    injected = emulator.fault_counts()
    emulator.clear_faults()
    assert len(unknown) == injected["drop_before"] + injected["drop_after"] > 0

    stored = client.list_files()
    found = [stored_by(stored, u) for u in unknown]
    assert sum(len(f) for f in found) == injected["drop_after"]
    assert all(len(f) <= 1 for f in found)
    assert len(stored) == len(succeeded) + injected["drop_after"]
    assert len({f.filename for f in stored}) == len(stored)


def test_upload_5xx_is_unknown_429_is_retried(client, emulator, make_file, upload):
    path = make_file("a.md", b"a\n")
    emulator.set_faults(fail_rate=1.0, match="POST /v1/files$")
    with pytest.raises(UploadOutcomeUnknown) as caught:
        upload(path, "assistants")
    assert caught.value.status in (500, 502, 503)
    assert emulator.fault_counts()["fail"] == 1  # reported, not re-sent

    emulator.set_faults(fail_rate=0.0, rate_limit_rate=1.0, max_faults=3)
    created = upload(path, "assistants")
    assert emulator.fault_counts()["rate_limit"] == 3
    assert [f.id for f in client.list_files()] == [created.id]


def test_an_upload_refused_as_wrong_is_final_and_quotes_the_service(client, make_file, upload):
    with pytest.raises(BadRequestError) as caught:
        upload(make_file("notes.md", b"not json lines\n"), "fine-tune")
    assert caught.value.status == 400 and caught.value.message
    assert caught.value.path == "/v1/files"
    assert client.list_files() == []


def test_the_upload_budget_is_learnt_from_every_upload(client, emulator, make_file, upload):
    emulator.set_knobs(rate_limits=True, upload_rpm=50)
    upload(make_file("a.md", b"a\n"), "assistants")
    first = client.pacer.budget("uploads")
    upload(make_file("b.md", b"b\n"), "assistants")
    second = client.pacer.budget("uploads")
    assert first is not None and second is not None
    assert first[1] == second[1] == 50
    assert second[0] == first[0] - 1


def test_retry_after_from_the_emulator_is_waited_for(emulator, api_key):
    sleeps: list[float] = []
    policy = RetryPolicy(retry_after_cap=60.0)
    with Client(emulator.base_url, api_key, retry=policy, sleep=sleeps.append) as client:
        emulator.set_faults(rate_limit_rate=1.0, retry_after_ms=1500, max_faults=2)
        assert client.list_files() == []
    assert sleeps == [1.5, 1.5]
