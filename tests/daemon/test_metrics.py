"""The Prometheus exposition, scraped over HTTP as Prometheus would."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from syncd.api.client import RequestRecord
from syncd.engine.report import Done
from syncd.service.metrics import Metrics, operation, parse_address


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.close()


def scrape(metrics: Metrics) -> str:
    host, port = metrics.serve("127.0.0.1:0")
    return httpx2.get(f"http://{host}:{port}/metrics", timeout=5).text


def test_scrape_shows_files_actions_errors_and_latency(metrics: Metrics) -> None:
    metrics.set_file_counts({"docs": {"synced": 12, "failed": 2}})
    for _ in range(3):
        metrics.observe_done(Done("uploaded", "docs", "a.md", "file-1"))
    metrics.observe_done(Done("rejected", "docs", "b.exe", detail="type not supported"))
    metrics.observe_request(RequestRecord("POST", "/files", 200, 0.2, "req_1"))
    metrics.observe_request(RequestRecord("GET", "/files/file-abc123", 503, 0.05, None))
    metrics.observe_request(RequestRecord("GET", "/files", None, 1.0, None, "connection reset"))
    metrics.observe_pass("full", 1.5)
    metrics.set_available("docs", False)
    text = scrape(metrics)

    assert 'syncd_files{folder="docs",state="synced"} 12.0' in text
    assert 'syncd_files{folder="docs",state="failed"} 2.0' in text
    assert 'syncd_files{folder="docs",state="pending"} 0.0' in text
    assert 'syncd_actions_total{result="uploaded"} 3.0' in text
    assert 'syncd_errors_total{kind="rejected"} 1.0' in text
    assert 'syncd_errors_total{kind="server"} 1.0' in text
    assert 'syncd_errors_total{kind="transport"} 1.0' in text
    assert 'syncd_request_duration_seconds_count{method="GET",operation="/files/{id}"} 1.0' in text
    assert 'syncd_request_duration_seconds_count{method="POST",operation="/files"} 1.0' in text
    assert 'syncd_passes_total{scope="full"} 1.0' in text
    assert 'syncd_folder_available{folder="docs"} 0.0' in text
    assert "file-abc123" not in text


def test_a_removed_folder_disappears(metrics: Metrics) -> None:
    metrics.set_file_counts({"docs": {"synced": 1}, "old": {"synced": 1}})
    metrics.set_available("old", True)
    metrics.forget_folder("old")
    metrics.forget_folder("never-seen")
    text = scrape(metrics)
    assert 'folder="old"' not in text
    assert 'folder="docs"' in text


def test_helpers() -> None:
    assert operation("/assistants/asst_x1/files/file-9?limit=100") == "/assistants/{id}/files/{id}"
    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
