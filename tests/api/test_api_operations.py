"""Every operation of the client, end to end over HTTP against the emulator."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from syncd.api import (
    AssistantFile,
    BadRequestError,
    Client,
    FileObject,
    MessageFile,
    NotFoundError,
    RequestRecord,
    TimeoutError,
)

# --- files ------------------------------------------------------------------------------------


def test_upload_retrieve_list_and_delete(client, make_file):
    path = make_file("guides/setup.md", b"# Setup\n" * 100)
    created = client.create_file(path, "assistants")
    assert isinstance(created, FileObject)
    assert created.id.startswith("file-")
    assert (created.filename, created.bytes, created.purpose) == ("setup.md", 800, "assistants")
    assert abs(created.created_at - time.time()) < 5

    assert client.retrieve_file(created.id) == created
    assert [f.id for f in client.list_files()] == [created.id]

    assert client.delete_file(created.id) is True
    assert client.list_files() == []
    with pytest.raises(NotFoundError):
        client.retrieve_file(created.id)


def test_upload_under_another_name_keeps_unicode(client, make_file):
    path = make_file("x.txt", b"caf\xc3\xa9\n")
    created = client.create_file(path, "assistants", filename="résumé notes.txt")
    assert created.filename == "résumé notes.txt"
    assert client.retrieve_file(created.id).filename == "résumé notes.txt"


def test_list_files_filters_by_purpose(client, make_file, jsonl):
    doc = client.create_file(make_file("a.md", b"a\n"), "assistants")
    tune = client.create_file(make_file("t.jsonl", jsonl(3)), "fine-tune")
    assert {f.id for f in client.list_files()} == {doc.id, tune.id}
    assert [f.id for f in client.list_files("assistants")] == [doc.id]
    assert [f.id for f in client.list_files(purpose="fine-tune")] == [tune.id]


def test_bad_upload_is_a_bad_request_with_the_services_reason(client, make_file):
    with pytest.raises(BadRequestError) as caught:
        client.create_file(make_file("a.md", b"a\n"), "fine-tune")
    error = caught.value
    assert error.status == 400
    assert error.param == "file"
    assert error.type == "invalid_request_error"
    assert ".jsonl" in error.message
    assert error.request_id and error.request_id.startswith("req_")


def test_download_to_a_path_streams_the_content_and_leaves_no_partial_file(
    client, make_file, jsonl, tmp_path
):
    content = jsonl(5000)
    created = client.create_file(make_file("train.jsonl", content), "fine-tune")
    dest = tmp_path / "out" / "train.jsonl"
    dest.parent.mkdir()
    assert client.download_file(created.id, dest) == len(content)
    assert dest.read_bytes() == content
    assert sorted(p.name for p in dest.parent.iterdir()) == ["train.jsonl"]


def test_download_to_a_stream(client, make_file, jsonl):
    content = jsonl(10)
    created = client.create_file(make_file("t.jsonl", content), "fine-tune")
    out = io.BytesIO(b"prefix:")
    out.seek(0, io.SEEK_END)
    assert client.download_file(created.id, out) == len(content)
    assert out.getvalue() == b"prefix:" + content


def test_failed_download_leaves_no_file_behind(client, make_file, tmp_path):
    created = client.create_file(make_file("a.md", b"a\n"), "assistants")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BadRequestError, match="Not allowed to download"):
        client.download_file(created.id, out / "a.md")
    with pytest.raises(NotFoundError):
        client.download_file("file-missing", out / "b.md")
    assert list(out.iterdir()) == []


def test_not_found_names_the_object_and_the_request(client):
    with pytest.raises(NotFoundError) as caught:
        client.retrieve_file("file-abc")
    error = caught.value
    assert error.status == 404
    assert error.message == "No such File object: file-abc"
    assert str(error) == f"404 No such File object: file-abc (request {error.request_id})"


def test_delete_of_something_already_gone_needs_missing_ok(client, make_file):
    created = client.create_file(make_file(), "assistants")
    assert client.delete_file(created.id) is True
    with pytest.raises(NotFoundError):
        client.delete_file(created.id)
    assert client.delete_file(created.id, missing_ok=True) is False


def test_wait_processed_polls_until_a_fine_tune_file_is_processed(
    emulator_factory, api_key, tmp_path, jsonl
):
    server = emulator_factory(api_key=api_key, processing_delay=0.3)
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(2))
    with Client(server.base_url, api_key) as client:
        created = client.create_file(path, "fine-tune")
        assert created.status == "uploaded"
        done = client.wait_processed(created.id, timeout=10, poll=0.05)
        assert done.status == "processed"
        assert done.id == created.id


# --- assistant files ----------------------------------------------------------------------------


@pytest.fixture
def uploaded(client, make_file):
    """Upload ``n`` small assistants files and return them, oldest first."""

    def upload(n: int) -> list[FileObject]:
        return [
            client.create_file(make_file(f"f{i}.md", f"file {i}\n".encode()), "assistants")
            for i in range(n)
        ]

    return upload


def test_assistant_files_attach_get_list_and_detach(client, uploaded):
    files = uploaded(2)
    assistant = client.create_assistant(name="docs")
    assert client.retrieve_assistant(assistant.id) == assistant
    assert list(client.iter_assistant_files(assistant.id)) == []

    attached = client.create_assistant_file(assistant.id, files[0].id)
    assert isinstance(attached, AssistantFile)
    assert (attached.id, attached.assistant_id) == (files[0].id, assistant.id)
    assert client.get_assistant_file(assistant.id, files[0].id) == attached
    assert client.retrieve_assistant(assistant.id).file_ids == [files[0].id]

    assert client.delete_assistant_file(assistant.id, files[0].id) is True
    with pytest.raises(NotFoundError):
        client.get_assistant_file(assistant.id, files[0].id)
    with pytest.raises(NotFoundError):
        client.delete_assistant_file(assistant.id, files[0].id)
    assert client.delete_assistant_file(assistant.id, files[0].id, missing_ok=True) is False
    # Detaching leaves the file itself in place.
    assert client.retrieve_file(files[0].id).id == files[0].id


def test_assistant_files_are_listed_across_pages_in_both_orders(client, uploaded):
    files = uploaded(7)
    assistant = client.create_assistant(file_ids=[f.id for f in files])
    log: list[RequestRecord] = []
    client.request_log = log.append

    ascending = [a.id for a in client.iter_assistant_files(assistant.id, page_size=3)]
    assert ascending == [f.id for f in files]
    assert [r.path for r in log] == [f"/assistants/{assistant.id}/files"] * 3

    descending = list(client.iter_assistant_files(assistant.id, order="desc", page_size=2))
    assert [a.id for a in descending] == [f.id for f in reversed(files)]
    assert {a.assistant_id for a in descending} == {assistant.id}


def test_list_ending_exactly_at_a_page_boundary(client, uploaded):
    files = uploaded(4)
    assistant = client.create_assistant(file_ids=[f.id for f in files])
    assert [a.id for a in client.iter_assistant_files(assistant.id, page_size=2)] == [
        f.id for f in files
    ]


def test_list_arguments_are_checked_before_any_request(client):
    with pytest.raises(ValueError, match="page_size"):
        client.iter_assistant_files("asst_x", page_size=101)
    with pytest.raises(ValueError, match="order"):
        client.iter_assistant_files("asst_x", order="newest")


def test_missing_assistant_is_not_found(client):
    with pytest.raises(NotFoundError, match="asst_nope"):
        list(client.iter_assistant_files("asst_nope"))
    with pytest.raises(NotFoundError):
        client.retrieve_assistant("asst_nope")


def test_attaching_twice_answers_the_existing_attachment(client, uploaded):
    (file,) = uploaded(1)
    assistant = client.create_assistant()
    first = client.create_assistant_file(assistant.id, file.id)
    assert client.create_assistant_file(assistant.id, file.id) == first
    assert [a.id for a in client.iter_assistant_files(assistant.id)] == [file.id]


# --- message files ------------------------------------------------------------------------------


def test_message_files_get_and_list_across_pages(client, uploaded):
    files = uploaded(5)
    thread = client.create_thread()
    message = client.create_message(thread.id, "see attached", file_ids=[f.id for f in files])
    assert message.file_ids == [f.id for f in files]

    listed = list(client.iter_message_files(thread.id, message.id, page_size=2))
    assert all(isinstance(m, MessageFile) for m in listed)
    assert [m.id for m in listed] == [f.id for f in files]
    assert {m.message_id for m in listed} == {message.id}
    desc = client.iter_message_files(thread.id, message.id, order="desc", page_size=4)
    assert [m.id for m in desc] == [f.id for f in reversed(files)]

    got = client.get_message_file(thread.id, message.id, files[2].id)
    assert (got.id, got.message_id) == (files[2].id, message.id)
    with pytest.raises(NotFoundError):
        client.get_message_file(thread.id, message.id, "file-nope")


# --- concurrency --------------------------------------------------------------------------------


def test_one_client_serves_a_thread_pool(client, make_file):
    paths = [make_file(f"p{i}.md", f"{i}\n".encode() * (i + 1)) for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda p: client.create_file(p, "assistants"), paths))
        fetched = list(pool.map(lambda f: client.retrieve_file(f.id), created))
    assert len({f.id for f in created}) == 24
    assert [f.filename for f in fetched] == [p.name for p in paths]
    assert {f.id for f in client.list_files()} == {f.id for f in created}


def test_wait_processed_gives_up_after_its_timeout(emulator_factory, api_key, tmp_path, jsonl):
    server = emulator_factory(api_key=api_key, processing_delay=3600)
    path = tmp_path / "t.jsonl"
    path.write_bytes(jsonl(2))
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with Client(server.base_url, api_key, sleep=sleep, clock=lambda: now[0]) as client:
        created = client.create_file(path, "fine-tune")
        with pytest.raises(TimeoutError, match=f"file {created.id} still uploaded after 10 s"):
            client.wait_processed(created.id, timeout=10, poll=1)
    assert slept == pytest.approx([1, 1.5, 2.25, 3.375])
