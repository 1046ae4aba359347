"""The API key never appears in a log line, an exception text, a repr or a traceback.

Every error path of the client is forced for real (against the emulator, a closed port, and a
loopback server answering what the emulator never would); everything a person or a log could
see is collected and searched for the key.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest

from syncd.api import APIError, Client, ClientConfigError, RequestRecord, RetryPolicy

QUICK = RetryPolicy(max_attempts=2, base_delay=0.0, retry_after_cap=0.0)


def _exposed(error: BaseException) -> str:
    """Everything about an exception a log or a terminal could show."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for name in ("message", "type", "code", "param", "request_id", "cause"):
        parts.append(repr(getattr(error, name, None)))
    return "\n".join(parts)


def test_no_error_path_reveals_the_key(
    emulator, api_key, make_file, recording_server, caplog, tmp_path, closed_port_url
):
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx2's and httpcore2's
    seen: list[str] = []
    records: list[RequestRecord] = []

    def force(client: Client, call: Callable[[], object]) -> None:
        with pytest.raises(APIError) as caught:
            call()
        seen.append(_exposed(caught.value))

    wrong_key = "sk-wrong-" + api_key[::-1]
    with Client(emulator.base_url, wrong_key, retry=QUICK) as client:
        client.request_log = records.append
        seen.append(repr(client))
        force(client, client.list_files)  # 401
        a = make_file("a.md", b"a\n")
        force(client, lambda: client.create_file(a, "assistants", content=b"a\n"))  # 401

    with Client(emulator.base_url, api_key, retry=QUICK, timeout=0.2) as client:
        client.request_log = records.append
        seen.append(repr(client))
        doc = client.create_file(make_file("a.md", b"a\n"), "assistants")
        force(client, lambda: client.retrieve_file("file-missing"))  # 404
        force(client, lambda: client.create_file(make_file("b.md", b"b\n"), "fine-tune"))  # 400
        force(client, lambda: client.download_file(doc.id, tmp_path / "x"))  # 400 on download
        force(client, lambda: client.delete_assistant_file("asst_nope", doc.id))  # 404 assistant

        emulator.set_faults(rate_limit_rate=1.0)
        force(client, client.list_files)  # 429 after retries
        emulator.set_faults(rate_limit_rate=0.0, fail_rate=1.0, seed=1)
        force(client, client.list_files)  # 5xx (JSON or HTML) after retries
        force(client, lambda: client.create_file(make_file("c.md", b"c\n"), "assistants"))
        force(client, lambda: client.create_file(a, "assistants", content=b"a\n"))  # in memory
        emulator.set_faults(fail_rate=0.0, drop_rate=1.0, drop_phase="after")
        force(client, lambda: client.create_file(make_file("d.md", b"d\n"), "assistants"))
        force(client, lambda: client.create_file(a, "assistants", content=b"a\n"))
        force(client, client.list_files)  # dropped connections
        emulator.set_faults(drop_rate=0.0, latency_ms=500)
        force(client, client.list_files)  # read timeout
        emulator.clear_faults()

    with Client(closed_port_url, api_key, retry=QUICK) as client:
        client.request_log = records.append
        force(client, client.list_files)  # connection refused

    with Client(recording_server.base_url, api_key, retry=QUICK) as client:
        client.request_log = records.append
        recording_server.reply = (200, {"unexpected": api_key})
        force(client, lambda: client.retrieve_file("file-x"))  # unparseable answer
        force(client, lambda: list(client.iter_file_pages()))  # the same, a page read by SQLite
        # A service that echoes the key in its error text: the text is kept, the key is not.
        recording_server.reply = (
            400,
            {"error": {"message": f"bad key {api_key}", "param": api_key}},
        )
        force(client, lambda: client.retrieve_file("file-x"))
        assert "bad key [redacted]" in seen[-1]
        force(client, lambda: client.create_file(a, "assistants", content=b"a\n"))
        assert "bad key [redacted]" in seen[-1]

    with pytest.raises(ClientConfigError) as refused:
        Client("http://remote.example/v1", api_key)
    seen.append(_exposed(refused.value))

    seen.extend(repr(r) for r in records)
    seen.extend(r.getMessage() for r in caplog.records)
    seen.extend(caplog.text.splitlines())
    everything = "\n".join(seen)
    assert len(seen) > 30 and "Traceback" in everything
    assert api_key not in everything
    assert wrong_key not in everything
    assert api_key[3:] not in everything  # not even without its prefix
