"""Upload and download one large file with syncd's API client and with curl, side by side.

Starts ``syncd emulator`` on a free loopback port, writes a fine-tune JSONL file of ``--size-mb``
(fine-tune, because the service does not let assistants files be downloaded), then times, each in
its own process so that peak memory is that transfer's alone:

* ``Client.create_file`` and ``Client.download_file`` (a worker process of this script),
* ``curl -F file=@…`` and ``curl -o …`` against the same emulator.

It prints throughput and peak RSS of each, and syncd's figures as ratios of curl's. The time is
measured inside each process around the transfer only, so interpreter start-up is not counted;
peak RSS is the whole process's high-water mark (``VmHWM``), imports included.

    python bench/transfer.py                 # 256 MB
    python bench/transfer.py --size-mb 512   # the service's largest file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from emulator_process import emulator_process
from measure import (
    MB,
    Result,
    add_worker_arguments,
    bench_api_key,
    curl_timed,
    print_worker_facts,
    run_worker,
    vm_hwm,
    worker_api_key,
    worker_env,
    write_jsonl,
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


# --- the worker: one transfer with syncd's client, in its own process -------------------------


def worker(args: argparse.Namespace) -> None:
    from syncd.api import Client

    with Client(args.base_url, worker_api_key(), timeout=300.0) as client:
        baseline = vm_hwm("self")
        start = time.perf_counter()
        if args.worker == "upload":
            file_id = client.create_file(Path(args.path), "fine-tune").id
        else:
            client.download_file(args.file_id, Path(args.path))
            file_id = args.file_id
        seconds = time.perf_counter() - start
    print_worker_facts(baseline, seconds, id=file_id)


def syncd_transfer(base_url: str, env: dict[str, str], *worker_args: str) -> tuple[Result, str]:
    """Run one worker (``--worker upload|download …``); return its result and the file id."""
    argv = [sys.executable, __file__, "--base-url", base_url, *worker_args]
    result, facts = run_worker(argv, env)
    return result, facts["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="file size (default 256)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; the best time counts")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a tmp dir)")
    add_worker_arguments(parser, ["upload", "download"])
    parser.add_argument("--file-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    api_key = bench_api_key()
    env = worker_env(api_key)
    runs: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="syncd-bench-") as tmp:
        work = Path(tmp)
        source = work / "bench.jsonl"
        write_jsonl(source, args.size_mb * MB)
        size = source.stat().st_size
        digest = sha256(source)
        limit = str(max(size, 512 * MB))
        with emulator_process(
            api_key, "--processing-delay", "0", "--max-file-bytes", limit
        ) as base_url:
            for _ in range(args.runs):
                for key, result in one_round(base_url, api_key, env, source, digest):
                    runs.setdefault(key, []).append(result)
    report(runs, size, base_url, args.runs)


def one_round(
    base_url: str, api_key: str, env: dict[str, str], source: Path, digest: str
) -> list[tuple[tuple[str, str], Result]]:
    """Upload and download ``source`` once with each tool, check the downloads, then delete the
    uploads so the emulator's disk use stays bounded."""
    work = source.parent
    up_syncd, syncd_id = syncd_transfer(base_url, env, "--worker", "upload", "--path", str(source))
    up_curl, body = curl_timed(
        api_key,
        "--form",
        "purpose=fine-tune",
        "--form",
        f"file=@{source}",
        f"{base_url}/files",
    )
    curl_id = json.loads(body)["id"]
    down_syncd, _ = syncd_transfer(
        base_url,
        env,
        "--worker",
        "download",
        "--file-id",
        syncd_id,
        "--path",
        str(work / "syncd.out"),
    )
    download_url = f"{base_url}/files/{curl_id}/content"
    down_curl, _ = curl_timed(api_key, "--output", str(work / "curl.out"), download_url)
    for name in ("syncd.out", "curl.out"):
        if sha256(work / name) != digest:
            raise SystemExit(f"{name}: the downloaded content differs from what was uploaded")
        (work / name).unlink()
    for file_id in (syncd_id, curl_id):
        curl_timed(
            api_key,
            "--request",
            "DELETE",
            "--output",
            os.devnull,
            f"{base_url}/files/{file_id}",
        )
    return [
        (("upload", "syncd"), up_syncd),
        (("upload", "curl"), up_curl),
        (("download", "syncd"), down_syncd),
        (("download", "curl"), down_curl),
    ]


def report(runs: dict[tuple[str, str], list[Result]], size: int, base_url: str, n: int) -> None:
    """Print the best time and the highest peak RSS of each transfer, and syncd/curl ratios."""

    def best(key: tuple[str, str]) -> Result:
        results = runs[key]
        return Result(
            min(r.seconds for r in results),
            max(r.peak_rss for r in results),
            max(r.baseline_rss for r in results),
        )

    print(f"{size / MB:.0f} MB fine-tune file, emulator at {base_url}; best time of {n} run(s)")
    print(f"{'':18}{'seconds':>9}{'MB/s':>9}{'peak RSS':>11}")
    for name in ("upload", "download"):
        ours, theirs = best((name, "syncd")), best((name, "curl"))
        for who, r in (("syncd", ours), ("curl", theirs)):
            print(
                f"{name:9}{who:9}{r.seconds:9.2f}{r.throughput(size):9.1f}{r.peak_rss / MB:8.1f} MB"
            )
        print(
            f"{name:9}{'ratio':9}{ours.seconds / theirs.seconds:8.2f}x"
            f"{ours.throughput(size) / theirs.throughput(size):8.2f}x"
            f"{ours.peak_rss / theirs.peak_rss:8.1f}x   (syncd / curl)"
        )
    baseline = best(("upload", "syncd")).baseline_rss
    print(f"syncd's worker before transferring (interpreter and imports): {baseline / MB:.1f} MB")
    worst = max(best(("upload", "syncd")).peak_rss, best(("download", "syncd")).peak_rss)
    verdict = "under" if worst < 100 * MB else "OVER"
    print(f"syncd peak RSS {worst / MB:.1f} MB: {verdict} the 100 MB budget")


if __name__ == "__main__":
    main()
