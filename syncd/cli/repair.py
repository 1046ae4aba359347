"""``syncd repair --from-stores``: rebuild a lost or damaged manifest from the vector stores,
uploading nothing (see :mod:`syncd.engine.rebuild`)."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

import click

from syncd.api import APIError
from syncd.cli.output import (
    config_option,
    fail,
    json_option,
    load,
    open_client,
    print_json,
    service_failure,
)
from syncd.engine.manifest import FILENAME, ManifestDB, ManifestError, instance_id
from syncd.engine.rebuild import rebuild_from_stores
from syncd.engine.report import ExitStatus
from syncd.service.lock import LockHeld, StateLock

__all__ = ["EPILOG", "repair_command"]

EPILOG = """\b
Exit status: 0 done; 2 usage or configuration error (no instance id to recognise
syncd's store files by); 3 another syncd holds the state directory, or the service
is unreachable or refused the key.

\b
--json prints:
{"instance": str, "adopted": [{"folder": str, "path": str, "file_id": str}],
 "retired": [file id], "skipped": [str], "moved_aside": str | null}"""


@click.command("repair", epilog=EPILOG)
@click.option(
    "--from-stores",
    "from_stores",
    is_flag=True,
    required=True,
    help="Rebuild the manifest from the vector stores' attributes (required).",
)
@config_option
@json_option
def repair_command(from_stores: bool, config_path: Path | None, as_json: bool) -> None:
    """Rebuild a lost or damaged manifest from the vector stores: each store file that
    carries this syncd's instance id and the content hash of the local file at its path is
    taken back as that file's remote copy — nothing is uploaded again. A manifest that cannot
    be opened is moved aside first."""
    config = load(config_path)
    state_dir = config.sync.state_dir
    instance = instance_id(state_dir, config.sync.instance_id, create=False)
    if not instance:
        fail(
            f"no instance id in {state_dir} and none configured: set sync.instance_id to the "
            "id on the store files (`syncd remote store-files STORE --json` shows it)",
            ExitStatus.CONFIG,
        )
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(StateLock(state_dir, command="syncd repair"))
        except LockHeld as e:
            fail(str(e), ExitStatus.STOPPED)
        moved = None
        try:
            manifest = ManifestDB.open(state_dir)
        except ManifestError:
            moved = state_dir / f"{FILENAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.move(state_dir / FILENAME, moved)
            manifest = ManifestDB.open(state_dir)
        stack.callback(manifest.close)
        client = open_client(config, config.api.retry_policy())
        stack.callback(client.close)
        try:
            rebuilt = rebuild_from_stores(config, client, manifest, instance)
        except APIError as e:
            service_failure(e, "reading the vector stores")
    if as_json:
        print_json(
            {
                "instance": instance,
                "adopted": [{"folder": f, "path": p, "file_id": i} for f, p, i in rebuilt.adopted],
                "retired": rebuilt.retired,
                "skipped": rebuilt.skipped,
                "moved_aside": str(moved) if moved else None,
            }
        )
        sys.exit(ExitStatus.OK)
    if moved:
        click.echo(f"the manifest could not be opened; moved it aside to {moved}")
    for folder, path, file_id in rebuilt.adopted:
        click.echo(f"adopted {file_id} for {folder}/{path}")
    for file_id in rebuilt.retired:
        click.echo(f"{file_id} is syncd's but matches no local file: the next pass deletes it")
    for line in rebuilt.skipped:
        click.echo(f"skipped {line}")
    click.echo(
        f"adopted {len(rebuilt.adopted)}, retired {len(rebuilt.retired)}, "
        f"skipped {len(rebuilt.skipped)} (instance {instance})"
    )
