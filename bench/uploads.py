"""A large file through the Uploads API against one ``POST /files``, syncd beside curl.

Starts ``syncd emulator`` on a free loopback port and writes two fine-tune JSONL files: a big
one (``--big-mb``, 2 GB by default: past the 512 MB that one request may carry) and a single-
request one (``--single-mb``, 500 MB). Each transfer runs in its own process, so its peak RSS
is its own:

* syncd ``Client.create_file`` of the big file: an Upload, ``--part-mb`` parts sent by
  ``--workers`` threads, each streamed from its offset on disk, then ``complete`` with the md5;
* curl doing the same Upload: ``--workers`` curl processes at a time, one per part, each fed its
  part by ``dd`` through a pipe (curl reads a piped form field whole before sending it);
* syncd ``Client.create_file`` (its threshold raised to 512 MB, so one request) and
  ``curl -F file=@…`` of the single-request file.

It prints seconds, MB/s and peak RSS of each. Time is measured around the transfer only
(interpreter start-up not counted for syncd; each curl's own ``time_total`` summed over its
wall clock for the parts); peak RSS is ``VmHWM`` of the process (the largest curl for parts).
The files are deleted afterwards.

    python bench/uploads.py                          # 2 GB by Uploads, 500 MB by POST /files
    python bench/uploads.py --big-mb 256 --single-mb 64
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from emulator_process import emulator_process
from transfer import MB, Result, run_measured, vm_hwm, write_jsonl


def worker(args: argparse.Namespace) -> None:
    """One syncd upload in this process; print its seconds, file id and peak RSS as JSON."""
    from syncd.api import Client, PartSettings
    from syncd.api.uploads import MAX_SINGLE_REQUEST_BYTES

    parts = PartSettings(part_size=args.part_mb * MB, workers=args.workers)
    threshold = MAX_SINGLE_REQUEST_BYTES if args.worker == "single" else 64 * MB
    with Client(
        args.base_url,
        os.environ["BENCH_API_KEY"],
        timeout=600.0,
        upload_parts=parts,
        upload_threshold=threshold,
    ) as client:
        baseline = vm_hwm("self")
        start = time.perf_counter()
        file = client.create_file(Path(args.path), "fine-tune")
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "id": file.id,
                "bytes": file.bytes,
                "baseline": baseline,
                "peak": vm_hwm("self"),
            }
        )
    )


def syncd_upload(
    base_url: str, env: dict[str, str], how: str, path: Path, args: argparse.Namespace
) -> Result:
    argv = [
        sys.executable,
        __file__,
        "--worker",
        how,
        "--base-url",
        base_url,
        "--path",
        str(path),
        "--part-mb",
        str(args.part_mb),
        "--workers",
        str(args.workers),
    ]
    out, rss = run_measured(argv, env)
    facts = json.loads(out)
    if facts["bytes"] != path.stat().st_size:
        raise SystemExit(f"syncd stored {facts['bytes']} bytes of {path.stat().st_size}")
    return Result(facts["seconds"], max(rss, facts["peak"]), facts["baseline"])


def curl_json(api_key: str, *args: str) -> dict:
    """Run curl (not measured) and return its JSON answer."""
    out = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "-H",
            f"Authorization: Bearer {api_key}",
            *args,
        ],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def curl_single(base_url: str, api_key: str, path: Path) -> Result:
    out, rss = run_measured(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "-H",
            f"Authorization: Bearer {api_key}",
            "--write-out",
            "\n%{time_total}",
            "-F",
            "purpose=fine-tune",
            "-F",
            f"file=@{path}",
            f"{base_url}/files",
        ]
    )
    body, _, seconds = out.rpartition("\n")
    if json.loads(body)["bytes"] != path.stat().st_size:
        raise SystemExit("curl's upload stored the wrong size")
    return Result(float(seconds), rss)


def curl_parts(base_url: str, api_key: str, path: Path, part_mb: int, workers: int) -> Result:
    """The Upload done with curl: create, parts by ``workers`` curls at a time, complete."""
    size = path.stat().st_size
    start = time.perf_counter()
    upload = curl_json(
        api_key,
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(
            {
                "filename": path.name,
                "purpose": "fine-tune",
                "bytes": size,
                "mime_type": "application/jsonl",
            }
        ),
        f"{base_url}/uploads",
    )
    count = -(-size // (part_mb * MB))
    peak = 0
    lock = threading.Lock()

    def part(index: int) -> str:
        nonlocal peak
        shell = (
            f"dd if={path} bs={MB} skip={index * part_mb} count={part_mb} status=none | "
            f"curl --silent --show-error --fail -H 'Authorization: Bearer {api_key}' "
            f"-F 'data=@-;filename=part' {base_url}/uploads/{upload['id']}/parts"
        )
        proc = subprocess.Popen(["sh", "-c", shell], stdout=subprocess.PIPE)
        highest = 0
        while proc.poll() is None:
            for child in _children(proc.pid):
                highest = max(highest, vm_hwm(child))
            time.sleep(0.005)
        assert proc.stdout is not None
        answer = json.loads(proc.stdout.read())
        with lock:
            peak = max(peak, highest)
        return answer["id"]

    with ThreadPoolExecutor(workers) as pool:
        part_ids = list(pool.map(part, range(count)))
    done = curl_json(
        api_key,
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"part_ids": part_ids}),
        f"{base_url}/uploads/{upload['id']}/complete",
    )
    if done["file"]["bytes"] != size:
        raise SystemExit("curl's Upload stored the wrong size")
    return Result(time.perf_counter() - start, peak)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=2048, help="file sent by Uploads (2048)")
    parser.add_argument("--single-mb", type=int, default=500, help="file sent in one (500)")
    parser.add_argument("--part-mb", type=int, default=64, help="part size (64)")
    parser.add_argument("--workers", type=int, default=4, help="parts at a time (4)")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: /tmp)")
    parser.add_argument("--worker", choices=["parts", "single"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    api_key = "sk-bench-" + secrets.token_hex(8)
    env = {**os.environ, "BENCH_API_KEY": api_key}
    results: dict[str, tuple[int, Result]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="syncd-bench-uploads-") as tmp:
        big, single = Path(tmp) / "big.jsonl", Path(tmp) / "single.jsonl"
        write_jsonl(big, args.big_mb * MB)
        write_jsonl(single, args.single_mb * MB)
        limit = str(max(single.stat().st_size, 512 * MB))
        with emulator_process(
            api_key, "--processing-delay", "0", "--max-file-bytes", limit
        ) as base_url:
            size = big.stat().st_size
            results["Uploads  syncd"] = size, syncd_upload(base_url, env, "parts", big, args)
            results["Uploads  curl"] = (
                size,
                curl_parts(base_url, api_key, big, args.part_mb, args.workers),
            )
            size = single.stat().st_size
            results["POST /files syncd"] = size, syncd_upload(base_url, env, "single", single, args)
            results["POST /files curl"] = size, curl_single(base_url, api_key, single)

    print(
        f"{args.big_mb} MB by Uploads ({args.part_mb} MB parts, {args.workers} at a time); "
        f"{args.single_mb} MB by one POST /files; emulator on loopback"
    )
    print(f"{'':20}{'seconds':>9}{'MB/s':>9}{'peak RSS':>11}")
    for name, (size, r) in results.items():
        print(f"{name:20}{r.seconds:9.2f}{r.throughput(size):9.1f}{r.peak_rss / MB:8.1f} MB")


if __name__ == "__main__":
    main()
