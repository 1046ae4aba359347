"""How much CPU does ``syncd emulator`` spend per request? (issue #14: the emulator shares the
machine with syncd during a first sync of 100,000 small files, so its cost per request bounds
the files/s the benchmark can show.)

The emulator runs in its own process (``syncd emulator``, blobs on ``/dev/shm`` as in
``scale.py``); a client in this process drives it with ``--threads`` threads over one pooled
``httpx2`` client, and the emulator's CPU time is read from ``/proc`` before and after each
phase, so figures are CPU milliseconds of the emulator alone, not wall time (the machine may be
shared). Its stderr is discarded, so it makes no request log (``syncd emulator`` skips the lines
then, as it does for every benchmark here). Phases:

1. **Floor**: ``GET /_emulator/settings``, the cheapest request, no store work: what the HTTP
   stack and the middleware cost per request through the ASGI application. The baseline the
   other figures sit beside.
2. **Uploads**: ``POST /v1/files`` of ``--uploads`` small files (multipart, 100 bytes each),
   what a first sync sends. The server answers these on its direct path, below the ASGI stack
   (``syncd/emulator/server.py``), so they may cost less than the floor.
3. **Files listing**: ``GET /v1/files?limit=10000`` paged through every file (the emulator is
   first filled to ``--listed`` files, through the store directly — uploading them over HTTP
   would take minutes), ``--repeat`` times.
4. **Vector-store files listing**: ``GET /v1/vector_stores/ID/files?limit=100`` paged through a
   store of ``--store-files`` files (attached in batches over HTTP).

    python bench/emulator_speed.py                    # ~1 minute
    python bench/emulator_speed.py --uploads 2000 --listed 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_process import emulator_popen
from procstat import cpu_seconds

from syncd.emulator.store import Store

API_KEY = "sk-bench-emulator-speed"
PAGE = 10_000
STORE_PAGE = 100
BATCH = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=3000, help="small files to upload")
    parser.add_argument("--floor", type=int, default=3000, help="cheapest requests to send")
    parser.add_argument("--listed", type=int, default=100_000, help="files in the listing")
    parser.add_argument(
        "--store-files", type=int, default=4000, help=f"files in the store (at most {PAGE:,})"
    )
    parser.add_argument("--repeat", type=int, default=3, help="times each listing is read")
    parser.add_argument("--threads", type=int, default=8, help="client threads for uploads")
    args = parser.parse_args()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        work = Path(tmp)
        data_dir = work / "emulator"
        started = time.perf_counter()
        _fill(data_dir, work / "content", args.listed)
        print(
            f"filled the store with {args.listed:,} files in {time.perf_counter() - started:.1f} s"
        )
        options = ("--data-dir", str(data_dir))
        with emulator_popen(API_KEY, *options, env={"TMPDIR": tmp}) as (base_url, process):
            headers = {"Authorization": f"Bearer {API_KEY}"}
            limits = httpx2.Limits(max_connections=args.threads)
            with httpx2.Client(base_url=base_url, headers=headers, limits=limits) as client:
                measure = _Meter(process.pid)
                admin = base_url.removesuffix("/v1") + "/_emulator/settings"
                floor = measure(
                    "floor: GET /_emulator/settings",
                    args.floor,
                    lambda: _in_threads(args.threads, args.floor, lambda _: _get(client, admin)),
                )
                measure(
                    "POST /v1/files (100 bytes, multipart)",
                    args.uploads,
                    lambda: _in_threads(args.threads, args.uploads, lambda i: _upload(client, i)),
                    floor,
                )
                total = args.listed + args.uploads
                pages = args.repeat * -(-total // PAGE)
                measure(
                    f"GET /v1/files?limit={PAGE} ({total:,} files, per page)",
                    pages,
                    lambda: _list_all(client, "/files", PAGE, args.repeat),
                    floor,
                )
                store_id = _store(client, args.store_files)
                pages = args.repeat * -(-args.store_files // STORE_PAGE)
                measure(
                    f"GET /v1/vector_stores/ID/files?limit={STORE_PAGE} "
                    f"({args.store_files:,} files, per page)",
                    pages,
                    lambda: _list_all(
                        client, f"/vector_stores/{store_id}/files", STORE_PAGE, args.repeat
                    ),
                    floor,
                )


class _Meter:
    """Runs a phase and prints the emulator's CPU per request, beside the floor's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __call__(
        self, name: str, count: int, phase: Callable[[], None], floor: float | None = None
    ) -> float:
        load = os.getloadavg()[0]
        cpu = cpu_seconds(self.pid)
        wall = time.perf_counter()
        phase()
        wall = time.perf_counter() - wall
        per_request_ms = (cpu_seconds(self.pid) - cpu) / count * 1000
        beside = f" ({per_request_ms / floor:.1f}x the floor)" if floor else ""
        print(
            f"{name}: {per_request_ms:.3f} ms CPU per request{beside}; "
            f"{count:,} requests in {wall:.2f} s wall, load {load:.2f}"
        )
        return per_request_ms


def _fill(data_dir: Path, content: Path, count: int) -> None:
    """Put ``count`` small files in the emulator's data directory, as uploads would."""
    content.write_bytes(b"x" * 100)
    store = Store(data_dir)
    try:
        with store.transaction():
            for i in range(count):
                incoming = store.incoming_path()
                os.link(content, incoming)  # the blob shares the content: no copy
                store.add_file_in_transaction(
                    filename=f"seeded-{i:06d}.txt",
                    purpose="assistants",
                    size=100,
                    incoming=incoming,
                    processing_delay=0.0,
                    expires_after=None,
                )
    finally:
        store.close()


def _in_threads(threads: int, count: int, one: Callable[[int], None]) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(count)):
            pass


def _get(client: httpx2.Client, url: str) -> None:
    client.get(url).raise_for_status()


def _upload(client: httpx2.Client, i: int) -> None:
    files = {"file": (f"upload-{i:06d}.txt", b"y" * 100, "text/plain")}
    client.post("/files", data={"purpose": "assistants"}, files=files).raise_for_status()


def _list_all(client: httpx2.Client, path: str, limit: int, repeat: int) -> None:
    """Page through the whole list ``repeat`` times, as a client syncing does."""
    for _ in range(repeat):
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if after is not None:
                params["after"] = after
            body = client.get(path, params=params).raise_for_status().json()
            if not body["has_more"]:
                break
            after = body["last_id"]


def _store(client: httpx2.Client, count: int) -> str:
    """A vector store holding ``count`` of the emulator's files."""
    listed = client.get("/files", params={"limit": count, "order": "asc"}).json()
    ids = [f["id"] for f in listed["data"]]
    store_id: str = client.post("/vector_stores", json={"name": "bench"}).json()["id"]
    for start in range(0, len(ids), BATCH):
        batch = {"file_ids": ids[start : start + BATCH]}
        client.post(f"/vector_stores/{store_id}/file_batches", json=batch).raise_for_status()
    return store_id


if __name__ == "__main__":
    main()
