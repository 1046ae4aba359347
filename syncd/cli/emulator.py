"""``syncd emulator``: serve a local, faithful OpenAI Files API for tests, demos and dry runs."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from syncd.engine.report import ExitStatus

if TYPE_CHECKING:
    from syncd.emulator import Faults, Knobs

__all__ = ["emulator_command", "stderr_is_discarded"]

_MB = 1024 * 1024


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep state here (SQLite + one blob per upload) so it survives restarts. "
    "Without it, state lives in memory and is lost on exit.",
)
@click.option(
    "--api-key",
    envvar="SYNCD_EMULATOR_API_KEY",
    show_envvar=True,
    help="Accept only this bearer token (default: any non-empty one).",
)
@click.option(
    "--max-file-bytes",
    default=512 * _MB,
    show_default=True,
    type=click.IntRange(1),
    help="Largest upload accepted.",
)
@click.option(
    "--processing-delay",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds before a fine-tune file moves from 'uploaded' to 'processed'.",
)
@click.option(
    "--fail-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of requests answered 500, 502 or 503.",
)
@click.option(
    "--rate-limit-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of requests answered 429 with Retry-After.",
)
@click.option(
    "--retry-after-ms",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="How long a 429 asks the client to wait.",
)
@click.option(
    "--drop-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of requests whose connection is closed without an answer.",
)
@click.option(
    "--drop-phase",
    default="random",
    show_default=True,
    type=click.Choice(["random", "before", "after"]),
    help="Drop before the request is processed, after it (the upload is stored), or either.",
)
@click.option(
    "--latency-ms", default=0, type=click.IntRange(0), help="Delay added to every request."
)
@click.option("--seed", type=int, help="Seed for the fault draws, for repeatable runs.")
@click.option(
    "--slow-commit-ms",
    default=0,
    type=click.IntRange(0),
    help="Hold each request this long after its body arrived, then process it even if the "
    "client has gone (a commit the client never hears about).",
)
@click.option(
    "--ingestion-seconds",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0),
    help="How long a file attached to a vector store stays 'in_progress'.",
)
@click.option(
    "--stuck-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of attached files that stay 'in_progress' for good.",
)
@click.option(
    "--assistants-api",
    default="v1",
    show_default=True,
    type=click.Choice(["v1", "retired"]),
    help="'v1' serves the Assistants v1 contract; 'retired' answers as today's service "
    "(400 invalid_beta for v1 calls, 404 for the Assistants API).",
)
@click.option(
    "--upload-lifetime-seconds",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(0),
    help="How long an Upload accepts parts before it expires.",
)
@click.option(
    "--rate-limits/--no-rate-limits",
    default=False,
    show_default=True,
    help="Enforce the service's published request budgets (429 with Retry-After past them).",
)
@click.option(
    "--upload-rpm",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="With --rate-limits: POST /files and Uploads requests a minute.",
)
@click.option(
    "--attach-rpm",
    default=300,
    show_default=True,
    type=click.IntRange(1),
    help="With --rate-limits: attach requests (files and batches) a minute per vector store.",
)
@click.option(
    "--default-rpm",
    default=10_000,
    show_default=True,
    type=click.IntRange(1),
    help="With --rate-limits: any other requests a minute.",
)
def emulator_command(
    host: str,
    port: int,
    data_dir: Path | None,
    api_key: str | None,
    max_file_bytes: int,
    processing_delay: float,
    fail_rate: float,
    rate_limit_rate: float,
    retry_after_ms: int,
    drop_rate: float,
    drop_phase: str,
    latency_ms: int,
    seed: int | None,
    slow_commit_ms: int,
    ingestion_seconds: float,
    stuck_rate: float,
    assistants_api: str,
    upload_lifetime_seconds: float,
    rate_limits: bool,
    upload_rpm: int,
    attach_rpm: int,
    default_rpm: int,
) -> None:
    """Serve the OpenAI Files API locally at http://HOST:PORT/v1.

    Prints "syncd emulator listening on URL" once it accepts requests, then logs one line per
    request to stderr. Faults and settings can also be changed while it runs: GET/PUT
    /_emulator/faults and /_emulator/settings; POST /_emulator/reset forgets all state.
    Ctrl-C stops it.
    """
    # Imported here so that ``syncd --help`` never pays for the web stack.
    from syncd.emulator import EmulatorServer, Faults, Knobs
    from syncd.service.logs import setup_logging

    try:
        faults = Faults(
            fail_rate=fail_rate,
            rate_limit_rate=rate_limit_rate,
            retry_after_ms=retry_after_ms,
            drop_rate=drop_rate,
            drop_phase=drop_phase,  # type: ignore[arg-type]  # click.Choice checked it
            latency_ms=latency_ms,
            seed=seed,
            slow_commit_ms=slow_commit_ms,
        )
        knobs = Knobs(
            ingestion_seconds=ingestion_seconds,
            stuck_rate=stuck_rate,
            assistants_api=assistants_api,  # type: ignore[arg-type]  # click.Choice checked it
            upload_lifetime_s=upload_lifetime_seconds,
            rate_limits=rate_limits,
            upload_rpm=upload_rpm,
            attach_rpm=attach_rpm,
            default_rpm=default_rpm,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    setup_logging("auto")
    if stderr_is_discarded():
        # A benchmark's emulator: its line per request would be made only to be thrown away, at
        # a sixth of the CPU of a small upload. Warnings and errors are still written.
        logging.getLogger("syncd.emulator").setLevel(logging.WARNING)
    server = EmulatorServer(
        data_dir=data_dir,
        api_key=api_key,
        faults=faults,
        knobs=knobs,
        max_file_bytes=max_file_bytes,
        processing_delay=processing_delay,
        host=host,
        port=port,
    )
    try:
        server.start()
    except OSError as exc:
        click.echo(f"syncd: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise SystemExit(ExitStatus.CONFIG) from None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Raised, as Ctrl-C raises KeyboardInterrupt: a handler that set an Event could hang
        # for good when the signal came while the main thread held that Event's own lock, on
        # its way into waiting (a SIGTERM right after the "listening" line did, in CI).
        raise _Terminated

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        click.echo(f"syncd emulator listening on {server.base_url}")
        where = f"state in {data_dir}" if data_dir else "state in memory (lost on exit)"
        click.echo(
            f"{where}; {_describe(faults)}; {_describe_knobs(knobs)}; "
            "admin at /_emulator/faults and /_emulator/settings",
            err=True,
        )
        threading.Event().wait()  # until a signal ends it
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        server.stop()


class _Terminated(Exception):
    """SIGTERM came: stop serving."""


def stderr_is_discarded() -> bool:
    """True when stderr is the null device, so that whatever is logged goes nowhere."""
    try:
        return os.path.samestat(os.fstat(2), os.stat(os.devnull))
    except OSError:
        return False


def _describe(faults: Faults) -> str:
    parts = [
        f"{name.removesuffix('_rate').replace('_', '-')} {value:.0%}"
        for name, value in (
            ("fail_rate", faults.fail_rate),
            ("rate_limit_rate", faults.rate_limit_rate),
            ("drop_rate", faults.drop_rate),
        )
        if value
    ]
    if faults.latency_ms:
        parts.append(f"latency {faults.latency_ms} ms")
    if faults.slow_commit_ms:
        parts.append(f"slow commit {faults.slow_commit_ms} ms")
    return "faults: " + (", ".join(parts) if parts else "none")


def _describe_knobs(knobs: Knobs) -> str:
    parts = [f"ingestion {knobs.ingestion_seconds:g} s", f"assistants API {knobs.assistants_api}"]
    if knobs.stuck_rate:
        parts.append(f"stuck {knobs.stuck_rate:.0%}")
    if knobs.rate_limits:
        parts.append(
            f"rate limits {knobs.upload_rpm}/{knobs.attach_rpm}/{knobs.default_rpm} rpm "
            "(uploads/attach per store/other)"
        )
    return ", ".join(parts)
