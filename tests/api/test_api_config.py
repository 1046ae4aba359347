"""Configuration, headers on the wire, transport settings and authentication failures."""

from __future__ import annotations

import ssl

import httpx2
import pytest

from syncd import __version__
from syncd.api import (
    DEFAULT_BASE_URL,
    AuthenticationError,
    Client,
    ClientConfigError,
    RequestRecord,
    RetryPolicy,
    TimeoutError,
    TransportError,
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_ORG_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_headers_on_files_and_assistants_paths(recording_server):
    with Client(recording_server.base_url, "sk-wire", organization="org-42") as client:
        client.retrieve_file("file-x")
        recording_server.reply = (
            200,
            {"id": "file-x", "object": "assistant.file", "created_at": 1, "assistant_id": "asst"},
        )
        client.get_assistant_file("asst", "file-x")

    (_, files_path, files_headers), (_, asst_path, asst_headers) = recording_server.requests
    assert files_path == "/v1/files/file-x"
    assert asst_path == "/v1/assistants/asst/files/file-x"
    for headers in (files_headers, asst_headers):
        assert headers["Authorization"] == "Bearer sk-wire"
        assert headers["OpenAI-Organization"] == "org-42"
        assert headers["User-Agent"] == f"syncd/{__version__} httpx2/{httpx2.__version__}"
    assert "OpenAI-Beta" not in files_headers
    assert asst_headers["OpenAI-Beta"] == "assistants=v1"


def test_no_organization_header_unless_configured(recording_server, clean_env):
    with Client(recording_server.base_url, "sk-wire") as client:
        client.retrieve_file("file-x")
    assert "OpenAI-Organization" not in recording_server.requests[0][2]


def test_environment_fallbacks(recording_server, clean_env):
    clean_env.setenv("OPENAI_BASE_URL", recording_server.base_url)
    clean_env.setenv("OPENAI_API_KEY", "sk-from-env")
    clean_env.setenv("OPENAI_ORG_ID", "org-env")
    with Client() as client:
        assert client.base_url == recording_server.base_url
        client.retrieve_file("file-x")
    headers = recording_server.requests[0][2]
    assert headers["Authorization"] == "Bearer sk-from-env"
    assert headers["OpenAI-Organization"] == "org-env"


def test_explicit_settings_win_over_the_environment(recording_server, clean_env):
    clean_env.setenv("OPENAI_BASE_URL", "https://elsewhere.invalid/v1")
    clean_env.setenv("OPENAI_API_KEY", "sk-from-env")
    with Client(recording_server.base_url, "sk-explicit") as client:
        client.retrieve_file("file-x")
    assert recording_server.requests[0][2]["Authorization"] == "Bearer sk-explicit"


def test_default_base_url_is_the_service(clean_env):
    with Client(api_key="sk-x") as client:
        assert client.base_url == DEFAULT_BASE_URL == "https://api.openai.com/v1"


def test_missing_key_is_a_clear_error(clean_env):
    with pytest.raises(ClientConfigError, match="OPENAI_API_KEY"):
        Client("https://api.openai.com/v1")
    with pytest.raises(ClientConfigError, match="no API key"):
        Client("https://api.openai.com/v1", api_key="")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/v1", "http://localhost:1/v1", "http://[::1]:1/v1", "http://127.8.9.1/v1"],
)
def test_plain_http_is_allowed_to_loopback(url):
    Client(url, "sk-x").close()


def test_plain_http_to_another_host_is_refused_unless_allowed():
    with pytest.raises(ClientConfigError, match=r"refusing plain http:// to api\.example\.com"):
        Client("http://api.example.com/v1", "sk-x")
    with pytest.raises(ClientConfigError, match="refusing"):
        Client("http://10.0.0.5:8080/v1", "sk-x")
    Client("http://api.example.com/v1", "sk-x", allow_insecure_http=True).close()
    with pytest.raises(ClientConfigError, match="http"):
        Client("ftp://api.example.com/v1", "sk-x")


def test_https_checks_the_certificate_and_the_host_name(monkeypatch):
    # (Over plain http no request speaks TLS, so no certificate store is loaded for it.)
    with Client("https://api.example.com/v1", "sk-x") as client:
        contexts = [client._wire._tls()]  # type: ignore[union-attr]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with Client("https://api.example.com/v1", "sk-x") as client:  # httpx2's transport
        assert client._wire is None
        for proxy in client._http._mounts.values():
            contexts.append(proxy._pool._ssl_context)  # type: ignore[union-attr]
    assert len(contexts) == 2
    for context in contexts:
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


def test_wrong_key_is_an_authentication_error_and_not_retried(emulator):
    log: list[RequestRecord] = []
    with Client(emulator.base_url, "sk-wrong") as client:
        client.request_log = log.append
        with pytest.raises(AuthenticationError) as caught:
            client.list_files()
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"
    assert [r.status for r in log] == [401]


def test_connection_refused_is_a_transport_error_after_retries(closed_port_url):
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    client = Client(closed_port_url, "sk-x", retry=policy, sleep=slept.append)
    with client, pytest.raises(TransportError) as caught:
        client.list_files()
    assert caught.value.status is None
    assert caught.value.request_sent is False
    assert len(slept) == 2
    assert "ConnectError" in str(caught.value) and "GET /files" in str(caught.value)


def test_read_timeout_is_separate_from_connect_timeout(emulator, api_key):
    emulator.set_faults(latency_ms=300)
    policy = RetryPolicy(max_attempts=2, base_delay=0.0)
    client = Client(emulator.base_url, api_key, connect_timeout=5.0, timeout=0.05, retry=policy)
    with client, pytest.raises(TimeoutError) as caught:
        client.list_files()
    assert "ReadTimeout" in str(caught.value)
    emulator.clear_faults()
    with Client(emulator.base_url, api_key, connect_timeout=0.05, timeout=5.0) as client:
        emulator.set_faults(latency_ms=150)
        assert client.list_files() == []


def test_logs_each_exchange_at_debug(client, caplog):
    caplog.set_level("DEBUG", logger="syncd.api")
    client.list_files()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "syncd.api"]
    assert line.startswith("GET /files -> 200 in ")
    assert "(request req_" in line
