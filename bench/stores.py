"""A cold sync of many small files into a vector store, to ``completed``: syncd against the
official SDK's recommended way and a naive loop; then syncd under the service's rate limits.

Each contender gets its own ``syncd emulator`` process on a loopback port, with ``--latency-ms``
added to every request (+50 ms by default, a far-away service) and the default ingestion time:

* **syncd** — ``syncd reconcile``'s engine, in-process, on a drop folder of ``--files`` files
  configured with ``vector_stores``: uploads on ``concurrency`` threads, file batches sent while
  uploads still run, ingestion followed to its end;
* **SDK upload_and_poll** — ``client.vector_stores.file_batches.upload_and_poll`` (the SDK's
  recommended way: uploads ``max_concurrency=5`` at a time, then one batch, polled);
* **naive loop** — ``files.create`` then ``vector_stores.files.create`` per file, one after
  another, then the store polled until every file is ingested.

Then, with ``--rate-limits`` on the emulator and smaller budgets (``--upload-rpm``,
``--attach-rpm``) so that they bite within a short run, syncd alone: its time beside the floor
the budgets allow (the whole minutes the uploads must wait at best), and how many 429s it met.

    python bench/stores.py                 # 1,000 files, +50 ms, then 600 files at 300 uploads/min
    python bench/stores.py --files 200 --skip-limits
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from emulator_process import emulator_process

from syncd.api import Client, RequestRecord, RetryPolicy
from syncd.config import load_config, write_config
from syncd.engine.manifest import ManifestDB
from syncd.engine.reconcile import Engine

WINDOW_S = 60.0


def write_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"doc-{i:05d}.md"
        path.write_text(f"# Document {i}\n\nThe word of this one is w{i}.\n")
        paths.append(path)
    return paths


class Tally:
    """Requests and 429s seen by a client (thread-safe)."""

    def __init__(self) -> None:
        self.requests = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests += 1
            self.refused += record.status == 429


def run_syncd(base_url: str, api_key: str, work: Path, count: int) -> tuple[float, Tally]:
    """One cold pass of syncd's engine into a fresh store; seconds until every file is
    ``completed`` (the pass follows ingestion to its end), and its requests."""
    with Client(base_url, api_key) as setup:
        store = setup.create_vector_store("bench").id
    drop = work / "drop"
    write_files(drop, count)
    config_path = write_config(
        work / "syncd.toml",
        api={"base_url": base_url, "timeout_seconds": 120},
        sync={"state_dir": work / "state", "concurrency": 16},
        folders=[{"name": "docs", "path": drop, "purpose": "assistants", "vector_stores": [store]}],
    )
    config = load_config(config_path, env={"OPENAI_API_KEY": api_key})
    tally = Tally()
    with (
        Client(base_url, api_key, timeout=120, retry=RetryPolicy(max_attempts=8)) as client,
        ManifestDB.open(work / "state") as manifest,
    ):
        client.request_log = tally
        start = time.perf_counter()
        report = Engine(config, client, manifest).run_pass()
        seconds = time.perf_counter() - start
        counts = client.retrieve_vector_store(store).file_counts
    if report.exit_code() != 0 or counts.completed != count:
        sys.exit(f"syncd did not finish: {report.summary()}; store {counts}")
    return seconds, tally


def run_sdk(base_url: str, api_key: str, work: Path, count: int) -> float:
    from openai import OpenAI

    paths = write_files(work / "sdk", count)
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=4)
    store = client.vector_stores.create(name="bench-sdk").id
    files = [(p.name, p.read_bytes()) for p in paths]
    start = time.perf_counter()
    batch = client.vector_stores.file_batches.upload_and_poll(store, files=files)
    seconds = time.perf_counter() - start
    if batch.file_counts.completed != count:
        sys.exit(f"upload_and_poll ended {batch.status}: {batch.file_counts}")
    return seconds


def run_naive(base_url: str, api_key: str, work: Path, count: int) -> float:
    from openai import OpenAI

    paths = write_files(work / "naive", count)
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=4)
    store = client.vector_stores.create(name="bench-naive").id
    start = time.perf_counter()
    for path in paths:
        with path.open("rb") as f:
            file = client.files.create(file=f, purpose="assistants")
        client.vector_stores.files.create(vector_store_id=store, file_id=file.id)
    while client.vector_stores.retrieve(store).file_counts.completed < count:
        time.sleep(0.2)
    return time.perf_counter() - start


def fresh(options: list[str], run: Callable[[str, str, Path], object]) -> object:
    """``run(base_url, api_key, work_dir)`` against a fresh emulator started with ``options``."""
    api_key = "sk-bench-" + secrets.token_hex(8)
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-stores-") as tmp,
        emulator_process(api_key, "--processing-delay", "0", *options) as base_url,
    ):
        return run(base_url, api_key, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="files for the cold sync (1000)")
    parser.add_argument("--latency-ms", type=int, default=50, help="added per request (50)")
    parser.add_argument("--only", choices=["syncd", "sdk", "naive"], help="one contender")
    parser.add_argument("--skip-limits", action="store_true", help="no rate-limited run")
    parser.add_argument("--limited-files", type=int, default=600, help="files, limited run (600)")
    parser.add_argument("--upload-rpm", type=int, default=300, help="limited run budget (300)")
    parser.add_argument("--attach-rpm", type=int, default=300, help="limited run budget (300)")
    args = parser.parse_args()
    n = args.files
    latency = ["--latency-ms", str(args.latency_ms)]

    print(f"cold sync of {n} small files into a vector store, +{args.latency_ms} ms per request")
    print(f"{'':22}{'seconds':>9}{'files/s':>9}")
    contenders: dict[str, Callable[[str, str, Path], float]] = {
        "syncd": lambda url, key, work: run_syncd(url, key, work, n)[0],
        "SDK upload_and_poll": lambda url, key, work: run_sdk(url, key, work, n),
        "naive loop": lambda url, key, work: run_naive(url, key, work, n),
    }
    for name, run in contenders.items():
        if args.only and not name.lower().startswith(args.only):
            continue
        seconds = fresh(latency, run)
        assert isinstance(seconds, float)
        print(f"{name:22}{seconds:9.1f}{n / seconds:9.1f}", flush=True)

    if args.skip_limits:
        return
    m = args.limited_files
    limits = [
        "--rate-limits",
        "--upload-rpm",
        str(args.upload_rpm),
        "--attach-rpm",
        str(args.attach_rpm),
    ]
    result = fresh(limits, lambda url, key, work: run_syncd(url, key, work, m))
    assert isinstance(result, tuple)
    seconds, tally = result
    # At best the uploads go out in whole budgets, a window apart.
    floor = (math.ceil(m / args.upload_rpm) - 1) * WINDOW_S
    print(
        f"\nunder rate limits ({args.upload_rpm} uploads/min, {args.attach_rpm} attaches/min "
        f"per store), {m} files: syncd {seconds:.1f} s, floor {floor:.0f} s; "
        f"{tally.requests} requests, {tally.refused} answered 429"
    )


if __name__ == "__main__":
    main()
