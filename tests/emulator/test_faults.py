"""Fault injection, through the Python API and the admin endpoints, over real connections."""

from __future__ import annotations

import time

import httpx2
import pytest

from syncd.emulator import Faults

from .conftest import MakeAssistant, Upload
from .support import error_of


def _upload(http: httpx2.Client, name: str = "a.txt") -> httpx2.Response:
    return http.post("files", files={"file": (name, b"content")}, data={"purpose": "assistants"})


def test_fail_rate_answers_5xx_without_processing(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(fail_rate=1.0, seed=3)
    statuses = set()
    for _ in range(30):
        response = _upload(http)
        statuses.add(response.status_code)
        if response.status_code == 502:
            # The proxy in front of the service answers 502 in HTML, not JSON.
            assert response.headers["content-type"].startswith("text/html")
        else:
            assert error_of(response)["type"] == "server_error"
    assert statuses == {500, 502, 503}
    emulator.clear_faults()
    assert http.get("files").json()["data"] == []


def test_rate_limit_answers_429_with_retry_after(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(rate_limit_rate=1.0, retry_after_ms=1500)
    response = http.get("files")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1500"
    error = error_of(response)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")


def test_latency(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert http.get("files").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_drop_before_processing_stores_nothing(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(drop_rate=1.0, drop_phase="before")
    with pytest.raises(httpx2.TransportError):
        _upload(http)
    emulator.clear_faults()
    assert http.get("files").json()["data"] == []


def test_drop_after_processing_stores_the_upload(emulator, http: httpx2.Client) -> None:
    """The case that makes naive clients create duplicates: no answer, yet the file exists."""
    emulator.set_faults(drop_rate=1.0, drop_phase="after")
    with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
        _upload(http, "report.pdf")
    emulator.clear_faults()
    listing = http.get("files").json()["data"]
    assert [f["filename"] for f in listing] == ["report.pdf"]
    assert emulator.fault_counts() == {
        "fail": 0,
        "rate_limit": 0,
        "drop_before": 0,
        "drop_after": 0,
    }


def test_drop_after_an_attach_leaves_it_attached(
    emulator, http: httpx2.Client, upload: Upload, make_assistant: MakeAssistant
) -> None:
    file, assistant = upload(), make_assistant()
    emulator.set_faults(drop_rate=1.0, drop_phase="after")
    with pytest.raises(httpx2.TransportError):
        http.post(f"assistants/{assistant['id']}/files", json={"file_id": file["id"]})
    emulator.clear_faults()
    assert http.get(f"assistants/{assistant['id']}").json()["file_ids"] == [file["id"]]


def test_dropped_large_upload_before_processing(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(drop_rate=1.0, drop_phase="before")
    with pytest.raises(httpx2.TransportError):
        http.post(
            "files", files={"file": ("big.bin", b"x" * 4_000_000)}, data={"purpose": "assistants"}
        )
    emulator.clear_faults()
    assert _upload(http).status_code == 200  # the server is fine afterwards


def _outcomes(http: httpx2.Client, count: int) -> list[str]:
    outcomes = []
    for _ in range(count):
        try:
            outcomes.append(str(http.get("files").status_code))
        except httpx2.TransportError:
            outcomes.append("dropped")
    return outcomes


def test_a_seed_makes_faults_repeatable(emulator, http: httpx2.Client) -> None:
    settings = {"fail_rate": 0.3, "rate_limit_rate": 0.2, "drop_rate": 0.2}
    emulator.set_faults(seed=42, **settings)
    first = _outcomes(http, 40)
    emulator.set_faults(seed=42)
    assert _outcomes(http, 40) == first
    emulator.set_faults(seed=43)
    assert _outcomes(http, 40) != first
    assert {"200", "429", "dropped"} <= set(first)


def test_random_drops_come_before_and_after(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(drop_rate=1.0, seed=1)
    for _ in range(20):
        with pytest.raises(httpx2.TransportError):
            _upload(http)
    counts = emulator.fault_counts()
    assert counts["drop_before"] + counts["drop_after"] == 20
    assert counts["drop_before"] > 0 and counts["drop_after"] > 0
    emulator.clear_faults()
    assert len(http.get("files").json()["data"]) == counts["drop_after"]


def test_rates_are_shares_of_requests(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(fail_rate=0.25, rate_limit_rate=0.25, seed=5)
    outcomes = _outcomes(http, 400)
    failed = sum(o in ("500", "502", "503") for o in outcomes)
    limited = outcomes.count("429")
    assert emulator.fault_counts()["fail"] == failed
    assert emulator.fault_counts()["rate_limit"] == limited
    assert 60 <= failed <= 140 and 60 <= limited <= 140


def test_match_limits_faults_to_some_requests(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(fail_rate=1.0, match=r"^POST /v1/files$")
    assert http.get("files").status_code == 200
    assert _upload(http).status_code >= 500


def test_max_faults_stops_after_that_many(emulator, http: httpx2.Client) -> None:
    emulator.set_faults(fail_rate=1.0, max_faults=2)
    assert [r.status_code >= 500 for r in (http.get("files") for _ in range(4))] == [
        True,
        True,
        False,
        False,
    ]


def test_fault_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        Faults(fail_rate=0.6, drop_rate=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(fail_rate=1.5)
    with pytest.raises(ValueError, match="drop_phase"):
        Faults(drop_phase="during")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="regular expression"):
        Faults(match="(")
    with pytest.raises(ValueError, match="unknown fault setting"):
        Faults().updated(failure_rate=0.1)


def test_set_faults_leaves_them_unchanged_on_error(emulator) -> None:
    emulator.set_faults(fail_rate=0.5)
    with pytest.raises(ValueError):
        emulator.set_faults(drop_rate=0.7)
    assert emulator.faults == Faults(fail_rate=0.5)


# --- the admin endpoints ------------------------------------------------------------------------


def test_admin_get_and_put(emulator, http: httpx2.Client) -> None:
    state = http.get(f"{emulator.admin_url}/faults").json()
    assert state == {
        "faults": {
            "fail_rate": 0.0,
            "rate_limit_rate": 0.0,
            "latency_ms": 0,
            "drop_rate": 0.0,
            "seed": None,
            "drop_phase": "random",
            "retry_after_ms": 1000,
            "match": None,
            "max_faults": None,
            "slow_commit_ms": 0,
        },
        "injected": {"fail": 0, "rate_limit": 0, "drop_before": 0, "drop_after": 0},
    }
    updated = http.put(
        f"{emulator.admin_url}/faults", json={"rate_limit_rate": 1.0, "retry_after_ms": 10}
    )
    assert updated.status_code == 200
    assert updated.json()["faults"]["rate_limit_rate"] == 1.0
    assert updated.json()["faults"]["latency_ms"] == 0  # partial update
    assert http.get("files").status_code == 429
    assert http.get(f"{emulator.admin_url}/faults").json()["injected"]["rate_limit"] == 1


def test_admin_is_never_faulted(emulator, http: httpx2.Client) -> None:
    http.put(f"{emulator.admin_url}/faults", json={"fail_rate": 0.5, "drop_rate": 0.5})
    for _ in range(10):
        assert http.get(f"{emulator.admin_url}/faults").status_code == 200
    assert (
        http.put(f"{emulator.admin_url}/faults", json={"fail_rate": 0, "drop_rate": 0}).status_code
        == 200
    )
    assert http.get("files").status_code == 200


def test_admin_rejects_bad_settings(emulator, http: httpx2.Client) -> None:
    for body, words in (
        ({"fail_rate": 2}, "between 0 and 1"),
        ({"fail_rate": "lots"}, "must be a number"),
        ({"speed": 1}, "unknown fault setting(s): speed"),
        ({"latency_ms": -5}, "latency_ms"),
    ):
        response = http.put(f"{emulator.admin_url}/faults", json=body)
        assert response.status_code == 400
        assert words in error_of(response)["message"]
    assert http.put(f"{emulator.admin_url}/faults", content=b"[]").status_code == 400


def test_admin_reset_forgets_state_and_faults(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    upload()
    http.post("assistants", json={"model": "gpt-4"})
    http.put(f"{emulator.admin_url}/faults", json={"latency_ms": 5})
    response = http.post(f"{emulator.admin_url}/reset")
    assert response.status_code == 200
    assert response.json()["faults"]["latency_ms"] == 0
    assert http.get("files").json()["data"] == []
    assert http.get("assistants").json()["data"] == []


def test_admin_needs_the_key_when_one_is_configured(emulator) -> None:
    assert httpx2.get(f"{emulator.admin_url}/faults").status_code == 401


def test_admin_is_open_without_a_configured_key(emulator_factory) -> None:
    server = emulator_factory()
    response = httpx2.put(f"{server.admin_url}/faults", json={"latency_ms": 1})
    assert response.status_code == 200
    assert server.faults.latency_ms == 1


def test_reset_restores_the_faults_the_server_started_with(emulator_factory) -> None:
    server = emulator_factory(faults=Faults(rate_limit_rate=1.0))
    server.set_faults(rate_limit_rate=0.0, fail_rate=1.0)
    server.reset()
    assert server.faults == Faults(rate_limit_rate=1.0)


# --- slow commit --------------------------------------------------------------------------------


def _upload_and_give_up(http: httpx2.Client, filename: str) -> None:
    """Upload ``filename`` but stop waiting after 0.1 s, as a client with a short timeout does."""
    with pytest.raises(httpx2.TimeoutException):
        http.post(
            "files",
            files={"file": (filename, b"content")},
            data={"purpose": "assistants"},
            timeout=0.1,
        )


def test_slow_commit_stores_the_upload_after_the_client_gave_up(
    emulator, http: httpx2.Client
) -> None:
    """Issue #10 item 2: the service finishes a request whose client is gone."""
    emulator.set_faults(slow_commit_ms=300, match="POST /v1/files")
    _upload_and_give_up(http, "late.txt")
    assert http.get("files").json()["data"] == []  # not yet
    time.sleep(0.4)
    assert [f["filename"] for f in http.get("files").json()["data"]] == ["late.txt"]


def test_latency_drops_the_work_when_the_client_goes(emulator, http: httpx2.Client) -> None:
    """The contrast with slow commit: latency comes before the body is read."""
    emulator.set_faults(latency_ms=300, match="POST /v1/files")
    _upload_and_give_up(http, "lost.txt")
    time.sleep(0.4)
    assert http.get("files").json()["data"] == []


def test_slow_commit_of_a_bodyless_request_still_happens(
    emulator, http: httpx2.Client, upload: Upload
) -> None:
    file = upload()
    emulator.set_faults(slow_commit_ms=300, match="DELETE")
    with pytest.raises(httpx2.TimeoutException):
        http.delete(f"files/{file['id']}", timeout=0.1)
    time.sleep(0.4)
    assert http.get(f"files/{file['id']}").status_code == 404
