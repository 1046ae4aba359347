"""``syncd emulator`` as a user runs it: a process that prints its URL, logs, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

pytestmark = pytest.mark.timeout(60)

READY_PREFIX = "syncd emulator listening on "


@contextmanager
def running(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start ``syncd emulator ARGS`` and yield it with its base URL, once it has printed it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith(READY_PREFIX), (
            line,
            process.stderr.read() if process.stderr else "",
        )
        yield process, line.removeprefix(READY_PREFIX).strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[int, str]:
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_starts_fast_prints_its_url_logs_and_stops_on_ctrl_c() -> None:
    started = time.perf_counter()
    with running() as (process, url):
        ready_s = time.perf_counter() - started
        assert ready_s < 2.0, f"took {ready_s:.2f} s to be ready"
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        response = httpx2.get(url + "/files", headers={"Authorization": "Bearer sk-anything"})
        assert response.status_code == 200
        code, stderr = _stop(process)
    assert code == 0
    assert "GET /v1/files → 200" in stderr
    assert "Traceback" not in stderr


def test_sigterm_stops_it_cleanly() -> None:
    with running() as (process, _):
        code, _ = _stop(process, signal.SIGTERM)
    assert code == 0


def test_options_reach_the_server(tmp_path: Path) -> None:
    key = "sk-test-cli-secret-key-42"
    args = ["--data-dir", str(tmp_path), "--max-file-bytes", "10", "--fail-rate", "0"]
    with running(*args, env={"SYNCD_EMULATOR_API_KEY": key}) as (process, url):
        assert (
            httpx2.get(url + "/files", headers={"Authorization": "Bearer sk-other"}).status_code
            == 401
        )
        headers = {"Authorization": f"Bearer {key}"}
        small = httpx2.post(
            url + "/files",
            headers=headers,
            files={"file": ("a", b"12345")},
            data={"purpose": "assistants"},
        )
        assert small.status_code == 200
        big = httpx2.post(
            url + "/files",
            headers=headers,
            files={"file": ("b", b"x" * 11)},
            data={"purpose": "assistants"},
        )
        assert big.status_code == 400
        code, stderr = _stop(process)
    assert code == 0
    assert key not in stderr
    assert (tmp_path / "emulator.db").is_file()
    assert (tmp_path / "blobs" / small.json()["id"]).read_bytes() == b"12345"


def test_fault_options() -> None:
    with running("--rate-limit-rate", "1", "--retry-after-ms", "250", "--seed", "1") as (
        process,
        url,
    ):
        response = httpx2.get(url + "/files", headers={"Authorization": "Bearer sk-x"})
        assert response.status_code == 429
        assert response.headers["retry-after-ms"] == "250"
        code, stderr = _stop(process)
    assert code == 0
    assert "rate-limit 100%" in stderr
    assert "→ 429 (injected)" in stderr


def test_behaviour_options_reach_the_server() -> None:
    args = [
        "--assistants-api",
        "retired",
        "--ingestion-seconds",
        "0.5",
        "--stuck-rate",
        "0.25",
        "--upload-lifetime-seconds",
        "30",
        "--rate-limits",
        "--attach-rpm",
        "7",
        "--slow-commit-ms",
        "5",
    ]
    with running(*args) as (process, url):
        admin = url.removesuffix("/v1") + "/_emulator"
        settings = httpx2.get(admin + "/settings").json()["settings"]
        faults = httpx2.get(admin + "/faults").json()["faults"]
        _stop(process)
    assert settings["assistants_api"] == "retired"
    assert (settings["ingestion_seconds"], settings["stuck_rate"]) == (0.5, 0.25)
    assert (settings["upload_lifetime_s"], settings["rate_limits"]) == (30, True)
    assert (settings["attach_rpm"], settings["upload_rpm"]) == (7, 1000)
    assert faults["slow_commit_ms"] == 5


def test_impossible_fault_settings_are_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncd", "emulator", "--fail-rate", "0.7", "--drop-rate", "0.7"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "at most 1" in result.stderr


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "syncd", "emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""


def _random_file(path: Path, size: int) -> Path:
    """``path`` filled with ``size`` random bytes (whole MiB), written a MiB at a time."""
    with path.open("wb") as out:
        chunk = os.urandom(1024 * 1024)
        for _ in range(size // len(chunk)):
            out.write(chunk)
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_during_a_large_upload(tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    source = _random_file(tmp_path / "big.bin", size)
    with running() as (process, url):
        before = _peak_rss_kib(process.pid)
        with source.open("rb") as body:
            response = httpx2.post(
                url + "/files",
                headers={"Authorization": "Bearer sk-x"},
                files={"file": ("big.bin", body)},
                data={"purpose": "assistants"},
                timeout=60,
            )
        assert response.status_code == 200
        assert response.json()["bytes"] == size
        growth_mib = (_peak_rss_kib(process.pid) - before) / 1024
        _stop(process)
    assert growth_mib < 16, f"peak memory grew by {growth_mib:.0f} MiB for a 64 MiB upload"


def test_memory_stays_flat_through_the_uploads_api(tmp_path: Path) -> None:
    """Two 48 MiB parts in parallel, then joined into one 96 MiB File: streamed, never held."""
    part_size = 48 * 1024 * 1024
    source = _random_file(tmp_path / "part.bin", part_size)
    headers = {"Authorization": "Bearer sk-x"}
    with running() as (process, url), httpx2.Client(headers=headers, timeout=60) as http:
        before = _peak_rss_kib(process.pid)
        upload = http.post(
            url + "/uploads",
            json={
                "filename": "big.txt",
                "purpose": "assistants",
                "bytes": 2 * part_size,
                "mime_type": "text/plain",
            },
        ).json()

        def send_part(_: int) -> str:
            with source.open("rb") as body:
                response = http.post(
                    f"{url}/uploads/{upload['id']}/parts", files={"data": ("part", body)}
                )
            assert response.status_code == 200, response.text
            return response.json()["id"]

        with ThreadPoolExecutor(2) as pool:
            part_ids = list(pool.map(send_part, range(2)))
        done = http.post(f"{url}/uploads/{upload['id']}/complete", json={"part_ids": part_ids})
        assert done.json()["file"]["bytes"] == 2 * part_size
        growth_mib = (_peak_rss_kib(process.pid) - before) / 1024
        _stop(process)
    assert growth_mib < 16, f"peak memory grew by {growth_mib:.0f} MiB for a 96 MiB upload"
