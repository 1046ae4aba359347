"""A cold attach of many files to a vector store: file batches against one request per file.

Starts ``syncd emulator`` on a free loopback port, uploads ``--files`` small Markdown files
(before the budgets are switched on: uploading is not what is measured), then turns on the
service's published rate limits (``--attach-rpm`` attach requests a minute per store, files and
batches together) and attaches every file to a fresh store twice over:

* **batches** — ``Client.create_file_batch`` with up to 2,000 file ids, then
  ``Client.wait_file_batch``;
* **one by one** — ``Client.create_vector_store_file`` per file from ``--workers`` threads
  sharing one client, then polling the store until every file is ingested.

For each it prints the wall time until every file is ingested, the requests sent, the 429s the
service answered, and how long the client's pacer held requests back to stay in the budget.

    python bench/attach.py                      # 2,000 files, 300 attaches a minute
    python bench/attach.py --files 400 --mode single
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from emulator_process import emulator_process

from syncd.api import Client, FileObject, RequestRecord

MAX_BATCH = 2000


@dataclass
class Outcome:
    """One way of attaching: seconds until all were ingested, requests, 429s, paced seconds."""

    seconds: float
    requests: int
    refused: int
    paced: float


class Tally:
    """Counts the attach requests of one store and the 429s among them (thread-safe)."""

    def __init__(self, store_id: str) -> None:
        self.prefix = f"/vector_stores/{store_id}/"
        self.requests = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        if record.method != "POST" or not record.path.startswith(self.prefix):
            return
        with self._lock:
            self.requests += 1
            self.refused += record.status == 429


def put_settings(base_url: str, api_key: str, **settings: object) -> None:
    """Change the emulator's run-time settings (``PUT /_emulator/settings``)."""
    url = base_url.removesuffix("/v1") + "/_emulator/settings"
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        url,
        data=json.dumps(settings).encode(),
        method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        answer.read()


def upload_all(client: Client, work: Path, count: int) -> list[FileObject]:
    """Write and upload ``count`` small Markdown files, eight at a time."""

    def one(i: int) -> FileObject:
        path = work / f"doc-{i:05d}.md"
        path.write_text(f"# Document {i}\n\nThe word of this one is w{i}.\n")
        return client.create_file(path, "assistants")

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def measured(client: Client, name: str, attach: Callable[[str], None]) -> Outcome:
    """Make a store, run ``attach(store_id)`` and time it, counting its requests."""
    store = client.create_vector_store(name)
    tally = Tally(store.id)
    client.request_log = tally
    paced_before = sum(client.pacer.waited.values())
    start = time.perf_counter()
    attach(store.id)
    seconds = time.perf_counter() - start
    client.request_log = None
    paced = sum(client.pacer.waited.values()) - paced_before
    return Outcome(seconds, tally.requests, tally.refused, paced)


def by_batches(client: Client, ids: list[str]) -> Callable[[str], None]:
    def attach(store_id: str) -> None:
        for start in range(0, len(ids), MAX_BATCH):
            batch = client.create_file_batch(store_id, ids[start : start + MAX_BATCH])
            done = client.wait_file_batch(store_id, batch.id, timeout=3600)
            if done.file_counts.completed != len(ids[start : start + MAX_BATCH]):
                raise SystemExit(f"batch {batch.id} ended {done.status}: {done.file_counts}")

    return attach


def one_by_one(client: Client, ids: list[str], workers: int) -> Callable[[str], None]:
    def attach(store_id: str) -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda file_id: client.create_vector_store_file(store_id, file_id), ids))
        while (counts := client.retrieve_vector_store(store_id).file_counts).completed < len(ids):
            if counts.in_progress == 0:
                raise SystemExit(f"store {store_id} stopped at {counts}")
            time.sleep(0.2)

    return attach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files to attach (2000)")
    parser.add_argument("--mode", choices=["both", "batch", "single"], default="both")
    parser.add_argument("--workers", type=int, default=8, help="threads for one-by-one (8)")
    parser.add_argument("--attach-rpm", type=int, default=300, help="budget per store (300)")
    parser.add_argument("--no-rate-limits", action="store_true", help="leave budgets off")
    parser.add_argument("--ingestion-seconds", type=float, default=0.0)
    args = parser.parse_args()

    api_key = "sk-bench-" + secrets.token_hex(8)
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-attach-") as tmp,
        emulator_process(api_key, "--processing-delay", "0") as base_url,
        Client(base_url, api_key, timeout=120.0) as client,
    ):
        put_settings(base_url, api_key, ingestion_seconds=args.ingestion_seconds)
        ids = [f.id for f in upload_all(client, Path(tmp), args.files)]
        put_settings(
            base_url,
            api_key,
            rate_limits=not args.no_rate_limits,
            attach_rpm=args.attach_rpm,
        )
        results: dict[str, Outcome] = {}
        if args.mode in ("both", "batch"):
            results["batches"] = measured(client, "batches", by_batches(client, ids))
        if args.mode in ("both", "single"):
            results["one by one"] = measured(
                client, "one-by-one", one_by_one(client, ids, args.workers)
            )

    limits = "off" if args.no_rate_limits else f"{args.attach_rpm} attach requests/min per store"
    print(f"cold attach of {args.files} files; rate limits {limits}")
    print(f"{'':12}{'seconds':>9}{'files/s':>9}{'requests':>10}{'429s':>6}{'paced s':>9}")
    for name, r in results.items():
        print(
            f"{name:12}{r.seconds:9.2f}{args.files / r.seconds:9.1f}"
            f"{r.requests:10d}{r.refused:6d}{r.paced:9.1f}"
        )


if __name__ == "__main__":
    main()
