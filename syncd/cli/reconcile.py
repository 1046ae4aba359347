"""``syncd reconcile``: one full pass, then exit (for a timer, cron, or by hand)."""

from __future__ import annotations

import contextlib
import errno
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from syncd.cli.output import (
    config_option,
    fail,
    json_option,
    load,
    open_client,
    print_json,
)
from syncd.engine.manifest import FILENAME, ManifestDB, ManifestError, StateFull
from syncd.engine.reconcile import Engine, Event
from syncd.engine.report import ExitStatus, PassReport, plan_lines
from syncd.service.lock import LockHeld, StateLock
from syncd.service.logs import setup_logging

__all__ = ["reconcile_command"]


@contextlib.contextmanager
def _progress(enabled: bool, verbose: int) -> Iterator[Callable[[Event], None] | None]:
    """A rich progress bar on stderr while the pass runs, with log lines printed above it."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("syncing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        redirect_stderr=True,
    ) as progress:
        task = progress.add_task("sync", total=0)
        # Logging writes to sys.stderr, which the bar now redirects above itself.
        setup_logging("human", verbose)

        def on_event(event: Event) -> None:
            if event.kind == "planned":
                progress.update(task, total=(progress.tasks[0].total or 0) + event.total)
            elif event.kind == "action":
                progress.advance(task)

        try:
            yield on_event
        finally:
            setup_logging("human", verbose, stream=sys.__stderr__)


@click.command("reconcile")
@config_option
@click.option(
    "--dry-run", is_flag=True, help="Print the plan; change nothing, locally or remotely."
)
@json_option
@click.option(
    "--folder",
    "folder_names",
    multiple=True,
    metavar="NAME",
    help="Only this folder (repeatable). Default: every configured folder.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Go past the delete guard, and accept a folder root now on another filesystem.",
)
@click.option("-v", "--verbose", count=True, help="More detail (-vv: HTTP requests too).")
def reconcile_command(
    config_path: Path | None,
    dry_run: bool,
    as_json: bool,
    folder_names: tuple[str, ...],
    force: bool,
    verbose: int,
) -> None:
    """Run one full pass: upload what is new or changed, attach it to the folder's
    assistants, clean up what was removed, and report.

    \b
    Exit status:
      0  everything is in sync
      1  finished, but some files failed, were rejected or are unresolved (the
         service has not shown whether an upload was stored), or a folder was skipped
      2  usage or configuration error
      3  stopped before acting: API key refused, service unreachable, another syncd
         holds the state directory, or the delete guard tripped (see --force);
         also when a folder's assistants were skipped because the service no
         longer offers the Assistants API (its vector stores were synced)

    \b
    --json prints one object: the counts (uploaded, replaced, deleted, attached,
    detached, unchanged, rejected, failed, adopted, unresolved), dry_run, waiting, stopped,
    exit_status, an "actions" list (what happened, or with --dry-run what would)
    and an "errors" list.
    """
    setup_logging("auto", verbose)
    config = load(config_path)
    known = {f.name for f in config.folders}
    unknown = [name for name in folder_names if name not in known]
    if unknown:
        fail(
            f"no folder named {', '.join(unknown)} in {config.source} "
            f"(configured: {', '.join(sorted(known))})",
            ExitStatus.CONFIG,
        )
    client = open_client(config, config.api.retry_policy())
    state_dir = config.sync.state_dir
    with contextlib.ExitStack() as stack:
        stack.callback(client.close)
        try:
            if dry_run:
                # No lock and no writes: a dry run may look while the daemon works.
                if (state_dir / FILENAME).exists():
                    manifest = ManifestDB.open(state_dir, readonly=True)
                else:
                    manifest = ManifestDB.memory()
            else:
                stack.enter_context(StateLock(state_dir, command="syncd reconcile"))
                # (The pass reads while the integrity check runs, and waits for its verdict
                # before it writes or decides anything.)
                manifest = ManifestDB.open(state_dir, check_later=True)
        except LockHeld as e:
            fail(str(e), ExitStatus.STOPPED)
        except StateFull as e:
            fail(str(e), ExitStatus.STOPPED)
        except ManifestError as e:
            fail(str(e), ExitStatus.CONFIG)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                fail(str(StateFull(state_dir)), ExitStatus.STOPPED)
            fail(f"cannot use the state directory {state_dir}: {e}", ExitStatus.CONFIG)
        stack.callback(manifest.close)
        show_bar = sys.stderr.isatty() and not dry_run
        with _progress(show_bar, verbose) as on_event:
            engine = Engine(config, client, manifest, on_event=on_event)
            try:
                report = engine.run_pass(
                    folders=list(folder_names) or None, dry_run=dry_run, force=force
                )
            except ManifestError as e:  # damaged, found by the check the pass waited for
                fail(str(e), ExitStatus.CONFIG)
    _print(report, as_json)
    sys.exit(report.exit_code())


def _print(report: PassReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    if report.dry_run:
        for line in plan_lines(report.planned, report.scanned):
            click.echo(f"would {line}")
        # The guard's removals are not in the plan: without this line a dry run that would
        # stop a pass reads "nothing to do".
        if report.stopped_reason == "delete_guard":
            click.echo(f"would stop at the delete guard: {report.stopped_message}")
        elif not report.planned:
            click.echo("nothing to do")
    # Problems and a stop were logged (stderr) as they happened.
    click.echo(report.summary())
